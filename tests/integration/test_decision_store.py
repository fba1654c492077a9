"""Audio Decisions answers in Postgres: each (job, source, window, question) is stored once however often and
however concurrently a window is stored again; a deleted job takes its answers along; and the analysts' reads
(distributions, strongest recordings, a job's pages and CSV) give the figures computed by hand from known rows."""

from __future__ import annotations

import asyncio
import csv
import io
import statistics
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.decisions.answers import window_rows
from app.hume.decisions_contract import Answer, Span, read_answer
from app.store import decision_reads, decision_windows, jobs, question_sets
from app.store.decision_reads import QuestionFilter
from app.store.decisions import COPY_FROM_ROWS, AnswerRow, store_answers
from app.store.tables import QuestionSet

Maker = async_sessionmaker[AsyncSession]
QUESTIONS: list[dict[str, Any]] = [
    {"id": "cancel", "type": "noul", "instructions": "Does the caller ask to cancel?", "criteria": None},
    {"id": "topic", "type": "choice", "instructions": "About?", "criteria": {"billing": "money", "tech": "it"}},
    {"id": "natural", "type": "score", "instructions": "How natural?", "criteria": ["no", "somewhat", "yes", "very"]},
    {"id": "ring", "type": "span", "instructions": "When does a phone ring?", "criteria": None},
]


async def new_job(sessionmaker: Maker, *, tenant: str = "default", metadata: dict[str, Any] | None = None,
                  created_at: datetime | None = None) -> uuid.UUID:  # fmt: skip
    async with sessionmaker.begin() as session:
        fields: dict[str, Any] = {"kind": "batch", "backend": "v1", "status": "completed", "tenant": tenant,
                                  "job_metadata": metadata or {}}  # fmt: skip
        if created_at is not None:
            fields["created_at"] = created_at
        return (await jobs.create(session, **fields)).id


async def new_set(sessionmaker: Maker, questions: list[dict[str, Any]] = QUESTIONS, tenant: str = "default"
                  ) -> QuestionSet:  # fmt: skip
    async with sessionmaker.begin() as session:
        return await question_sets.create(session, tenant=tenant, name="calls", context=None, questions=questions)


def row(job: uuid.UUID, qs: QuestionSet, question: str, *, source: int = 0, window: int = 0, tenant: str = "default",
        **typed: Any) -> AnswerRow:  # fmt: skip
    asked = next(q for q in qs.questions if q["id"] == question)
    primitive = asked["type"]
    named = ("option_probabilities", "level_probabilities", "spans")
    copies: dict[str, Any] = {}  # the typed copies window_rows makes: a choice's in the set's option order
    if primitive == "choice" and "option_probabilities" in typed:
        copies["probabilities"] = [typed["option_probabilities"].get(o) for o in asked["criteria"]]
    if "spans" in typed:
        ended = [s["end_ms"] - s["start_ms"] for s in typed["spans"] if s["end_ms"] is not None]
        copies.update(span_count=len(typed["spans"]), span_ms=sum(ended) if ended else None)
    json_fields: dict[str, Any] = {k: orjson.dumps(typed.pop(k)) for k in named if k in typed}
    return AnswerRow(
        job_id=job, source_index=source, source_url=f"https://media.example/{source}.wav", window_index=window,
        window_start_ms=window * 30_000, window_end_ms=(window + 1) * 30_000, question_id=question,
        primitive=primitive, raw=orjson.dumps({"typed": typed}), question_set_id=qs.id, family_id=qs.family_id,
        tenant=tenant, **typed, **json_fields, **copies,
    )  # fmt: skip


async def store(sessionmaker: Maker, rows: list[AnswerRow]) -> int:
    async with sessionmaker.begin() as session:
        return await store_answers(session, rows)


async def count(sessionmaker: Maker, job: uuid.UUID | None = None) -> int:
    async with sessionmaker() as session:
        where = "" if job is None else " WHERE job_id = :job"
        return int(
            (await session.execute(text(f"SELECT count(*) FROM decision_answer{where}"), {"job": job})).scalar_one()
        )


def many(job: uuid.UUID, qs: QuestionSet, recordings: int, *, share: float = 0.5) -> list[AnswerRow]:
    """One noul answer per recording: enough rows for the COPY path."""
    return [row(job, qs, "cancel", source=s, share=share) for s in range(recordings)]


async def test_a_window_stored_again_is_stored_once_and_keeps_its_first_answer(sessionmaker: Maker) -> None:
    """A retried window (same keys, maybe a different answer from Hume the second time) adds nothing."""
    job, qs = await new_job(sessionmaker), await new_set(sessionmaker)
    first = [row(job, qs, "cancel", share=0.25), row(job, qs, "natural", score=1.5)]
    assert await store(sessionmaker, first) == 2
    assert await store(sessionmaker, [row(job, qs, "cancel", share=0.75), row(job, qs, "natural", score=3.0)]) == 0
    assert await store(sessionmaker, [*first, row(job, qs, "cancel", window=1, share=0.5)]) == 1
    # A window's answers are stored together: a question Hume left out the first time stays out.
    assert await store(sessionmaker, [row(job, qs, "topic", choice="tech")]) == 0
    async with sessionmaker() as session:
        shares: dict[int, float] = dict((await session.execute(text(
            "SELECT window_index, share FROM decision_answer WHERE question_id = 'cancel'"))).all())  # fmt: skip
        registered = (await session.execute(text("SELECT job_id, question_set_id FROM decision_job"))).all()
        answered = await decision_windows.answered(session, job)
    assert shares == {0: 0.25, 1: 0.5}
    assert registered == [(job, qs.id)]
    assert answered == {0: {0, 1}}
    assert await count(sessionmaker, job) == 3


async def test_a_large_batch_meeting_stored_rows_stores_only_the_rest(sessionmaker: Maker) -> None:
    """The COPY path: a batch of which some rows were stored before (and one row twice) stores the others once."""
    job, qs = await new_job(sessionmaker), await new_set(sessionmaker)
    rows = many(job, qs, COPY_FROM_ROWS * 2)
    assert await store(sessionmaker, rows[:50]) == 50
    assert await store(sessionmaker, [*rows, rows[-1]]) == len(rows) - 50
    assert await store(sessionmaker, rows) == 0
    assert await count(sessionmaker, job) == len(rows)


@pytest.mark.parametrize("size", [3, COPY_FROM_ROWS + 10])
async def test_two_writers_racing_on_the_same_windows_store_them_once(sessionmaker: Maker, size: int) -> None:
    """The second writer waits on the first's uncommitted keys, then skips them: rows once, both commit."""
    job, qs = await new_job(sessionmaker), await new_set(sessionmaker)
    rows = many(job, qs, size)
    first_stored = asyncio.Event()
    release = asyncio.Event()

    async def first() -> int:
        async with sessionmaker.begin() as session:
            stored = await store_answers(session, rows)
            first_stored.set()
            await release.wait()
            return stored

    async def second() -> int:
        await first_stored.wait()
        async with sessionmaker.begin() as session:
            return await store_answers(session, rows)

    one = asyncio.create_task(first())
    two = asyncio.create_task(second())
    await first_stored.wait()
    await asyncio.sleep(0.3)  # the second writer is now waiting on the first's keys
    assert not two.done()
    release.set()
    assert sorted(await asyncio.gather(one, two)) == [0, size]
    assert await count(sessionmaker, job) == size


async def test_answers_of_an_unknown_job_are_refused(sessionmaker: Maker) -> None:
    """decision_job's foreign key checks the job once a batch, as a per-row key would."""
    qs = await new_set(sessionmaker)
    for rows in ([row(uuid.uuid4(), qs, "cancel", share=0.5)], many(uuid.uuid4(), qs, COPY_FROM_ROWS)):
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            await store(sessionmaker, rows)
    assert await count(sessionmaker) == 0


async def test_a_deleted_job_takes_its_answers_along(sessionmaker: Maker) -> None:
    qs = await new_set(sessionmaker)
    kept, deleted = await new_job(sessionmaker), await new_job(sessionmaker)
    await store(sessionmaker, [row(kept, qs, "cancel", share=0.1), row(deleted, qs, "cancel", share=0.2)])
    async with sessionmaker.begin() as session:
        await session.execute(text("DELETE FROM job WHERE id = :id"), {"id": deleted})
    assert (await count(sessionmaker, kept), await count(sessionmaker, deleted)) == (1, 0)


async def test_hume_answers_become_typed_rows_with_the_raw_answer_kept(sessionmaker: Maker) -> None:
    """window_rows: each question of the set Hume answered, typed by the set's primitive; Hume's raw answer as
    sent (a NUL, which Postgres cannot hold, replaced); a number past float4 kept only in the raw answer."""
    job, qs = await new_job(sessionmaker), await new_set(sessionmaker)
    answers = {
        "cancel": read_answer("noul", {"noul": 0.8, "note": "a\x00b"}),
        "topic": read_answer("choice", {"choice": "tech", "confidence": 0.6, "probabilities": {"billing": 0.3,
                                                                                               "tech": 0.7}}),
        "natural": Answer("score", score=1e39, probabilities={"0": 0.5, "1": 0.5}, raw={"score": 1e39}),
        "ring": Answer("span", spans=[Span(1200, 2500, 0.9), Span(4000, None, 0.6)], raw={"spans": []}),
        "unasked": read_answer("noul", {"noul": 1.0}),
    }  # fmt: skip
    rows = window_rows(
        answers, job_id=job, tenant="default", question_set=qs, source_index=2, source_url="u", window_index=1,
        window_start_ms=30_000, window_end_ms=60_000, run_id=str(uuid.uuid4()),
    )  # fmt: skip
    assert [r.question_id for r in rows] == ["cancel", "topic", "natural", "ring"]
    # The typed copies reads sum: a choice's probabilities in the set's option order, a span list's totals.
    assert (rows[1].probabilities, rows[3].span_count, rows[3].span_ms) == ([0.3, 0.7], 2, 1300)
    assert await store(sessionmaker, rows) == 4
    async with sessionmaker() as session:
        page = await decision_reads.job_answers(session, job, limit=10)
    by_id = {a["question_id"]: a for a in page}
    assert by_id["cancel"]["share"] == 0.8 and by_id["cancel"]["raw"] == {"noul": 0.8, "note": "a\ufffdb"}
    assert by_id["topic"]["option_probabilities"] == {"billing": 0.3, "tech": 0.7}
    assert (by_id["topic"]["choice"], by_id["topic"]["confidence"]) == ("tech", 0.6)
    assert by_id["natural"]["score"] is None and float(by_id["natural"]["raw"]["score"]) == 1e39
    assert by_id["natural"]["level_probabilities"] == {"0": 0.5, "1": 0.5}
    assert by_id["ring"]["spans"] == [{"start_ms": 1200, "end_ms": 2500, "probability": 0.9},
                                      {"start_ms": 4000, "end_ms": None, "probability": 0.6}]  # fmt: skip
    assert {(a["source_index"], a["window_index"], a["window_start_ms"]) for a in page} == {(2, 1, 30_000)}


async def distribution(sessionmaker: Maker, qs: QuestionSet, question: str, **kw: Any) -> dict[str, Any]:
    q = next(q for q in qs.questions if q["id"] == question)
    filters = {k: kw.pop(k) for k in ("tenant", "metadata", "since", "until") if k in kw}
    async with sessionmaker() as session:
        return await decision_reads.distribution(session, QuestionFilter(qs.family_id, question, q["type"], **filters),
                                                 **kw)  # fmt: skip


async def test_distributions_are_the_figures_of_the_stored_answers(sessionmaker: Maker) -> None:
    qs = await new_set(sessionmaker)
    a, b = await new_job(sessionmaker), await new_job(sessionmaker)
    shares = [0.05, 0.1, 0.19, 0.9, 1.0, None]
    scores = [0.2, 1.6, 2.5, 3.9]
    await store(sessionmaker, [
        *(row(a if i % 2 else b, qs, "cancel", source=i, share=s) for i, s in enumerate(shares)),
        *(row(a, qs, "natural", source=i, score=s, confidence=0.5 + i / 10) for i, s in enumerate(scores)),
        row(a, qs, "topic", source=0, choice="tech", confidence=0.8, option_probabilities={"billing": 0.2,
                                                                                           "tech": 0.8}),
        row(a, qs, "topic", source=1, choice="tech", confidence=0.6, option_probabilities={"billing": 0.4,
                                                                                           "tech": 0.6}),
        row(b, qs, "topic", source=0, choice="billing", confidence=0.9, option_probabilities={"billing": 0.9,
                                                                                              "tech": 0.1}),
        row(a, qs, "ring", source=0, spans=[{"start_ms": 0, "end_ms": 1500, "probability": 0.9},
                                            {"start_ms": 2000, "end_ms": 2500, "probability": 0.7}]),
        row(a, qs, "ring", source=1, spans=[]),
        row(b, qs, "ring", source=0, spans=[{"start_ms": 100, "end_ms": None, "probability": 0.8}]),
    ])  # fmt: skip

    noul = await distribution(sessionmaker, qs, "cancel")
    known = [s for s in shares if s is not None]
    assert (noul["answers"], noul["answered"]) == (6, 5)
    assert [b["count"] for b in noul["histogram"]] == [1, 2, 0, 0, 0, 0, 0, 0, 0, 2]  # 0.1 and 0.9 as written
    assert noul["mean"] == pytest.approx(statistics.mean(known), abs=1e-4)
    assert noul["stddev"] == pytest.approx(statistics.stdev(known), abs=1e-4)

    score = await distribution(sessionmaker, qs, "natural", levels=4)
    assert [b["count"] for b in score["histogram"]] == [1, 0, 1, 2]  # 0.2 -> 0, 1.6 -> 2, 2.5 and 3.9 -> 3
    assert (score["mean"], score["min"], score["max"]) == (pytest.approx(2.05, abs=1e-4), 0.2, 3.9)
    assert score["stddev"] == pytest.approx(statistics.stdev(scores), abs=1e-4)
    assert score["mean_confidence"] == pytest.approx(0.65, abs=1e-4)

    for options in (["billing", "tech"], []):
        choice = await distribution(sessionmaker, qs, "topic", options=options)
        by_option = {o["option"]: o for o in choice["options"]}
        assert choice["answers"] == 3
        assert (by_option["tech"]["wins"], by_option["billing"]["wins"]) == (2, 1)
        assert by_option["tech"]["mean_confidence"] == pytest.approx(0.7, abs=1e-4)
        assert by_option["tech"]["mean_probability"] == pytest.approx(0.5, abs=1e-4)
        assert by_option["billing"]["mean_probability"] == pytest.approx(0.5, abs=1e-4)

    span = await distribution(sessionmaker, qs, "ring")
    assert span == {"answers": 3, "with_spans": 2, "spans": 3, "total_span_ms": 2000, "total_window_ms": 90_000}


async def test_questions_match_by_id_across_versions_and_filters_apply_to_jobs(sessionmaker: Maker) -> None:
    """Versions of a family share a question's answers by id, unless its primitive changed; tenant, job
    metadata and job creation time select the jobs counted."""
    v1 = await new_set(sessionmaker)
    async with sessionmaker.begin() as session:
        changed = [{**QUESTIONS[0]}, {"id": "topic", "type": "noul", "instructions": "Billing?", "criteria": None}]
        v2 = await question_sets.add_version(session, v1, name="calls", context=None, questions=changed)
    assert v2 is not None and v2.family_id == v1.family_id
    old = datetime.now(UTC) - timedelta(days=30)
    acme = await new_job(sessionmaker, metadata={"customer": "acme", "team": "x"}, created_at=old)
    other = await new_job(sessionmaker, metadata={"customer": "other"})
    await store(sessionmaker, [row(acme, v1, "cancel", share=0.1), row(acme, v1, "topic", choice="tech")])
    await store(sessionmaker, [row(other, v2, "cancel", share=0.9), row(other, v2, "topic", share=0.3)])
    assert (await distribution(sessionmaker, v2, "cancel"))["answered"] == 2
    assert (await distribution(sessionmaker, v2, "topic"))["answered"] == 1  # noul answers only
    assert (await distribution(sessionmaker, v1, "topic"))["answers"] == 1  # choice answers only
    assert (await distribution(sessionmaker, v1, "cancel", metadata={"customer": "acme"}))["mean"] == 0.1
    assert (await distribution(sessionmaker, v1, "cancel", since=old + timedelta(days=1)))["mean"] == 0.9
    assert (await distribution(sessionmaker, v1, "cancel", until=old + timedelta(days=1)))["mean"] == 0.1
    assert (await distribution(sessionmaker, v1, "cancel", tenant="someone-else"))["answers"] == 0


async def test_a_choice_reads_each_versions_options_by_name(sessionmaker: Maker) -> None:
    """A version that reorders and adds options: each answer's probabilities are read in its own version's
    order, so an option's mean is over every answer that gave it."""
    v1 = await new_set(sessionmaker)
    async with sessionmaker.begin() as session:
        reordered = [{**QUESTIONS[1], "criteria": {"other": "?", "tech": "it", "billing": "money"}}]
        v2 = await question_sets.add_version(session, v1, name="calls", context=None, questions=reordered)
    assert v2 is not None
    job_1, job_2 = await new_job(sessionmaker), await new_job(sessionmaker)
    first = {"billing": 0.2, "tech": 0.8}
    second = {"other": 0.1, "tech": 0.3, "billing": 0.6}
    await store(sessionmaker, [row(job_1, v1, "topic", choice="tech", option_probabilities=first)])
    await store(sessionmaker, [row(job_2, v2, "topic", choice="billing", option_probabilities=second)])
    choice = await distribution(sessionmaker, v2, "topic", options=["other", "tech", "billing"])
    assert [(o["option"], o["wins"], o["mean_probability"]) for o in choice["options"]] == [
        ("other", 0, 0.1), ("tech", 1, pytest.approx(0.55)), ("billing", 1, pytest.approx(0.4))]  # fmt: skip


async def test_the_strongest_recordings_each_by_their_strongest_window(sessionmaker: Maker) -> None:
    qs = await new_set(sessionmaker)
    a, b = await new_job(sessionmaker, metadata={"n": 1}), await new_job(sessionmaker)
    await store(sessionmaker, [
        row(a, qs, "cancel", source=0, window=0, share=0.2), row(a, qs, "cancel", source=0, window=1, share=0.9),
        row(a, qs, "cancel", source=1, share=0.5), row(b, qs, "cancel", source=0, share=0.7),
        row(b, qs, "cancel", source=1, share=None),
        row(a, qs, "topic", source=0, choice="tech", option_probabilities={"billing": 0.1, "tech": 0.9}),
        row(b, qs, "topic", source=0, choice="billing", option_probabilities={"billing": 0.6, "tech": 0.4}),
    ])  # fmt: skip
    f = QuestionFilter(qs.family_id, "cancel", "noul")
    async with sessionmaker() as session:
        strongest = await decision_reads.strongest(session, f, limit=2)
        weakest = await decision_reads.strongest(session, f, limit=10, lowest=True)
        billing = await decision_reads.strongest(session, QuestionFilter(qs.family_id, "topic", "choice"), limit=5,
                                                 option="billing")  # fmt: skip
    assert [(r["job_id"], r["source_index"], r["window_index"], r["strength"]) for r in strongest] == [
        (str(a), 0, 1, 0.9), (str(b), 0, 0, 0.7)]  # fmt: skip
    assert strongest[0]["job_metadata"] == {"n": 1}
    assert [(r["job_id"], r["source_index"], r["window_index"]) for r in weakest] == [
        (str(a), 0, 0), (str(a), 1, 0), (str(b), 0, 0)]  # fmt: skip
    assert [(r["job_id"], r["strength"]) for r in billing] == [(str(b), 0.6), (str(a), 0.1)]


async def test_a_jobs_answers_page_by_cursor_and_as_csv(sessionmaker: Maker) -> None:
    qs = await new_set(sessionmaker, [*QUESTIONS, {"id": "=cmd", "type": "noul", "instructions": "x",
                                                  "criteria": None}])  # fmt: skip
    job = await new_job(sessionmaker)
    rows = [row(job, qs, q, source=s, window=w, share=0.5) for q in ("cancel", "=cmd") for s in (1, 0)
            for w in (1, 0)]  # fmt: skip
    rows.append(row(job, qs, "topic", choice='b,"c"', option_probabilities={'b,"c"': 1.0}))
    await store(sessionmaker, rows)
    seen: list[tuple[str, int, int]] = []
    after = None
    async with sessionmaker() as session:
        while True:
            page = await decision_reads.job_answers(session, job, limit=3, after=after)
            seen += [(a["question_id"], a["source_index"], a["window_index"]) for a in page]
            if len(page) < 3:
                break
            after = decision_reads.decode_cursor(decision_reads.encode_cursor(page[-1]))
        only = await decision_reads.job_answers(session, job, limit=10, question_id="cancel", source_index=1)
        blocks = [b async for b in decision_reads.job_answers_csv(session, job)]
    assert seen == sorted(seen) and len(seen) == 9 and len(set(seen)) == 9
    assert [(a["source_index"], a["window_index"]) for a in only] == [(1, 0), (1, 1)]
    table = list(csv.DictReader(io.StringIO(b"".join(blocks).decode())))
    assert list(table[0]) == list(decision_reads.CSV_COLUMNS)
    assert [(r["source_index"], r["window_index"], r["question_id"]) for r in table][:3] == [
        ("0", "0", "'=cmd"), ("0", "0", "cancel"), ("0", "0", "topic")]  # fmt: skip
    topic = next(r for r in table if r["question_id"] == "topic")
    assert topic["choice"] == 'b,"c"' and orjson.loads(topic["option_probabilities"]) == {'b,"c"': 1.0}
    assert orjson.loads(topic["raw"]) == {"typed": {"choice": 'b,"c"'}}
    assert {r["share"] for r in table if r["question_id"] == "cancel"} == {"0.5000"}
