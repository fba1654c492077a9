"""The rules a question set must meet to be a document Hume accepts, checked by hand rather than by msgspec so
that each refusal names the JSON Pointer of the offending value (`/questions/<id>/criteria`) as Hume's own
errors do in `param` (D/errors.md), with a `rule` saying which limit it broke. The limits are Hume's
(app/hume/decisions_contract.py); app/decisions/schemas.py declares the same shape for the OpenAPI document."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.decisions.schemas import MAX_NAME_CHARS
from app.errors import InvalidInput
from app.hume import decisions_contract as hume


class QuestionSetInvalid(InvalidInput):
    """A question set Hume would refuse: `field` is the JSON Pointer of the value, `rule` the rule it breaks."""

    def __init__(self, pointer: str, rule: str, message: str) -> None:
        super().__init__(pointer or "/", message)
        self.details = {"field": pointer or "/", "rule": rule}


@dataclass(frozen=True)
class QuestionSetDraft:
    name: str
    context: str | None
    questions: list[dict[str, Any]]
    """In the order given: {"id", "type", "instructions", "criteria"} (criteria None when left out)."""


def pointer(*tokens: str | int) -> str:
    """A JSON Pointer (RFC 6901): "~" is written "~0" and "/" "~1" inside a token."""
    return "".join("/" + str(t).replace("~", "~0").replace("/", "~1") for t in tokens)


def _text(value: Any, at: str, *, what: str, max_chars: int | None = None) -> str:
    if not isinstance(value, str):
        raise QuestionSetInvalid(at, "type", f"{what} must be a string")
    if not value.strip():
        raise QuestionSetInvalid(at, "non_empty", f"{what} must not be empty")
    if "\x00" in value:
        raise QuestionSetInvalid(at, "no_nul", f"{what} must not contain NUL characters")
    if max_chars is not None and len(value) > max_chars:
        raise QuestionSetInvalid(at, "max_length", f"{what} must be at most {max_chars} characters, got {len(value)}")
    return value


def _fields(value: Any, at: str, *, what: str, allowed: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise QuestionSetInvalid(at, "type", f"{what} must be a JSON object")
    for key in value:
        if key not in allowed:
            raise QuestionSetInvalid(
                at + pointer(key), "unknown_field", f"unknown field; {what} has {', '.join(allowed)}"
            )
    return value


def _criteria(kind: str, value: Any, at: str) -> Any:
    """The criteria of a question of primitive `kind`, checked as D/primitives describes each primitive."""
    if kind == "noul":
        if value is None:
            return None
        given = _fields(value, at, what="noul criteria", allowed=hume.NOUL_CRITERIA_KEYS)
        return {k: _text(v, at + pointer(k), what=f"criteria {k}") for k, v in given.items()}
    if kind == "span":
        return None if value is None else _text(value, at, what="span criteria")
    if value is None:
        raise QuestionSetInvalid(at, "required", f"a {kind} question needs criteria")
    if kind == "choice":
        if not isinstance(value, dict):
            raise QuestionSetInvalid(at, "type", "choice criteria must be a JSON object of option name to description")
        if len(value) < hume.MIN_CHOICE_OPTIONS:
            raise QuestionSetInvalid(
                at, "min_options", f"choice criteria must define at least {hume.MIN_CHOICE_OPTIONS} options"
            )
        if hume.MAX_CHOICE_OPTIONS is not None and len(value) > hume.MAX_CHOICE_OPTIONS:
            raise QuestionSetInvalid(
                at, "max_options", f"choice criteria must define at most {hume.MAX_CHOICE_OPTIONS} options"
            )
        options = {}
        for option, description in value.items():
            _text(option, at + pointer(option), what="an option's name")
            options[option] = _text(description, at + pointer(option), what="an option's description")
        return options
    if not isinstance(value, list):
        raise QuestionSetInvalid(at, "type", "score criteria must be a list of level descriptions, lowest level first")
    if len(value) < hume.MIN_SCORE_LEVELS:
        # Hume's own wording for this refusal (D/errors.md).
        message = f"score criteria must define at least {hume.MIN_SCORE_LEVELS} levels"
        raise QuestionSetInvalid(at, "min_levels", message)
    if hume.MAX_SCORE_LEVELS is not None and len(value) > hume.MAX_SCORE_LEVELS:
        raise QuestionSetInvalid(at, "max_levels", f"score criteria must define at most {hume.MAX_SCORE_LEVELS} levels")
    return [_text(level, at + pointer(i), what="a level's description") for i, level in enumerate(value)]


_QUESTION_FIELDS = ("type", "instructions", "criteria")


def _question(qid: Any, value: Any) -> dict[str, Any]:
    at = pointer("questions", qid)
    if not isinstance(qid, str) or not qid or len(qid) > hume.MAX_QUESTION_ID_CHARS:
        limit = hume.MAX_QUESTION_ID_CHARS
        raise QuestionSetInvalid(
            at, "question_id", f"a question id must be a non-empty string of at most {limit} characters"
        )
    if "\x00" in qid:
        raise QuestionSetInvalid(at, "no_nul", "a question id must not contain NUL characters")
    given = _fields(value, at, what="a question", allowed=_QUESTION_FIELDS)
    if given.get("type") is None:
        raise QuestionSetInvalid(at + "/type", "required", f"type is required: one of {', '.join(hume.PRIMITIVES)}")
    kind = given["type"]
    if kind not in hume.PRIMITIVES:
        raise QuestionSetInvalid(at + "/type", "primitive", f"type must be one of {', '.join(hume.PRIMITIVES)}")
    if "instructions" not in given:
        raise QuestionSetInvalid(at + "/instructions", "required", "instructions are required")
    instructions = _text(
        given["instructions"], at + "/instructions", what="instructions", max_chars=hume.MAX_INSTRUCTIONS_CHARS
    )
    criteria = _criteria(kind, given.get("criteria"), at + "/criteria")
    return {"id": qid, "type": kind, "instructions": instructions, "criteria": criteria}


def question_set_in(data: dict[str, Any]) -> QuestionSetDraft:
    """The body of POST or PUT /v1/question-sets as a draft, or the first rule it breaks (a 422 naming its
    pointer). The limits are Hume's (decisions_contract): a set we accept is one Hume accepts, as far as its
    documentation says."""
    _fields(data, "", what="a question set", allowed=("name", "questions", "context"))
    if "name" not in data:
        raise QuestionSetInvalid("/name", "required", "name is required")
    name = _text(data["name"], "/name", what="name", max_chars=MAX_NAME_CHARS)
    context = data.get("context")
    if context is not None:
        if not isinstance(context, str):
            raise QuestionSetInvalid("/context", "type", "context must be a string")
        if "\x00" in context:
            raise QuestionSetInvalid("/context", "no_nul", "context must not contain NUL characters")
        if len(context) > hume.MAX_CONTEXT_CHARS:
            message = f"context must be at most {hume.MAX_CONTEXT_CHARS} characters, got {len(context)}"
            raise QuestionSetInvalid("/context", "max_length", message)
    if "questions" not in data:
        raise QuestionSetInvalid("/questions", "required", "questions are required")
    given = data["questions"]
    if not isinstance(given, dict):
        raise QuestionSetInvalid("/questions", "type", "questions must be a JSON object of question id to question")
    if len(given) < hume.MIN_QUESTIONS:
        raise QuestionSetInvalid("/questions", "min_questions", f"at least {hume.MIN_QUESTIONS} question is required")
    questions = [_question(qid, value) for qid, value in given.items()]
    rated = sum(q["type"] in hume.RATED_PRIMITIVES for q in questions)
    if rated > hume.MAX_RATED_QUESTIONS:
        raise QuestionSetInvalid(
            "/questions", "max_rated_questions",
            f"at most {hume.MAX_RATED_QUESTIONS} noul, choice and score questions together, got {rated}",
        )  # fmt: skip
    spans = len(questions) - rated
    if spans > hume.MAX_SPAN_QUESTIONS:
        raise QuestionSetInvalid(
            "/questions", "max_span_questions", f"at most {hume.MAX_SPAN_QUESTIONS} span questions, got {spans}"
        )
    return QuestionSetDraft(name=name, context=context, questions=questions)
