"""/v1/question-sets and the answers' reads as the API declares them, and the rules a question set must meet
to be a document Hume accepts.

The structs below are the OpenAPI document (their limits come from Hume's, in app/hume/decisions_contract.py).
A question set is checked by `question_set_in`, by hand rather than by msgspec, so that each refusal names the
JSON Pointer of the offending value (`/questions/<id>/criteria`) as Hume's own errors do in `param`
(D/errors.md), with a `rule` saying which limit it broke.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from app.api.typed_input import QueryStruct
from app.hume import decisions_contract as hume

MAX_NAME_CHARS = 200
MAX_PAGE = 200
MAX_TOP = 1000

NonEmpty = Annotated[str, Meta(min_length=1, pattern=r"\S")]
QuestionId = Annotated[str, Meta(min_length=1, max_length=hume.MAX_QUESTION_ID_CHARS)]


class NoulCriteria(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """What counts as yes (`true`) and as no (`false`); either may be left out."""

    true: NonEmpty | None = None
    false: NonEmpty | None = None


class NoulQuestion(msgspec.Struct, tag="noul", tag_field="type", forbid_unknown_fields=True):
    """A yes-or-no question; answered with the share of raters who would say yes."""

    instructions: NonEmpty
    criteria: NoulCriteria | None = None


class ChoiceQuestion(msgspec.Struct, tag="choice", tag_field="type", forbid_unknown_fields=True):
    """Two or more unordered options, each option's name to its description."""

    instructions: NonEmpty
    criteria: Annotated[dict[NonEmpty, NonEmpty], Meta(min_length=hume.MIN_CHOICE_OPTIONS)]


class ScoreQuestion(msgspec.Struct, tag="score", tag_field="type", forbid_unknown_fields=True):
    """Two or more ordered levels, each a description; the list's index is the level (0 first)."""

    instructions: NonEmpty
    criteria: Annotated[list[NonEmpty], Meta(min_length=hume.MIN_SCORE_LEVELS)]


class SpanQuestion(msgspec.Struct, tag="span", tag_field="type", forbid_unknown_fields=True):
    """When an event occurs in the audio (Hume marks span experimental)."""

    instructions: NonEmpty
    criteria: NonEmpty | None = None


Question = NoulQuestion | ChoiceQuestion | ScoreQuestion | SpanQuestion


class QuestionSetIn(msgspec.Struct, forbid_unknown_fields=True):
    """A question set. `questions` keeps its order: Hume answers all questions in one inference, and "an answer
    can change when other questions are added, removed or reordered". At most 20 noul, choice and score
    questions together and at most 5 span questions; `context` at most 1,000 characters."""

    name: Annotated[str, Meta(min_length=1, max_length=MAX_NAME_CHARS, pattern=r"\S")]
    questions: Annotated[
        dict[QuestionId, Question],
        Meta(min_length=hume.MIN_QUESTIONS, max_length=hume.MAX_RATED_QUESTIONS + hume.MAX_SPAN_QUESTIONS),
    ]
    context: Annotated[str, Meta(max_length=hume.MAX_CONTEXT_CHARS)] | None = None


class QuestionOut(msgspec.Struct):
    type: Literal["noul", "choice", "score", "span"]
    instructions: str
    criteria: Any


class QuestionSetOut(msgspec.Struct):
    """One version of a question set. Versions are immutable; an edit (PUT) makes the next version of the same
    family and leaves this one as it is, so the jobs that used it keep their questions."""

    id: str
    family_id: str
    version: int
    name: str
    context: str | None
    questions: dict[str, QuestionOut]
    question_ids: list[str]
    """The questions' order (some JSON readers reorder an object's keys)."""
    created_at: str
    archived_at: str | None
    latest_id: str
    """The family's newest version: edits are made to it."""
    latest_version: int


class QuestionSetPage(msgspec.Struct):
    items: list[QuestionSetOut]
    next_cursor: str | None


class QuestionSetVersions(msgspec.Struct):
    family_id: str
    items: list[QuestionSetOut]


class QuestionSetListQuery(QueryStruct):
    archived: Annotated[bool, Meta(description="include archived sets")] = False
    limit: Annotated[int, Meta(ge=1, le=MAX_PAGE)] = 50
    cursor: Annotated[str, Meta(description="next_cursor of the previous page")] | None = None
