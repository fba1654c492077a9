"""A question set is refused as Hume would refuse it, each rule naming the JSON Pointer of what breaks it; what
passes keeps its questions' order, and the OpenAPI structs accept and refuse the same shapes."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from app.decisions.question_rules import QuestionSetInvalid, pointer, question_set_in
from app.decisions.schemas import QuestionSetIn


def _set(**questions: Any) -> dict[str, Any]:
    return {"name": "calls", "questions": questions}


NOUL = {"type": "noul", "instructions": "Does the caller ask to cancel?"}
SPAN = {"type": "span", "instructions": "When does a phone ring?"}
CHOICE = {"type": "choice", "instructions": "What is the call about?", "criteria": {"billing": "money", "tech": "it"}}
SCORE = {"type": "score", "instructions": "How natural?", "criteria": ["robotic", "natural"]}


def test_a_valid_set_keeps_its_order_and_normalizes_criteria() -> None:
    """Questions come back in the order given (Hume's answers depend on it), criteria left out are None."""
    draft = question_set_in({"name": "calls", "context": "support line", "questions": {
        "z_last_alphabetically": SCORE, "cancel": NOUL, "ring": SPAN, "topic": CHOICE,
        "strict": {**NOUL, "criteria": {"true": "says cancel", "false": "does not"}},
    }})  # fmt: skip
    assert [q["id"] for q in draft.questions] == ["z_last_alphabetically", "cancel", "ring", "topic", "strict"]
    assert draft.questions[1] == {
        "id": "cancel",
        "type": "noul",
        "instructions": NOUL["instructions"],
        "criteria": None,
    }
    assert draft.questions[0]["criteria"] == ["robotic", "natural"]
    assert draft.context == "support line"


def _refusal(body: Any) -> tuple[str, str]:
    with pytest.raises(QuestionSetInvalid) as caught:
        question_set_in(body)
    assert caught.value.status == 422
    return caught.value.details["field"], caught.value.details["rule"]


RATED = {f"q{i}": NOUL for i in range(20)}
SPANS = {f"s{i}": SPAN for i in range(5)}


@pytest.mark.parametrize(
    ("body", "field", "rule"),
    [
        ({"questions": {"a": NOUL}}, "/name", "required"),
        ({"name": "  ", "questions": {"a": NOUL}}, "/name", "non_empty"),
        ({"name": 3, "questions": {"a": NOUL}}, "/name", "type"),
        ({"name": "x" * 201, "questions": {"a": NOUL}}, "/name", "max_length"),
        ({"name": "calls", "questions": {"a": NOUL}, "colour": "blue"}, "/colour", "unknown_field"),
        ({"name": "calls"}, "/questions", "required"),
        ({"name": "calls", "questions": []}, "/questions", "type"),
        (_set(), "/questions", "min_questions"),
        ({**_set(a=NOUL), "context": "c" * 1001}, "/context", "max_length"),
        ({**_set(a=NOUL), "context": 5}, "/context", "type"),
        (_set(**{"": NOUL}), "/questions/", "question_id"),
        (_set(**{"q" * 257: NOUL}), "/questions/" + "q" * 257, "question_id"),
        (_set(**{"a/b~c": {**NOUL, "type": "yesno"}}), "/questions/a~1b~0c/type", "primitive"),
        (_set(a={"instructions": "x"}), "/questions/a/type", "required"),
        (_set(a="Does it ring?"), "/questions/a", "type"),
        (_set(a={**NOUL, "weight": 2}), "/questions/a/weight", "unknown_field"),
        (_set(a={"type": "noul"}), "/questions/a/instructions", "required"),
        (_set(a={**NOUL, "instructions": ""}), "/questions/a/instructions", "non_empty"),
        (_set(a={**NOUL, "instructions": ["x"]}), "/questions/a/instructions", "type"),
        (_set(a={**NOUL, "instructions": "a\x00b"}), "/questions/a/instructions", "no_nul"),
        (_set(a={**NOUL, "criteria": {"yes": "x"}}), "/questions/a/criteria/yes", "unknown_field"),
        (_set(a={**NOUL, "criteria": {"true": 1}}), "/questions/a/criteria/true", "type"),
        (_set(a={**NOUL, "criteria": "yes"}), "/questions/a/criteria", "type"),
        (_set(a={**CHOICE, "criteria": None}), "/questions/a/criteria", "required"),
        (_set(a={**CHOICE, "criteria": {"only": "one"}}), "/questions/a/criteria", "min_options"),
        (_set(a={**CHOICE, "criteria": ["a", "b"]}), "/questions/a/criteria", "type"),
        (_set(a={**CHOICE, "criteria": {"a": "x", "b": ""}}), "/questions/a/criteria/b", "non_empty"),
        (_set(a={**SCORE, "criteria": ["only"]}), "/questions/a/criteria", "min_levels"),
        (_set(a={**SCORE, "criteria": {"0": "a", "1": "b"}}), "/questions/a/criteria", "type"),
        (_set(a={**SCORE, "criteria": ["low", 2]}), "/questions/a/criteria/1", "type"),
        (_set(a={**SPAN, "criteria": {"when": "ring"}}), "/questions/a/criteria", "type"),
        (_set(**RATED, extra=CHOICE), "/questions", "max_rated_questions"),
        (_set(**SPANS, extra=SPAN), "/questions", "max_span_questions"),
    ],
)
def test_each_rule_is_a_422_naming_its_pointer(body: Any, field: str, rule: str) -> None:
    """One refusal per rule, at the JSON Pointer Hume's `param` would name (ids escaped as RFC 6901 says)."""
    assert _refusal(body) == (field, rule)


def test_the_largest_sets_hume_takes_pass() -> None:
    """20 rated and 5 span questions together, a 256-character id and 1,000 characters of context are allowed."""
    body = {**_set(**RATED, **SPANS), "context": "c" * 1000}
    assert len(question_set_in(body).questions) == 25
    assert question_set_in(_set(**{"q" * 256: NOUL})).questions[0]["id"] == "q" * 256


def test_the_message_says_the_rule_in_words() -> None:
    """The message a client shows: Hume's own wording for too few score levels."""
    with pytest.raises(QuestionSetInvalid) as caught:
        question_set_in(_set(clarity={**SCORE, "criteria": ["only"]}))
    assert caught.value.message == "/questions/clarity/criteria: score criteria must define at least 2 levels"


def test_pointer_escapes_tilde_and_slash() -> None:
    assert pointer("questions", "a/b", "~x") == "/questions/a~1b/~0x"


@pytest.mark.parametrize(
    "body",
    [
        _set(a=NOUL, b=SPAN, c=CHOICE, d=SCORE),
        _set(a={**NOUL, "criteria": {"true": "yes"}}),
        _set(a={**SPAN, "criteria": "a ring tone"}),
        {**_set(a=NOUL), "context": None},
    ],
)
def test_the_documented_struct_accepts_what_the_rules_accept(body: dict[str, Any]) -> None:
    question_set_in(body)
    msgspec.convert(body, QuestionSetIn)


@pytest.mark.parametrize(
    "body",
    [
        _set(),
        _set(a={**NOUL, "weight": 2}),
        _set(a={**CHOICE, "criteria": {"only": "one"}}),
        _set(a={**SCORE, "criteria": ["only"]}),
        _set(a={**NOUL, "instructions": " "}),
        _set(a={**NOUL, "type": "yesno"}),
        {**_set(a=NOUL), "context": "c" * 1001},
        _set(**{"q" * 257: NOUL}),
    ],
)
def test_the_documented_struct_refuses_what_the_rules_refuse(body: dict[str, Any]) -> None:
    """The OpenAPI document states the limits the service enforces (counts per primitive aside)."""
    _refusal(body)
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert(body, QuestionSetIn)
