"""The key encoding orders keys like Deno KV, round-trips, and rejects bad keys."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kysera.kv import InvalidKeyError, decode_key, encode_key

parts = st.one_of(
    st.binary(max_size=20),
    st.text(max_size=20),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.booleans(),
)
keys = st.lists(parts, min_size=1, max_size=4).map(tuple)
_RANK = {bytes: 0, str: 1, int: 2, bool: 3}


def _sort_key(key: tuple[Any, ...]) -> list[tuple[int, Any]]:
    # Deno KV's order: part by part, type rank first (bytes < str < int < bool), then value;
    # strings compare by their UTF-8 bytes.
    return [(_RANK[type(p)], p.encode() if isinstance(p, str) else p) for p in key]


@settings(deadline=None)
@given(keys, keys)
def test_byte_order_is_key_order(a: tuple[Any, ...], b: tuple[Any, ...]) -> None:
    assert (encode_key(a) < encode_key(b)) == (_sort_key(a) < _sort_key(b))
    assert (encode_key(a) == encode_key(b)) == (
        a == b and [type(p) for p in a] == [type(p) for p in b]
    )


@settings(deadline=None)
@given(keys)
def test_round_trip(key: tuple[Any, ...]) -> None:
    decoded = decode_key(encode_key(key))
    assert decoded == key
    assert [type(p) for p in decoded] == [type(p) for p in key]


def test_type_order_within_a_part() -> None:
    ordered = [(b"z",), ("a",), (-5,), (7,), (False,), (True,)]
    assert sorted(ordered, key=encode_key) == ordered
    assert encode_key(("a",)) < encode_key(("a", b"")) < encode_key(("a\x00",))


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (["a"], "must be a tuple"),
        ((), "at least one part"),
        (("a", 1.5), "part 1 must be str, int, bytes or bool"),
        ((None,), "part 0"),
        ((2**63,), "signed 64-bit"),
        (("x" * 3000,), "limit is 2048"),
        (("ok", "\ud800"), "part 1 is not valid Unicode"),
    ],
)
def test_bad_keys_are_rejected(key: Any, message: str) -> None:
    with pytest.raises(InvalidKeyError, match=message) as info:
        encode_key(key)
    assert info.value.code == "KV_INVALID_KEY"
