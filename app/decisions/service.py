"""Question sets (create, edit as a new version, archive, read) and their answers as analysts read them.

Writes belong to the key's tenant; reads to the key's read tenant (every tenant for analyst and admin keys).
Another tenant's set answers as one that does not exist.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.api.typed_input import datetime_param, json_object_param
from app.decisions.question_rules import question_set_in
from app.decisions.schemas import (
    AnswerFilterQuery,
    AnswerOut,
    AnswerPage,
    JobAnswersQuery,
    LevelBin,
    OptionShare,
    QuestionDistribution,
    QuestionOut,
    QuestionSetListQuery,
    QuestionSetOut,
    QuestionSetPage,
    QuestionSetVersions,
    SetDistributions,
    ShareBin,
    Span,
    StrongRecording,
    TopQuery,
    TopRecordings,
)
from app.deps import Deps
from app.errors import Conflict, InvalidInput, NotFound
from app.store import decision_reads, question_sets
from app.store.db import copy_out_chunks
from app.store.tables import QuestionSet


def question_set_out(row: QuestionSet, newest: QuestionSet) -> QuestionSetOut:
    return QuestionSetOut(
        id=str(row.id), family_id=str(row.family_id), version=row.version, name=row.name, context=row.context,
        questions={q["id"]: QuestionOut(q["type"], q["instructions"], q.get("criteria")) for q in row.questions},
        question_ids=[q["id"] for q in row.questions], created_at=row.created_at.isoformat(),
        archived_at=None if row.archived_at is None else row.archived_at.isoformat(), latest_id=str(newest.id),
        latest_version=newest.version,
    )  # fmt: skip


async def _found(session: AsyncSession, set_id: uuid.UUID, tenant: str | None) -> QuestionSet:
    row = await question_sets.get(session, set_id, tenant=tenant)
    if row is None:
        raise NotFound("unknown question set")
    return row


async def create(deps: Deps, tenant: str, body: dict[str, Any]) -> QuestionSetOut:
    draft = question_set_in(body)
    async with deps.sessionmaker.begin() as session:
        row = await question_sets.create(
            session, tenant=tenant, name=draft.name, context=draft.context, questions=draft.questions
        )
    return question_set_out(row, row)


async def edit(deps: Deps, tenant: str, set_id: uuid.UUID, body: dict[str, Any]) -> QuestionSetOut:
    """The next version of the set's family, made from `body`; the version named stays as it is. Only the
    newest version of a family that is not archived can be edited (409 otherwise, naming the newest)."""
    draft = question_set_in(body)
    async with deps.sessionmaker.begin() as session:
        base = await _found(session, set_id, tenant)
        if base.archived_at is not None:
            raise Conflict("this question set is archived; create a new one instead")
        row = await question_sets.add_version(
            session, base, name=draft.name, context=draft.context, questions=draft.questions
        )
        if row is None:
            newest = await question_sets.latest(session, base.family_id)
            raise Conflict(
                f"version {base.version} is not the newest: edit version {newest.version} ({newest.id})",
                details={"latest_id": str(newest.id), "latest_version": newest.version},
            )
    return question_set_out(row, row)


async def archive(deps: Deps, tenant: str, set_id: uuid.UUID) -> QuestionSetOut:
    """Archive the set's whole family: listed no more (unless asked), and refused to new jobs."""
    async with deps.sessionmaker.begin() as session:
        base = await _found(session, set_id, tenant)
        await question_sets.archive(session, base.family_id)
    async with deps.sessionmaker() as session:
        row = await _found(session, set_id, tenant)
        return question_set_out(row, await question_sets.latest(session, row.family_id))


async def get(deps: Deps, tenant: str | None, set_id: uuid.UUID) -> QuestionSetOut:
    async with deps.sessionmaker() as session:
        row = await _found(session, set_id, tenant)
        return question_set_out(row, await question_sets.latest(session, row.family_id))


async def versions(deps: Deps, tenant: str | None, set_id: uuid.UUID) -> QuestionSetVersions:
    async with deps.sessionmaker() as session:
        row = await _found(session, set_id, tenant)
        rows = await question_sets.versions(session, row.family_id)
    return QuestionSetVersions(family_id=str(row.family_id), items=[question_set_out(r, rows[-1]) for r in rows])


async def page(deps: Deps, tenant: str | None, query: QuestionSetListQuery) -> QuestionSetPage:
    before = None
    if query.cursor is not None:
        try:
            before = question_sets.decode_cursor(query.cursor)
        except (ValueError, UnicodeDecodeError):
            raise InvalidInput("cursor", "not a cursor returned by this API") from None
    async with deps.sessionmaker() as session:
        rows = await question_sets.newest_of_families(
            session, tenant=tenant, archived=query.archived, limit=query.limit + 1, before=before
        )
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    next_cursor = question_sets.encode_cursor(rows[-1]) if more else None
    return QuestionSetPage(items=[question_set_out(r, r) for r in rows], next_cursor=next_cursor)


# --- Answers across jobs ------------------------------------------------------------------------------------


def _question(row: QuestionSet, question_id: str) -> dict[str, Any]:
    for question in row.questions:
        if question["id"] == question_id:
            return dict(question)
    raise InvalidInput("question", f"version {row.version} of this question set has no question {question_id!r}")


def _filter(row: QuestionSet, question: dict[str, Any], query: AnswerFilterQuery, tenant: str | None
            ) -> decision_reads.QuestionFilter:  # fmt: skip
    since: datetime | None = datetime_param("since", query.since)
    until: datetime | None = datetime_param("until", query.until)
    return decision_reads.QuestionFilter(
        family_id=row.family_id, question_id=question["id"], primitive=question["type"],
        tenant=tenant if tenant is not None else query.tenant,
        metadata=json_object_param("metadata", query.metadata), since=since, until=until,
    )  # fmt: skip


def _distribution(question: dict[str, Any], found: dict[str, Any]) -> QuestionDistribution:
    kind = question["type"]
    out = QuestionDistribution(question_id=question["id"], type=kind, answers=found["answers"])
    if kind in ("noul", "score"):
        out.answered, out.mean, out.stddev = found["answered"], found["mean"], found["stddev"]
    if kind == "noul":
        out.histogram = [ShareBin(b["from"], b["to"], b["count"]) for b in found["histogram"]]
    elif kind == "score":
        described = list(question.get("criteria") or [])
        out.min, out.max, out.mean_confidence = found["min"], found["max"], found["mean_confidence"]
        out.levels = [
            LevelBin(b["level"], described[b["level"]] if b["level"] < len(described) else None, b["count"])
            for b in found["histogram"]
        ]
    elif kind == "choice":
        out.options = msgspec.convert(found["options"], list[OptionShare])
    else:
        out.with_spans, out.spans = found["with_spans"], found["spans"]
        out.total_span_ms, out.total_window_ms = found["total_span_ms"], found["total_window_ms"]
    return out


async def _one(session: AsyncSession, row: QuestionSet, question: dict[str, Any], query: AnswerFilterQuery,
               tenant: str | None) -> QuestionDistribution:  # fmt: skip
    criteria = question.get("criteria")
    found = await decision_reads.distribution(
        session, _filter(row, question, query, tenant),
        levels=len(criteria or []) if question["type"] == "score" else 0,
        options=list(criteria or {}) if question["type"] == "choice" else (),
    )  # fmt: skip
    return _distribution(question, found)


async def distributions(
    deps: Deps, tenant: str | None, set_id: uuid.UUID, query: AnswerFilterQuery
) -> SetDistributions:
    """Each question of the version (or the one asked for), its answers across the family's jobs."""
    async with deps.sessionmaker() as session:
        row = await _found(session, set_id, tenant)
        asked = [_question(row, query.question)] if query.question is not None else list(row.questions)
        found = [await _one(session, row, question, query, tenant) for question in asked]
    return SetDistributions(
        question_set_id=str(row.id), family_id=str(row.family_id), version=row.version, questions=found
    )


_BY = {"noul": "share", "score": "mean level", "span": "ms in spans"}


async def top(deps: Deps, tenant: str | None, set_id: uuid.UUID, query: TopQuery) -> TopRecordings:
    """The recordings that answer the question most strongly (or weakly), each by its strongest window."""
    if query.question is None:
        raise InvalidInput("question", "required: the question id to rank recordings by")
    async with deps.sessionmaker() as session:
        row = await _found(session, set_id, tenant)
        question = _question(row, query.question)
        option = None
        if question["type"] == "choice":
            options = list(question.get("criteria") or {})
            option = query.option if query.option is not None else options[0]
            if option not in options:
                raise InvalidInput("option", f"not an option of {question['id']!r}: {', '.join(options)}")
        items = await decision_reads.strongest(
            session, _filter(row, question, query, tenant), limit=query.limit, option=option,
            lowest=query.order == "weakest",
        )  # fmt: skip
    by = f"probability of {option}" if option is not None else _BY[question["type"]]
    return TopRecordings(
        question_id=question["id"], type=question["type"], by=by, order=query.order,
        items=msgspec.convert(items, list[StrongRecording]),
    )  # fmt: skip


# --- One job's answers --------------------------------------------------------------------------------------


def _answer(item: dict[str, Any]) -> AnswerOut:
    return AnswerOut(
        source_index=item["source_index"], source_url=item["source_url"], window_index=item["window_index"],
        window_start_ms=item["window_start_ms"], window_end_ms=item["window_end_ms"],
        question_id=item["question_id"], primitive=item["primitive"], share=item["share"], choice=item["choice"],
        confidence=item["confidence"], option_probabilities=item["option_probabilities"], score=item["score"],
        level_probabilities=item["level_probabilities"],
        spans=None if item["spans"] is None else msgspec.convert(item["spans"], list[Span]),
        run_id=None if item["run_id"] is None else str(item["run_id"]),
        question_set_id=str(item["question_set_id"]), created_at=item["created_at"].isoformat(), raw=item["raw"],
    )  # fmt: skip


async def job_answers(deps: Deps, job_id: uuid.UUID, query: JobAnswersQuery) -> AnswerPage:
    after = None
    if query.cursor is not None:
        try:
            after = decision_reads.decode_cursor(query.cursor)
        except ValueError:
            raise InvalidInput("cursor", "not a cursor returned by this API") from None
    async with deps.sessionmaker() as session:
        rows = await decision_reads.job_answers(
            session, job_id, limit=query.limit + 1, after=after, question_id=query.question,
            source_index=query.source,
        )  # fmt: skip
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    return AnswerPage(
        job_id=str(job_id), items=[_answer(r) for r in rows],
        next_cursor=decision_reads.encode_cursor(rows[-1]) if more else None,
    )  # fmt: skip


async def job_answers_csv(
    sessionmaker: async_sessionmaker[AsyncSession], job_id: uuid.UUID, *, statement_timeout_s: float | None = None
) -> AsyncIterator[bytes]:
    """Every answer of the job as CSV, in chunks of about 64 KiB as Postgres produces them."""
    chunks = copy_out_chunks(
        sessionmaker, lambda session: decision_reads.job_answers_csv(session, job_id),
        statement_timeout_s=statement_timeout_s,
    )  # fmt: skip
    async for chunk in chunks:
        yield chunk
