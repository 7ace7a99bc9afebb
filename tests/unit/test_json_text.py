"""shared.json_text gives json.dumps's text for the flat dicts its callers pass."""

import json

from hypothesis import given
from hypothesis import strategies as st

from shared.json_text import json_text

plain = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(), st.lists(st.text())
)


@given(st.dictionaries(st.text(), plain))
def test_the_text_is_json_dumps_text(value: dict[str, object]) -> None:
    assert json_text(value) == json.dumps(value)
