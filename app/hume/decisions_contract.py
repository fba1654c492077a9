"""Hume's Audio Decisions API as far as its docs go: every fact and every assumption in one module.

Each constant names its source page (`R/` = dev.hume.ai/audio-decisions/reference/, `D/` = .../docs/,
`C/` = .../changelog; collected in /work/shared/hume/AUDIO-DECISIONS-FACTS.md). Where the docs are silent
the comment starts with `ASSUMED:`; those are the values `python -m app hume check --decisions` lets the
first user with a key confirm or correct against Hume itself. The assumed wire shapes agree with other vendors'
decision APIs of the same primitives (Google GenAI `gaos` decisions: `{"type": "noul", "instructions",
"criteria": {"true", "false"}}`, choice criteria option → description, score criteria a 0-based list; sapiom's
answers `noul`, `choice`/`probabilities`/`confidence`, `score`/`legend`): corroboration, not Hume's word
(AUDIO-DECISIONS-FACTS §8).

Our question shape (the service's API, validated by the question-set feature) is

    {"type": "noul"|"choice"|"score"|"span", "instructions": str, "criteria": ...}

with criteria: noul optional `{"true": str, "false": str}`; choice `{"<option name>": "<description>"}` (two
or more); score a list of two or more level descriptions (index = level, 0-based); span an optional string.
`question_wire` turns it into what goes on Hume's wire; `read_answer` / `read_response` read Hume's answers
tolerantly (every plausible spelling, Hume's raw answer kept, unknown fields listed).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, NamedTuple

# --- Transport -------------------------------------------------------------------------------------------

CLOUD_HOST: Final = "https://api.cloud.hume.ai"  # R/decisions/create.md
API_KEY_HEADER: Final = "X-Hume-Api-Key"  # D/authentication
DECISIONS_PATH: Final = "/v0/decisions/file"  # R/decisions/create.md (multipart/form-data)
INPUT_TOKENS_PATH: Final = "/v0/decisions/file/input_tokens"  # R/decisions/input-tokens.md (application/json)
RUNS_PATH: Final = "/v0/decisions/run"  # R/runs/list.md; get is RUNS_PATH/{run_id} (R/runs/get.md), singular
REQUEST_PART: Final = "request"  # R/decisions/create.md: "two parts, sent in this order": request, then file
FILE_PART: Final = "file"  # R/decisions/create.md
REQUEST_PART_CONTENT_TYPE: Final = "application/json"  # ASSUMED: the request part's own content type is unstated
MAX_FILES: Final = 1  # D/limits-and-errors: one file per request, else message_invalid

# --- Limits ----------------------------------------------------------------------------------------------

PRIMITIVES: Final = ("noul", "choice", "score", "span")  # D/primitives
RATED_PRIMITIVES: Final = ("noul", "choice", "score")  # D/primitives: answers estimate a panel of raters
Primitive = Literal["noul", "choice", "score", "span"]
EXPERIMENTAL_PRIMITIVES: Final = ("span",)  # D/primitives: span is experimental, formats stable
MAX_RATED_QUESTIONS: Final = 20  # R/ (reference index): at most 20 noul+choice+score together
MAX_SPAN_QUESTIONS: Final = 5  # R/ (reference index): and at most 5 span
MIN_QUESTIONS: Final = 1  # ASSUMED: no minimum documented; an empty `questions` map is refused
MAX_QUESTION_ID_CHARS: Final = 256  # R/decisions/input-tokens: "any non-empty string of up to 256 characters"
MAX_CONTEXT_CHARS: Final = 1000  # R/decisions/create.md: context ≤ 1000 characters
MIN_CHOICE_OPTIONS: Final = 2  # D/primitives: "two or more unordered options"
MIN_SCORE_LEVELS: Final = 2  # D/errors.md: "score criteria must define at least 2 levels"
MAX_CHOICE_OPTIONS: Final[int | None] = None  # ASSUMED: no maximum documented
MAX_SCORE_LEVELS: Final[int | None] = None  # ASSUMED: no maximum documented
MAX_INSTRUCTIONS_CHARS: Final[int | None] = None  # ASSUMED: no length limit on instructions/criteria documented
MIN_AUDIO_MS: Final = 1000  # C/2026/11/7 (was 5000); D/limits-and-errors → audio_too_short below
MAX_AUDIO_MS: Final = 300_000  # D/limits-and-errors: 5 min → audio_too_long above
ADVISED_MIN_AUDIO_MS: Final = 5000  # D/limits-and-errors: "at least 5 seconds for most questions"
MAX_REQUEST_BYTES: Final = 25_000_000  # D/limits-and-errors: request + file parts together → payload_too_large
AUDIO_FORMATS: Final = ("mp3", "wav")  # D/limits-and-errors: MP3 or WAV only, else audio_format_unsupported
WAV_SAMPLE_FORMATS: Final = ("pcm", "float")  # cookbooks/evaluating-many-recordings: PCM or floating point
MODEL_SAMPLE_RATE: Final = 16_000  # pypi hume-audio-decisions: resampled and mixed to mono, 16 kHz
REQUESTS_PER_MINUTE: Final = 600  # C/2026/11/6 (was 60): per organization, every endpoint, all keys
RATE_WINDOW_S: Final = 60  # C/2026/11/6: a sliding 60-second window
SPAN_MIN_PROBABILITY: Final = 0.5  # C/2026/12/1: only spans with probability ≥ 0.5 are returned
RUNS_PAGE_SIZE_MIN: Final = 1  # R/runs/list.md
RUNS_PAGE_SIZE_MAX: Final = 200  # R/runs/list.md
RUNS_PAGE_SIZE_DEFAULT: Final = 50  # R/runs/list.md
RUN_STATUSES: Final = ("ended", "errored")  # R/runs/get.md
CLIENT_TIMEOUT_S: Final = 10.0  # docs.pipecat.ai hume-audio classifier: 10 s timeout (Hume's own integration)

# --- Errors ----------------------------------------------------------------------------------------------

QUESTION_INVALID: Final = "question_invalid"  # D/errors.md (400, example body)
AUDIO_TOO_SHORT: Final = "audio_too_short"  # D/limits-and-errors
AUDIO_TOO_LONG: Final = "audio_too_long"  # D/limits-and-errors
PAYLOAD_TOO_LARGE: Final = "payload_too_large"  # D/limits-and-errors
AUDIO_FORMAT_UNSUPPORTED: Final = "audio_format_unsupported"  # D/limits-and-errors
MESSAGE_INVALID: Final = "message_invalid"  # D/limits-and-errors (more than one file; an unreadable body)
ERROR_CODES: Final = frozenset(
    {QUESTION_INVALID, AUDIO_TOO_SHORT, AUDIO_TOO_LONG, PAYLOAD_TOO_LARGE, AUDIO_FORMAT_UNSUPPORTED, MESSAGE_INVALID}
)
MEDIA_ERROR_CODES: Final = frozenset({AUDIO_TOO_SHORT, AUDIO_TOO_LONG, PAYLOAD_TOO_LARGE, AUDIO_FORMAT_UNSUPPORTED})
"""Codes about the one recording sent, not the question set: that source fails, the job goes on."""
ERROR_STATUS: Final[Mapping[str, int]] = {
    QUESTION_INVALID: 400,  # D/errors.md
    MESSAGE_INVALID: 400,  # ASSUMED: as v1's message_invalid (HUME-V1-FACTS §4)
    AUDIO_TOO_SHORT: 400,  # ASSUMED
    AUDIO_TOO_LONG: 400,  # ASSUMED: a duration check, unlike v1's 413 size check
    PAYLOAD_TOO_LARGE: 413,  # ASSUMED: as v1's too-large codes
    AUDIO_FORMAT_UNSUPPORTED: 415,  # ASSUMED: as v1's unsupported_media_type
}
"""The status each code comes with. The client decides by code and status together, never by this table."""
ERROR_BODY_KEYS: Final = ("type", "code", "message", "param", "request_id")  # D/errors.md (param may be absent)
GATEWAY_401_MESSAGE: Final = "Unauthorized"  # D/authentication: {"message", "request_id" when a key was sent}
GATEWAY_429_MESSAGE: Final = "API rate limit exceeded"  # D/errors: {"message"} only, no type/code
PAYMENT_REQUIRED_STATUS: Final = 402  # openapi/audio-decisions-api.json: no payment method or an unpaid invoice
FORBIDDEN_STATUS: Final = 403  # home/authentication: org lacks access or the key's permissions exclude it
RETRYABLE_STATUSES: Final = frozenset({408, 429})  # ASSUMED with every 5xx: "busy" is unnamed (pipecat retries it)
BUSY_STATUS: Final = 503  # ASSUMED: the status the emulator answers when busy (v1 uses 503 server_busy)
BUSY_CODE: Final = "server_busy"  # ASSUMED: as v1 (HUME-V1-FACTS §4); Audio Decisions' busy code is undocumented

# --- Wire shapes (mostly assumed) -----------------------------------------------------------------------

QUESTIONS_KEY: Final = "questions"  # R/decisions/create.md
CONTEXT_KEY: Final = "context"  # R/decisions/create.md
QUESTION_TYPE_KEY: Final = "type"  # ASSUMED: the union's discriminator key is not visible in the reference
INSTRUCTIONS_KEY: Final = "instructions"  # D/primitives: the model reads the question's instructions
CRITERIA_KEY: Final = "criteria"  # D/errors.md: param /questions/clarity/criteria
NOUL_CRITERIA_KEYS: Final = ("true", "false")  # ASSUMED: D/primitives speaks of "true and false guidance"
AUDIO_DURATION_KEY: Final = "audio_duration_ms"  # R/decisions/input-tokens.md
RUN_ID_KEY: Final = "run_id"  # R/decisions/create.md (uuid)
RECEIVED_KEY: Final = "received"  # D/billing: received.input_tokens in each decisions response
INPUT_TOKENS_KEY: Final = "input_tokens"  # D/billing; ASSUMED also the input_tokens endpoint's response key
ANSWERS_KEY: Final = "answers"  # ASSUMED: answers are "keyed by question ID", container name unseen

# Spellings read, first found wins. The first of each is what the emulator sends.
ANSWER_CONTAINER_KEYS: Final = (ANSWERS_KEY, "results", "decisions", "outputs")  # ASSUMED
QUESTION_ID_KEYS: Final = ("question_id", "id", "name")  # ASSUMED: if answers come as a list
NOUL_SHARE_KEYS: Final = ("noul", "probability", "share", "p_true", "yes")  # ASSUMED: "share of raters, yes"
CHOICE_KEYS: Final = ("choice", "option", "label", "value")  # D/interpreting-answers: `choice`
CONFIDENCE_KEYS: Final = ("confidence",)  # D/interpreting-answers: `confidence`
PROBABILITIES_KEYS: Final = ("probabilities", "probability_by_option", "distribution", "probs")  # D/primitives text
SCORE_KEYS: Final = ("score", "mean", "mean_level", "value")  # D/interpreting-answers: `score`, the mean level
LEGEND_KEYS: Final = ("legend",)  # D/interpreting-answers: "read through legend"
SPANS_KEYS: Final = ("spans",)  # C/2026/12/1: `spans`
SPAN_START_KEYS: Final = ("audio_start_ms", "start_ms")  # C/2026/12/1: audio_start_ms
SPAN_END_KEYS: Final = ("audio_end_ms", "end_ms")  # ASSUMED: the end field is unnamed
SPAN_PROBABILITY_KEYS: Final = ("probability", "p", "share")  # C/2026/12/1: probability
OPTION_NAME_KEYS: Final = ("option", "name", "label", "level", "index")  # ASSUMED: if probabilities are a list
ANSWER_META_KEYS: Final = (QUESTION_TYPE_KEY, "primitive", *QUESTION_ID_KEYS)  # ASSUMED: echoed, harmless
RESPONSE_KEYS: Final = (RUN_ID_KEY, RECEIVED_KEY, "request_id", "usage", INPUT_TOKENS_KEY, *ANSWER_CONTAINER_KEYS)
RECEIVED_KEYS: Final = (INPUT_TOKENS_KEY,)  # D/billing; the audio size's key is unseen (D/runs), so logged


def question_wire(question: Mapping[str, Any]) -> dict[str, Any]:
    """One question of our shape as it goes on Hume's wire. ASSUMED: the same flat object, the primitive under
    QUESTION_TYPE_KEY; choice criteria an object of option name → description; score criteria a list of level
    descriptions (index = level); an absent or null criteria is not sent (noul and span may omit it)."""
    wire: dict[str, Any] = {QUESTION_TYPE_KEY: question["type"], INSTRUCTIONS_KEY: question["instructions"]}
    criteria = question.get("criteria")
    if criteria is not None:
        if question["type"] == "score":
            wire[CRITERIA_KEY] = list(criteria)
        else:
            wire[CRITERIA_KEY] = dict(criteria) if isinstance(criteria, Mapping) else criteria
    return wire


def request_wire(questions: Mapping[str, Mapping[str, Any]], context: str | None) -> dict[str, Any]:
    """The `request` part (and, with audio_duration_ms, the input_tokens body): question order kept, since
    "an answer can change when other questions are added, removed or reordered" (D/writing-questions)."""
    body: dict[str, Any] = {QUESTIONS_KEY: {qid: question_wire(q) for qid, q in questions.items()}}
    if context is not None:
        body[CONTEXT_KEY] = context
    return body


# --- Reading answers ------------------------------------------------------------------------------------


class Span(NamedTuple):
    start_ms: int
    end_ms: int | None
    probability: float


@dataclass(frozen=True)
class Answer:
    """One question's answer as we read it, with Hume's raw answer beside it."""

    primitive: str
    share: float | None = None
    """noul: the share of raters who would answer yes (0-1)."""
    choice: str | None = None
    confidence: float | None = None
    probabilities: dict[str, float] | None = None
    """choice: option → share; score: level index as a string ("0", "1", …) → share."""
    score: float | None = None
    """score: the mean level (probability-weighted, 0-based)."""
    legend: dict[str, str] | None = None
    spans: list[Span] | None = None
    """span: (start_ms, end_ms or None, probability), sorted by start."""
    raw: Any = None
    unknown_fields: tuple[str, ...] = field(default=())
    """Fields of the raw answer this reader does not know (dotted paths)."""


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _first(raw: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        if key in raw and raw[key] is not None:
            return raw[key]
    return None


def _probabilities(value: Any) -> dict[str, float] | None:
    """A map name → share, a list of shares (index = level), or a list of {option|level…, probability}."""
    if isinstance(value, Mapping):
        read = {str(k): n for k, v in value.items() if (n := _number(v)) is not None}
        return read or None
    if isinstance(value, list):
        out: dict[str, float] = {}
        for index, item in enumerate(value):
            if isinstance(item, Mapping):
                name = _first(item, OPTION_NAME_KEYS)
                share = _number(_first(item, SPAN_PROBABILITY_KEYS))
                if share is not None:
                    out[str(index if name is None else name)] = share
            elif (share := _number(item)) is not None:
                out[str(index)] = share
        return out or None
    return None


def _legend(value: Any) -> dict[str, str] | None:
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items()}
    if isinstance(value, list):
        return {str(i): str(v) for i, v in enumerate(value)}
    return None


def _span(item: Any) -> Span | None:
    if isinstance(item, Mapping):
        start = _number(_first(item, SPAN_START_KEYS))
        end = _number(_first(item, SPAN_END_KEYS))
        share = _number(_first(item, SPAN_PROBABILITY_KEYS))
    elif isinstance(item, list | tuple) and len(item) == 3:  # ASSUMED: a bare [start, end, probability]
        start, end, share = (_number(v) for v in item)
    else:
        return None
    if start is None or share is None:
        return None
    return Span(round(start), None if end is None else round(end), share)


def _sorted(spans: Iterable[Span]) -> list[Span]:
    """By start (C/2026/12/1 sorts by audio_start_ms); an end that may be None is never compared."""
    return sorted(spans, key=lambda s: s.start_ms)


def _unknown(raw: Mapping[str, Any], known: tuple[str, ...], prefix: str = "") -> list[str]:
    return [f"{prefix}{key}" for key in raw if key not in known]


_KNOWN: Final[Mapping[str, tuple[str, ...]]] = {
    "noul": (*ANSWER_META_KEYS, *NOUL_SHARE_KEYS, *CONFIDENCE_KEYS, *PROBABILITIES_KEYS),
    "choice": (*ANSWER_META_KEYS, *CHOICE_KEYS, *CONFIDENCE_KEYS, *PROBABILITIES_KEYS),
    "score": (*ANSWER_META_KEYS, *SCORE_KEYS, *CONFIDENCE_KEYS, *PROBABILITIES_KEYS, *LEGEND_KEYS),
    "span": (*ANSWER_META_KEYS, *SPANS_KEYS),
}
_SPAN_KNOWN: Final = (*SPAN_START_KEYS, *SPAN_END_KEYS, *SPAN_PROBABILITY_KEYS)


def read_answer(primitive: str, raw: Any) -> Answer:
    """One answer, whichever plausible spelling Hume uses; a bare number (noul), string (choice) or list
    (span) is read too. What cannot be read stays None, and `raw` always holds what came."""
    if not isinstance(raw, Mapping):
        if primitive == "noul":
            return Answer(primitive, share=_number(raw), raw=raw)
        if primitive == "choice" and isinstance(raw, str):
            return Answer(primitive, choice=raw, raw=raw)
        if primitive == "span" and isinstance(raw, list):
            return Answer(primitive, spans=_sorted(s for s in map(_span, raw) if s is not None), raw=raw)
        return Answer(primitive, raw=raw)
    unknown = _unknown(raw, _KNOWN.get(primitive, ANSWER_META_KEYS))
    confidence = _number(_first(raw, CONFIDENCE_KEYS))
    probabilities = _probabilities(_first(raw, PROBABILITIES_KEYS))
    if primitive == "noul":
        share = _number(_first(raw, NOUL_SHARE_KEYS))
        if share is None and probabilities:  # ASSUMED: {"true": p, "false": 1-p}
            share = probabilities.get("true", probabilities.get("yes"))
        return Answer(primitive, share=share, confidence=confidence, probabilities=probabilities, raw=raw,
                      unknown_fields=tuple(unknown))  # fmt: skip
    if primitive == "choice":
        chosen = _first(raw, CHOICE_KEYS)
        choice = str(chosen) if isinstance(chosen, str | int) else None
        if choice is None and probabilities:  # D/primitives: the option with the largest share
            choice = max(probabilities, key=probabilities.__getitem__)
        return Answer(primitive, choice=choice, confidence=confidence, probabilities=probabilities, raw=raw,
                      unknown_fields=tuple(unknown))  # fmt: skip
    if primitive == "score":
        score = _number(_first(raw, SCORE_KEYS))
        if score is None and probabilities and all(k.isdigit() for k in probabilities):
            total = sum(probabilities.values()) or 1.0  # D/interpreting-answers: the mean level
            score = sum(int(k) * p for k, p in probabilities.items()) / total
        return Answer(primitive, score=score, confidence=confidence, probabilities=probabilities,
                      legend=_legend(_first(raw, LEGEND_KEYS)), raw=raw, unknown_fields=tuple(unknown))  # fmt: skip
    if primitive == "span":
        items = _first(raw, SPANS_KEYS)
        spans: list[Span] = []
        for item in items if isinstance(items, list) else []:
            if isinstance(item, Mapping):
                unknown.extend(_unknown(item, _SPAN_KNOWN, "spans[]."))
            if (span := _span(item)) is not None:
                spans.append(span)
        return Answer(primitive, spans=_sorted(spans), raw=raw, unknown_fields=tuple(dict.fromkeys(unknown)))
    return Answer(primitive, raw=raw, unknown_fields=tuple(unknown))


def _answer_primitive(raw: Any, given: str | None) -> str:
    """The primitive we asked with; failing that, what the answer names or its keys suggest (ASSUMED)."""
    if given is not None:
        return given
    if isinstance(raw, Mapping):
        named = raw.get(QUESTION_TYPE_KEY, raw.get("primitive"))
        if named in PRIMITIVES:
            return str(named)
        if _first(raw, SPANS_KEYS) is not None:
            return "span"
        if _first(raw, LEGEND_KEYS) is not None or isinstance(raw.get("score"), int | float):
            return "score"
        if isinstance(raw.get("choice"), str):
            return "choice"
    return "noul"


class ReadResponse(NamedTuple):
    run_id: str | None
    answers: dict[str, Answer]
    input_tokens: int | None
    raw: Any


def _answer_map(body: Mapping[str, Any], primitives: Mapping[str, str] | None) -> dict[str, Any]:
    container = _first(body, ANSWER_CONTAINER_KEYS)
    if isinstance(container, Mapping):
        return dict(container)
    if isinstance(container, list):
        out: dict[str, Any] = {}
        for item in container:
            if isinstance(item, Mapping) and (qid := _first(item, QUESTION_ID_KEYS)) is not None:
                out[str(qid)] = item
        return out
    if primitives:  # ASSUMED: answers at the top level, each under its question ID
        return {qid: body[qid] for qid in primitives if qid in body}
    return {}


def read_response(body: Any, primitives: Mapping[str, str] | None = None) -> ReadResponse:
    """(run_id, {question_id: Answer}, received.input_tokens, body). `primitives` (question id → primitive,
    from the request) decides how each answer is read; without it the answer's own keys do."""
    if not isinstance(body, Mapping):
        return ReadResponse(None, {}, None, body)
    run_id = body.get(RUN_ID_KEY)
    answers = {
        qid: read_answer(_answer_primitive(raw, (primitives or {}).get(qid)), raw)
        for qid, raw in _answer_map(body, primitives).items()
    }
    received = body.get(RECEIVED_KEY)
    usage = body.get("usage")
    tokens = _number(
        (received.get(INPUT_TOKENS_KEY) if isinstance(received, Mapping) else None)
        or body.get(INPUT_TOKENS_KEY)
        or (usage.get(INPUT_TOKENS_KEY) if isinstance(usage, Mapping) else None)
    )
    return ReadResponse(None if run_id is None else str(run_id), answers, None if tokens is None else int(tokens), body)


def unknown_response_fields(body: Any, primitives: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """Fields of a decisions response outside the answers this reader does not know (dotted paths)."""
    if not isinstance(body, Mapping):
        return ()
    known: tuple[str, ...] = RESPONSE_KEYS
    if primitives and _first(body, ANSWER_CONTAINER_KEYS) is None:
        known = (*known, *primitives)
    unknown = _unknown(body, known)
    received = body.get(RECEIVED_KEY)
    if isinstance(received, Mapping):
        unknown.extend(_unknown(received, RECEIVED_KEYS, f"{RECEIVED_KEY}."))
    return tuple(unknown)


def read_input_tokens(body: Any) -> int | None:
    """The input_tokens endpoint's estimate. ASSUMED key `input_tokens` ("The estimated number of…" is all
    R/decisions/input-tokens.md shows); also read under `received`, or a bare number."""
    if isinstance(body, Mapping):
        value = body.get(INPUT_TOKENS_KEY)
        received = body.get(RECEIVED_KEY)
        if value is None and isinstance(received, Mapping):
            value = received.get(INPUT_TOKENS_KEY)
        if value is None:
            value = body.get("tokens", body.get("estimated_input_tokens"))
    else:
        value = body
    number = _number(value)
    return None if number is None else int(number)
