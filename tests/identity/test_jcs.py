"""Our JCS fast path must give byte-for-byte what the rfc8785 reference gives."""

from __future__ import annotations

import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.identity._jcs import canonicalize

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.text(max_size=12)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(json_values)
def test_fast_canonical_form_equals_the_reference(value: object) -> None:
    assert canonicalize(value) == rfc8785.dumps(value)


def test_keys_sort_by_utf16_code_units_not_code_points() -> None:
    # U+E000 sorts after a surrogate pair (U+1F600) in UTF-16, before it in code points.
    value = {"\ue000": 1, "\U0001f600": 2}
    assert canonicalize(value) == rfc8785.dumps(value)
    assert canonicalize(value).index("\U0001f600".encode()) < canonicalize(value).index("\ue000".encode())


def test_floats_are_written_the_ecmascript_way() -> None:
    assert canonicalize({"n": 1.0, "m": 1e21, "k": 0.1}) == b'{"k":0.1,"m":1e+21,"n":1}'
