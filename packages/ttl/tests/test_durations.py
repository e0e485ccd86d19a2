"""The strict duration parser."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kysera.core import ValidationError
from kysera.ttl import parse_duration

VALID = re.compile(r"([0-9]{1,9}d)?([0-9]{1,9}h)?([0-9]{1,9}m)?([0-9]{1,9}s)?")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("5m", timedelta(minutes=5)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("30d", timedelta(days=30)),
        ("1d2h3m4s", timedelta(days=1, hours=2, minutes=3, seconds=4)),
    ],
)
def test_accepts(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "bad",
    ["", "5", "5 m", " 5m", "1.5h", "-5m", "+5m", "0s", "0m0s", "5m1h", "5mm", "5M", "1w",
     "h", "5m\n", "\u0665m", "999999999d999999999h", 5, 5.0, None, timedelta(0),
     timedelta(seconds=-1)],
)  # fmt: skip
def test_refuses(bad: object) -> None:
    with pytest.raises(ValidationError):
        parse_duration(bad)


@settings(deadline=None)
@given(st.integers(0, 1000), st.integers(0, 1000), st.integers(0, 1000), st.integers(0, 1000))
def test_round_trip(days: int, hours: int, minutes: int, seconds: int) -> None:
    text = "".join(
        f"{n}{unit}" for n, unit in zip((days, hours, minutes, seconds), "dhms", strict=True) if n
    )
    expected = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    if expected:
        assert parse_duration(text) == expected
    else:
        with pytest.raises(ValidationError):
            parse_duration(text)


@settings(deadline=None)
@given(st.text(max_size=12))
def test_anything_else_is_refused(text: str) -> None:
    if VALID.fullmatch(text) and text and re.search(r"[1-9]", text):
        assert parse_duration(text) > timedelta(0)
    else:
        with pytest.raises(ValidationError):
            parse_duration(text)
