"""Cursors round-trip every supported value exactly and refuse anything they did not make."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import decimal
import json
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kysera.core import (
    InvalidCursorError,
    InvalidQueryError,
    decode_cursor,
    encode_cursor,
    ordering_fingerprint,
)

ORDERING = ordering_fingerprint(["users.age:desc:nulls-last", "users.id:asc:nulls-last"])
OTHER_ORDERING = ordering_fingerprint(["users.age:asc:nulls-last", "users.id:asc:nulls-last"])

offsets = st.builds(
    dt.timezone,
    st.timedeltas(min_value=dt.timedelta(hours=-23), max_value=dt.timedelta(hours=23)),
)
cursor_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(),
    st.decimals(allow_nan=False),
    st.floats(allow_nan=False),
    st.datetimes(),
    st.datetimes(timezones=offsets),
    st.dates(),
    st.times(),
    st.timedeltas(),
    st.uuids(),
    st.binary(),
)


def same(left: Any, right: Any) -> bool:
    """Equal, of the same type, and for datetimes and Decimals, the same representation."""
    if type(left) is not type(right):
        return False
    if isinstance(left, (dt.datetime, dt.time)):
        return left == right and left.utcoffset() == right.utcoffset()
    if isinstance(left, decimal.Decimal):
        return str(left) == str(right)
    return bool(left == right)


@settings(max_examples=300, deadline=None)
@given(values=st.lists(cursor_values, max_size=4), signed=st.booleans())
def test_values_round_trip_exactly(values: list[Any], signed: bool) -> None:
    secret = "s3cret" if signed else None
    cursor = encode_cursor(values, ordering=ORDERING, secret=secret)

    decoded = decode_cursor(cursor, ordering=ORDERING, secret=secret)

    assert len(decoded) == len(values)
    assert all(same(a, b) for a, b in zip(decoded, values, strict=True))


# Cursors made before the encoder was rewritten: the format is a contract with every cursor
# a client holds, so these must keep decoding, and the same values must encode to them.
GOLDEN_ORDERING = ordering_fingerprint(["t.a:asc:nulls-last", "t.id:asc:nulls-last"])
GOLDEN_VALUES = [
    None,
    True,
    False,
    0,
    -7,
    2**70,
    'Zoë "q" \\ \n',
    1.5,
    decimal.Decimal("-2.125"),
    dt.datetime(2024, 1, 2, 3, 4, 5, 6),
    dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30))),
    dt.date(2024, 2, 29),
    dt.time(9, 30, 1, 250000),
    dt.timedelta(days=-1, seconds=5, microseconds=7),
    uuid.UUID(int=2**128 - 1),
    b"\x00\xff",
]
GOLDEN_CURSOR = (
    "WzEsIjZDUGpVZFluQ2cxayIsW251bGwsdHJ1ZSxmYWxzZSwwLC03LDExODA1OTE2MjA3MTc0MTEzMDM0MjQsIlpv"
    "w6sgXCJxXCIgXFwgXG4iLFsiZiIsIjB4MS44MDAwMDAwMDAwMDAwcCswIl0sWyJuIiwiLTIuMTI1Il0sWyJkdCIs"
    "IjIwMjQtMDEtMDJUMDM6MDQ6MDUuMDAwMDA2Il0sWyJkdCIsIjIwMjQtMDEtMDJUMDM6MDQ6MDVAMTk4MDAwMDAw"
    "MDAiXSxbImQiLCIyMDI0LTAyLTI5Il0sWyJ0IiwiMDk6MzA6MDEuMjUwMDAwIl0sWyJ0ZCIsIi0xLDUsNyJdLFsi"
    "dSIsImZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmIl0sWyJiIiwiQVA4Il1dXQ"
)
GOLDEN_SIGNATURE = "qFKHGq0A-9mVO6Ccml-UuQ"  # secret="s3cret"


def test_cursors_made_by_earlier_versions_still_decode() -> None:
    assert GOLDEN_ORDERING == "6CPjUdYnCg1k"
    signed = f"{GOLDEN_CURSOR}.{GOLDEN_SIGNATURE}"

    assert decode_cursor(GOLDEN_CURSOR, ordering=GOLDEN_ORDERING) == tuple(GOLDEN_VALUES)
    assert decode_cursor(signed, ordering=GOLDEN_ORDERING, secret="s3cret") == tuple(GOLDEN_VALUES)
    assert decode_cursor(signed, ordering=GOLDEN_ORDERING, secret=b"s3cret") == tuple(GOLDEN_VALUES)
    with pytest.raises(InvalidCursorError, match="signature"):
        decode_cursor(signed, ordering=GOLDEN_ORDERING, secret="another")


def test_the_cursor_format_is_unchanged() -> None:
    assert encode_cursor(GOLDEN_VALUES, ordering=GOLDEN_ORDERING) == GOLDEN_CURSOR
    assert (
        encode_cursor(GOLDEN_VALUES, ordering=GOLDEN_ORDERING, secret="s3cret")
        == f"{GOLDEN_CURSOR}.{GOLDEN_SIGNATURE}"
    )


@settings(max_examples=300, deadline=None)
@given(values=st.lists(cursor_values, max_size=4), ordering=st.text())
def test_the_payload_is_the_json_the_format_describes(values: list[Any], ordering: str) -> None:
    cursor = encode_cursor(values, ordering=ordering)

    text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("utf-8")
    payload = json.loads(text)
    assert payload[:2] == [1, ordering]
    assert text == json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def test_standard_base64_padding_and_whitespace_in_json_decode_as_before() -> None:
    # Not what encode_cursor makes, but what decoding has always accepted.
    body = base64.b64encode(f' [1, "{ORDERING}", [1, "x"]] '.encode()).decode()

    assert decode_cursor(body, ordering=ORDERING) == (1, "x")


def test_cursor_is_url_safe_and_opaque() -> None:
    cursor = encode_cursor(
        ["Zoë ✓", decimal.Decimal("10.50"), b"\xff\x00", None], ordering=ORDERING, secret=b"k"
    )

    assert all(c.isalnum() or c in "-_." for c in cursor)
    assert "Zo" not in cursor


def test_a_cursor_of_another_ordering_is_refused() -> None:
    cursor = encode_cursor([30, 7], ordering=ORDERING)

    with pytest.raises(InvalidCursorError, match="different ordering"):
        decode_cursor(cursor, ordering=OTHER_ORDERING)


def test_a_tampered_signed_cursor_is_refused() -> None:
    cursor = encode_cursor([30, 7], ordering=ORDERING, secret="s3cret")
    body, _, signature = cursor.partition(".")
    forged_payload = json.dumps([1, ORDERING, [99, 7]]).encode()
    forged = base64.urlsafe_b64encode(forged_payload).decode().rstrip("=") + "." + signature

    with pytest.raises(InvalidCursorError, match="signature"):
        decode_cursor(forged, ordering=ORDERING, secret="s3cret")
    with pytest.raises(InvalidCursorError, match="signature"):
        decode_cursor(cursor, ordering=ORDERING, secret="another secret")
    with pytest.raises(InvalidCursorError, match="not signed"):
        decode_cursor(body, ordering=ORDERING, secret="s3cret")
    with pytest.raises(InvalidCursorError, match="no secret"):
        decode_cursor(cursor, ordering=ORDERING)


@pytest.mark.parametrize(
    "garbage",
    ["", "!!!", "abc", "a" * 10_000, "W10", "WzEsIngiLFtdXQ", "é", "\ud800", "e30", "W251bGxd"],
)
def test_garbage_is_refused(garbage: str) -> None:
    with pytest.raises(InvalidCursorError):
        decode_cursor(garbage, ordering=ORDERING)


def test_a_truncated_cursor_is_refused() -> None:
    cursor = encode_cursor([30, "a longer value to cut"], ordering=ORDERING)

    for end in range(len(cursor)):
        with pytest.raises(InvalidCursorError):
            decode_cursor(cursor[:end], ordering=ORDERING)


@settings(max_examples=300, deadline=None)
@given(
    garbage=st.one_of(st.text(), st.binary().map(lambda b: base64.urlsafe_b64encode(b).decode()))
)
def test_no_input_raises_anything_but_invalid_cursor(garbage: str) -> None:
    with contextlib.suppress(InvalidCursorError):
        decode_cursor(garbage, ordering=ORDERING, secret=None)


@settings(max_examples=200, deadline=None)
@given(payload=st.recursive(st.none() | st.integers() | st.text(), lambda inner: st.lists(inner)))
def test_well_formed_json_of_the_wrong_shape_is_refused(payload: Any) -> None:
    cursor = base64.urlsafe_b64encode(json.dumps([1, ORDERING, payload]).encode()).decode()
    with contextlib.suppress(InvalidCursorError):
        decode_cursor(cursor, ordering=ORDERING)


def test_non_string_cursors_are_refused() -> None:
    with pytest.raises(InvalidCursorError):
        decode_cursor(42, ordering=ORDERING)  # type: ignore[arg-type]


def test_values_a_cursor_cannot_carry_are_a_query_error() -> None:
    with pytest.raises(InvalidQueryError, match="dict"):
        encode_cursor([{"a": 1}], ordering=ORDERING)


def test_uuid_and_dates_come_back_as_their_own_types() -> None:
    value = uuid.uuid4()
    cursor = encode_cursor([value, dt.date(2024, 2, 29)], ordering=ORDERING)

    assert decode_cursor(cursor, ordering=ORDERING) == (value, dt.date(2024, 2, 29))
