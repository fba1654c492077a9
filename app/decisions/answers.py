"""Hume's answers for one window of one recording, as the rows app/store/decisions.py stores.

The decision job calls `window_rows` with what app/hume read from Hume's response (`Answer`s, each keeping
Hume's raw answer) and stores the rows with `decisions.store_answers` in the transaction that records the
window done. A question Hume did not answer gets no row (the window's answers are stored once, together: what
Hume left out of them stays out).
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Mapping
from typing import Any

import orjson

from app.hume.decisions_contract import Answer
from app.store.decisions import AnswerRow
from app.store.tables import QuestionSet

# float4's largest finite value: a number beyond it is kept in the raw answer only.
_REAL_MAX = 3.4028234e38


def _real(value: float | None) -> float | None:
    if value is None or not math.isfinite(value) or abs(value) > _REAL_MAX:
        return None
    return value


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    return value


def json_bytes(value: Any) -> bytes:
    """JSON that jsonb takes: Postgres refuses \\u0000 in text, so NUL becomes U+FFFD (only then is the value
    walked); integers past 64 bits, which orjson refuses, are written by the standard library."""
    try:
        data = orjson.dumps(value)
    except TypeError:
        data = json.dumps(value, separators=(",", ":")).encode()
    if b"\\u0000" in data:
        return json_bytes(_without_nul(value))
    return data


def _json(value: Any) -> bytes | None:
    return None if value is None else json_bytes(value)


def _run_id(value: str | None) -> uuid.UUID | None:
    """Hume documents run_id as a UUID (R/decisions/create.md); anything else is not stored as one."""
    try:
        return None if value is None else uuid.UUID(value)
    except ValueError:
        return None


def window_rows(
    answers: Mapping[str, Answer],
    *,
    job_id: uuid.UUID,
    tenant: str,
    question_set: QuestionSet,
    source_index: int,
    source_url: str | None,
    window_index: int,
    window_start_ms: int,
    window_end_ms: int,
    run_id: str | None,
) -> list[AnswerRow]:
    """The rows of one window's answers, in the set's question order; answers to questions the set does not
    ask are left out (their text is still in the response Hume sent, which the caller may log). Each row is
    typed by the question's primitive as the set asks it (the answer was read as that primitive); a choice's
    probabilities are also stored in the set's option order, as reads sum them."""
    rows = []
    for q in question_set.questions:
        if q["id"] not in answers:
            continue
        answer, primitive = answers[q["id"]], q["type"]
        spans = span_ms = None
        if answer.spans is not None:
            spans = [{"start_ms": s.start_ms, "end_ms": s.end_ms, "probability": s.probability} for s in answer.spans]
            ended = [s.end_ms - s.start_ms for s in answer.spans if s.end_ms is not None]
            span_ms = sum(ended) if ended else None
        probabilities = None
        options = list(q.get("criteria") or {}) if primitive == "choice" else []
        if primitive == "choice" and answer.probabilities is not None and options:
            probabilities = [_real(answer.probabilities.get(option)) for option in options]
        rows.append(AnswerRow(
            job_id=job_id, source_index=source_index, source_url=source_url, window_index=window_index,
            window_start_ms=window_start_ms, window_end_ms=window_end_ms, question_id=q["id"],
            primitive=primitive, raw=json_bytes(answer.raw), question_set_id=question_set.id,
            family_id=question_set.family_id, tenant=tenant, share=_real(answer.share),
            choice=None if answer.choice is None else answer.choice.replace("\x00", "\ufffd"),
            confidence=_real(answer.confidence),
            option_probabilities=_json(answer.probabilities) if primitive == "choice" else None,
            probabilities=probabilities, score=_real(answer.score),
            level_probabilities=_json(answer.probabilities) if primitive == "score" else None,
            spans=_json(spans), span_count=None if spans is None else len(spans), span_ms=span_ms,
            run_id=_run_id(run_id),
        ))  # fmt: skip
    return rows
