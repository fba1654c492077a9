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


# --- Reading the answers ------------------------------------------------------------------------------------

TopOrder = Literal["strongest", "weakest"]


class AnswerFilterQuery(QueryStruct):
    question: Annotated[str, Meta(description="a question id of the set (all of its questions when absent)")] | None = (
        None
    )
    metadata: Annotated[str, Meta(description="a JSON object the job's metadata contains")] | None = None
    since: Annotated[str, Meta(description="jobs created at or after", extra_json_schema={"format": "date-time"})] | (
        None
    ) = None
    until: Annotated[str, Meta(description="jobs created before", extra_json_schema={"format": "date-time"})] | (
        None
    ) = None
    tenant: Annotated[str, Meta(description="keys reading every tenant: one tenant's jobs only")] | None = None


class TopQuery(AnswerFilterQuery):
    limit: Annotated[int, Meta(ge=1, le=MAX_TOP)] = 20
    option: Annotated[str, Meta(description="choice questions: the option ranked by (default: the first)")] | None = (
        None
    )
    order: TopOrder = "strongest"


class ShareBin(msgspec.Struct):
    from_: float = msgspec.field(name="from")
    to: float = 1.0
    count: int = 0


class LevelBin(msgspec.Struct):
    level: int
    description: str | None
    count: int


class OptionShare(msgspec.Struct):
    option: str | None
    wins: int
    """Answers whose choice (the option with the largest share) was this option."""
    mean_confidence: float | None
    """Mean confidence of those answers."""
    mean_probability: float | None
    """Mean probability of this option over the answers that gave one."""


class QuestionDistribution(msgspec.Struct, omit_defaults=True):
    """One question's answers across the family's jobs (questions matched by id across versions). noul: shares
    in 10 bins, mean and spread; choice: each option's wins and mean probability; score: mean level, spread,
    range and answers per nearest level; span: windows with spans, spans and their total time."""

    question_id: str
    type: Literal["noul", "choice", "score", "span"]
    answers: int
    answered: int | None = None
    mean: float | None = None
    stddev: float | None = None
    min: float | None = None
    max: float | None = None
    mean_confidence: float | None = None
    histogram: list[ShareBin] | None = None
    """noul: answers per tenth of the share (the last bin includes 1)."""
    levels: list[LevelBin] | None = None
    """score: answers per level, each mean level counted at its nearest."""
    options: list[OptionShare] | None = None
    with_spans: int | None = None
    spans: int | None = None
    total_span_ms: int | None = None
    total_window_ms: int | None = None


class SetDistributions(msgspec.Struct):
    question_set_id: str
    family_id: str
    version: int
    questions: list[QuestionDistribution]


class StrongRecording(msgspec.Struct):
    job_id: str
    source_index: int
    source_url: str | None
    window_index: int
    """The recording's strongest (or weakest) window, which ranked it."""
    window_start_ms: int
    window_end_ms: int
    strength: float | None
    share: float | None
    choice: str | None
    confidence: float | None
    score: float | None
    answered_at: str
    job_metadata: dict[str, Any] | None


class TopRecordings(msgspec.Struct):
    question_id: str
    type: Literal["noul", "choice", "score", "span"]
    by: str
    """What ranks the recordings: share, the option's probability, mean level, or ms in spans."""
    order: TopOrder
    items: list[StrongRecording]


class JobAnswersQuery(QueryStruct):
    question: Annotated[str, Meta(description="one question id only")] | None = None
    source: Annotated[int, Meta(ge=0, le=2**31 - 1, description="one source (its index in urls) only")] | None = None
    limit: Annotated[int, Meta(ge=1, le=5000)] = 500
    cursor: Annotated[str, Meta(description="next_cursor of the previous page")] | None = None
    format: Annotated[Literal["json", "csv"], Meta(description="csv: every answer, streamed")] = "json"


class Span(msgspec.Struct):
    start_ms: int
    end_ms: int | None
    probability: float


class AnswerOut(msgspec.Struct):
    """One answer to one question about one window of one source, typed by primitive, with Hume's raw answer."""

    source_index: int
    source_url: str | None
    window_index: int
    window_start_ms: int
    window_end_ms: int
    question_id: str
    primitive: Literal["noul", "choice", "score", "span"]
    share: float | None
    choice: str | None
    confidence: float | None
    option_probabilities: dict[str, float] | None
    score: float | None
    level_probabilities: dict[str, float] | None
    spans: list[Span] | None
    run_id: str | None
    question_set_id: str
    created_at: str
    raw: Any
    """Hume's answer as it came."""


class AnswerPage(msgspec.Struct):
    """A page of a job's answers, question by question (then source, then window)."""

    job_id: str
    items: list[AnswerOut]
    next_cursor: str | None
