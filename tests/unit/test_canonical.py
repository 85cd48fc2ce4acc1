import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.lib.canonical import NotCanonicalizable, canonical_json, canonical_sha256

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.text(max_size=8)
    | (st.floats(min_value=-1e15, max_value=1e15))
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=5)
    ),
    max_leaves=25,
)


def _shuffled(value: object, rng: random.Random) -> object:
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {k: _shuffled(v, rng) for k, v in items}
    if isinstance(value, list):
        return [_shuffled(v, rng) for v in value]
    return value


@settings(max_examples=300)
@given(
    value=json_values,
    seed=st.integers(0, 2**32),
    indent=st.sampled_from([None, 0, 1, 2, 4, "\t"]),
    compact=st.booleans(),
)
def test_hash_ignores_key_order_and_whitespace(
    value: object, seed: int, indent: object, compact: bool
) -> None:
    rng = random.Random(seed)
    separators = (",", ":") if compact else (" , ", " :  ")
    text = json.dumps(_shuffled(value, rng), indent=indent, separators=separators)  # type: ignore[arg-type]
    assert canonical_sha256(json.loads(text)) == canonical_sha256(value)


@given(value=json_values)
def test_canonical_form_is_a_fixed_point(value: object) -> None:
    once = canonical_json(value)
    assert canonical_json(json.loads(once)) == once


def test_hash_sees_content_changes() -> None:
    assert canonical_sha256({"a": 1}) != canonical_sha256({"a": 2})
    assert canonical_sha256({"a": [1, 2]}) != canonical_sha256({"a": [2, 1]})  # arrays keep order
    assert canonical_json({"b": 1.0, "a": "é"}) == '{"a":"é","b":1}'.encode()


def test_integers_beyond_json_precision_are_refused() -> None:
    with pytest.raises(NotCanonicalizable):
        canonical_json({"maxLength": 2**60})
