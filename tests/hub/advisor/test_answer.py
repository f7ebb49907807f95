"""Reading a model's answer: anything an LLM could send is either a valid Advice or an AnswerError."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.advisor.answer import MAX_REPLICAS, Advice, AnswerError, read_answer

GOOD = {"replicas": 4, "confidence": 0.8, "rationale": "queue is rising",
        "resources": {"vllm": {"requests": {"cpu": "4", "memory": "32Gi"}, "limits": {"memory": "40Gi"}}}}


def test_a_plain_object_a_fenced_one_and_one_wrapped_in_prose_all_read() -> None:
    text = json.dumps(GOOD)
    for wrapped in (text, f"```json\n{text}\n```", f"Sure! Here is my advice:\n{text}\nHope it helps."):
        advice = read_answer(wrapped)
        assert advice.replicas == 4 and advice.resources["vllm"].limits.memory == "40Gi"


@pytest.mark.parametrize(("answer", "field"), [
    ("I think you should add three replicas.", "answer"),
    ("[4]", "answer"),
    (json.dumps({**GOOD, "replicas": "5"}), "replicas"),                 # no coercion of strings
    (json.dumps({**GOOD, "replicas": -3}), "replicas"),
    (json.dumps({**GOOD, "replicas": 10**12}), "replicas"),
    (json.dumps({**GOOD, "replicas": 4.5}), "replicas"),
    ('{"replicas": NaN, "confidence": 0.5, "rationale": ""}', "answer"),  # not JSON: refused at parse
    ('{"replicas": 3, "confidence": Infinity, "rationale": ""}', "answer"),
    (json.dumps({**GOOD, "confidence": 7}), "confidence"),
    (json.dumps({**GOOD, "apply_now": True}), "apply_now"),               # no extra fields
    (json.dumps({**GOOD, "resources": {"vllm": {"requests": {"cpu": "all of it"}}}}), "resources.vllm.requests.cpu"),
    (json.dumps({**GOOD, "resources": {"Bad Name": {}}}), "resources.Bad Name.[key]"),
    (json.dumps({**GOOD, "rationale": "x" * 5000}), "rationale"),
    ("{" * 100000, "answer"),
])
def test_hostile_answers_are_refused_naming_the_field(answer: str, field: str) -> None:
    with pytest.raises(AnswerError) as caught:
        read_answer(answer)
    assert caught.value.field == field


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


@given(st.one_of(st.text(max_size=300), json_values.map(json.dumps),
                 st.dictionaries(st.sampled_from(["replicas", "confidence", "rationale", "resources", "x"]),
                                 json_values, max_size=5).map(json.dumps)))
def test_any_answer_is_advice_within_bounds_or_a_named_error(text: str) -> None:
    try:
        advice = read_answer(text)
    except AnswerError as e:
        assert e.field
        return
    assert isinstance(advice, Advice)
    assert 0 <= advice.replicas <= MAX_REPLICAS and 0 <= advice.confidence <= 1
