"""COPY ingest against real Postgres: what is stored equals what Hume said, once."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections import defaultdict
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.batch import prediction_import as importer
from app.batch.hume_documents import source_records
from app.core.prediction_rows import PredictionFormatError
from app.emulator.testing import EmulatorServer
from app.hume import callbacks, predictions
from app.hume.emotions import EXPRESSIONS_48
from app.store import analytics, ingest, jobs
from app.store.db import driver_connection
from app.store.webhook_intake import store_event
from app.wiring import build_deps
from app.worker.event_runner import run_event
from bench import payloads
from tests.conftest import service_settings
from tests.fixtures import REAL_PREDICTIONS

Sessionmaker = async_sessionmaker[AsyncSession]


def independent_summary(document: bytes) -> dict[str, dict[str, Any]]:
    """Per model: prediction count and each emotion's mean and max, straight from the JSON."""
    scores: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    counts: dict[str, int] = defaultdict(int)
    for source in json.loads(document):
        for fp in (source.get("results") or {}).get("predictions", []):
            for model, result in fp["models"].items():
                for group in result["grouped_predictions"]:
                    for p in group["predictions"]:
                        counts[model] += 1
                        for e in p["emotions"]:
                            scores[model][e["name"]].append(e["score"])
    return {
        model: {
            "predictions": counts[model],
            "emotions": {name: (sum(v) / len(v), max(v)) for name, v in scores[model].items()},
        }
        for model in counts
    }


def assert_summary_matches(stored: dict[str, Any], expected: dict[str, dict[str, Any]]) -> None:
    assert set(stored) == set(expected)
    for model, want in expected.items():
        got = stored[model]
        assert got["predictions"] == want["predictions"], model
        assert {e["name"] for e in got["emotions"]} == set(want["emotions"]), model
        for e in got["emotions"]:
            mean, peak = want["emotions"][e["name"]]
            # Scores are stored as real (float4): agreement to float4 precision.
            assert e["mean"] == pytest.approx(mean, abs=5.1e-5), (model, e["name"])  # the API rounds to 4 decimals
            assert e["max"] == pytest.approx(peak, abs=5.1e-5), (model, e["name"])
        means = [e["mean"] for e in got["emotions"]]
        assert means == sorted(means, reverse=True)


async def _import(sessionmaker: Sessionmaker, document: bytes) -> uuid.UUID:
    job_id, _ = await importer.import_document(sessionmaker, document, url=None, name="test.json")
    return job_id


async def _scalar(sessionmaker: Sessionmaker, sql: str, **params: Any) -> Any:
    async with sessionmaker() as session:
        return (await session.execute(text(sql), params)).scalar_one()


async def test_real_fixture_summary_equals_independent_means(sessionmaker: Sessionmaker) -> None:
    """The real Hume payload imports; its summary's counts, means and maxima equal those computed from the
    JSON in plain Python, and the long-form view has one row per prediction and emotion."""
    document = REAL_PREDICTIONS.read_bytes()
    job_id = await _import(sessionmaker, document)
    async with sessionmaker() as session:
        stored = await analytics.summary(session, job_id)
    assert_summary_matches(stored, independent_summary(document))
    assert stored["face"]["predictions"] == 1075
    view_rows = await _scalar(sessionmaker, "SELECT count(*) FROM prediction_score WHERE job_id = :j", j=job_id)
    assert view_rows == 1075 * 48
    groups = await _scalar(
        sessionmaker,
        "SELECT array_agg(DISTINCT group_id ORDER BY group_id) FROM prediction WHERE job_id = :j",
        j=job_id,
    )
    assert groups == ["face_0", "face_1", "face_2", "face_3"]


async def test_every_model_imports_and_matches_independent_means(sessionmaker: Sessionmaker) -> None:
    """A generated job with every model, an archive, a failed file, a failed source and raw text imports;
    summaries match the JSON; the view has count x emotions rows per model; sources keep what failed."""
    document = payloads.every_model()
    job_id = await _import(sessionmaker, document)
    expected = independent_summary(document)
    async with sessionmaker() as session:
        stored = await analytics.summary(session, job_id)
        assert_summary_matches(stored, expected)
        view: dict[str, int] = dict(
            (
                await session.execute(
                    text("SELECT model, count(*) FROM prediction_score WHERE job_id = :j GROUP BY model"), {"j": job_id}
                )
            ).all()
        )
        sources = (
            await session.execute(
                text("SELECT kind, url, error, files, file_errors FROM source WHERE job_id = :j ORDER BY position"),
                {"j": job_id},
            )
        ).all()
        job = await jobs.get(session, job_id)
    for model, want in expected.items():
        assert view[model] == want["predictions"] * len(want["emotions"]), model
    assert [s.kind for s in sources] == ["url", "url", "url", "text"]
    assert len(sources[1].files) >= 2 and sources[1].file_errors
    assert "404" in sources[2].error
    assert len(sources[3].files) == 2
    assert job is not None and job.status == "completed"
    assert job.num_predictions == sum(m["predictions"] for m in expected.values())
    assert job.num_errors == 2


async def test_stats_written_during_the_pass_equal_sql_over_the_stored_rows(sessionmaker: Sessionmaker) -> None:
    """The aggregates computed in Python while streaming equal count/avg/max recomputed by SQL from the
    stored score arrays, for every source, model and position."""
    job_id = await _import(sessionmaker, payloads.every_model())
    async with sessionmaker() as session:
        recomputed = {
            (r.source_id, r.model, r.pos): (r.n, r.mean, r.max)
            for r in await session.execute(
                text(
                    """
                    SELECT p.source_id, p.model, (u.ord - 1) AS pos, count(u.score) AS n, avg(u.score) AS mean,
                           max(u.score) AS max
                    FROM prediction p CROSS JOIN LATERAL unnest(p.scores) WITH ORDINALITY AS u(score, ord)
                    WHERE p.job_id = :j AND u.score IS NOT NULL GROUP BY 1, 2, 3
                    """
                ),
                {"j": job_id},
            )
        }
        stored = {
            (r.source_id, r.model, r.position): (r.count, r.mean, r.max)
            for r in await session.execute(
                text("SELECT source_id, model, position, count, mean, max FROM emotion_stat WHERE job_id = :j"),
                {"j": job_id},
            )
        }
    assert stored.keys() == recomputed.keys()
    for key, (n, mean, peak) in recomputed.items():
        assert stored[key][0] == n
        assert stored[key][1] == pytest.approx(mean, rel=1e-9)
        assert stored[key][2] == pytest.approx(peak, rel=1e-7)


def _face_doc(names: list[str], rng: random.Random, url: str) -> tuple[bytes, list[dict[str, float]]]:
    preds: list[dict[str, Any]] = []
    for frame in range(5):
        emotions = [{"name": n, "score": rng.random()} for n in rng.sample(names, len(names))]
        preds.append({"frame": frame, "time": frame / 3, "prob": 0.99, "box": None, "emotions": emotions})
    doc = [
        {
            "source": {"type": "url", "url": url},
            "results": {
                "predictions": [
                    {
                        "file": "a.mp4",
                        "models": {
                            "face": {"metadata": None, "grouped_predictions": [{"id": "x", "predictions": preds}]}
                        },
                    }
                ],
                "errors": [],
            },
        }
    ]
    return json.dumps(doc).encode(), [{e["name"]: e["score"] for e in p["emotions"]} for p in preds]


async def test_shuffled_lists_and_unknown_names_are_stored_by_name(sessionmaker: Sessionmaker) -> None:
    """Emotion lists in random order, with a name we never saw, land by name: the view gives every score
    under its own name, the new name extends the face order once, and a later job reuses its position."""
    rng = random.Random(3)
    names = [*EXPRESSIONS_48, "Wistfulness"]
    document, expected = _face_doc(names, rng, "https://example.com/a.mp4")
    job_id = await _import(sessionmaker, document)
    again, _ = _face_doc(names[1:], rng, "https://example.com/b.mp4")  # a later job, one name fewer
    second = await _import(sessionmaker, again)
    async with sessionmaker() as session:
        rows = (
            await session.execute(
                text("SELECT frame, emotion, score FROM prediction_score WHERE job_id = :j"), {"j": job_id}
            )
        ).all()
        positions = (
            (await session.execute(text("SELECT position FROM emotion WHERE model = 'face' AND name = 'Wistfulness'")))
            .scalars()
            .all()
        )
        summary = await analytics.summary(session, second)
    assert positions == [48]
    assert len(rows) == 5 * 49
    for frame, emotion, score in rows:
        assert score == pytest.approx(expected[frame][emotion], rel=1e-6)
    assert len(summary["face"]["emotions"]) == 48
    assert "Wistfulness" in {e["name"] for e in summary["face"]["emotions"]}


async def test_ingesting_the_same_job_twice_fails_instead_of_duplicating(sessionmaker: Sessionmaker) -> None:
    """The store itself refuses a second load of one job (unique source positions): nothing doubles."""
    document = REAL_PREDICTIONS.read_bytes()
    job_id = await _import(sessionmaker, document)
    sources = predictions.decode(document)
    with pytest.raises(IntegrityError):
        async with sessionmaker.begin() as session:
            await ingest.ingest(session, job_id, source_records(sources), predictions.rows(sources))
    assert await _scalar(sessionmaker, "SELECT count(*) FROM prediction WHERE job_id = :j", j=job_id) == 1075


async def test_two_deliveries_through_the_job_service_store_once(
    sessionmaker: Sessionmaker, database_url: str, emulator: EmulatorServer
) -> None:
    """A callback and a poll for the same finished Hume job, processed at the same time by
    the inbox's event runner, store each prediction, source and stat once."""
    settings = service_settings(database_url, emulator)
    async with build_deps(settings, pool_size=2) as deps:
        gateway = deps.gateway
        hume_id = await gateway.start_job(
            urls=["https://example.com/talk.mp4#duration=20"], text=[], models={"face": {}, "prosody": {}},
            callback_url=None,
        )  # fmt: skip
        for _ in range(200):
            if (await gateway.job_state(hume_id)).status == "COMPLETED":
                break
            await asyncio.sleep(0.05)
        expected = independent_summary(await gateway.predictions(hume_id))
        async with sessionmaker.begin() as session:
            job = await jobs.create(session, kind="batch", status="queued", hume_job_id=hume_id)
            events = [
                await store_event(
                    await driver_connection(session),
                    task=None,
                    provider=provider,
                    dedup_key=f"{provider}:{hume_id}",
                    event_type="COMPLETED",
                    job_id=job.id,
                    headers={},
                    body=callbacks.encode_poll(hume_id, "COMPLETED"),
                )
                for provider in ("hume_batch", "poll")
            ]
        outcomes = await asyncio.gather(*(run_event(deps, e) for e in events if e is not None))
    assert sorted(outcomes) == ["completed", "duplicate"]
    total = sum(m["predictions"] for m in expected.values())
    assert await _scalar(sessionmaker, "SELECT count(*) FROM prediction WHERE job_id = :j", j=job.id) == total
    assert await _scalar(sessionmaker, "SELECT count(*) FROM source WHERE job_id = :j", j=job.id) == 1
    stats = await _scalar(sessionmaker, "SELECT count(*) FROM emotion_stat WHERE job_id = :j", j=job.id)
    assert stats == sum(len(m["emotions"]) for m in expected.values())
    async with sessionmaker() as session:
        assert_summary_matches(await analytics.summary(session, job.id), expected)


async def test_nul_text_is_stored_and_out_of_range_values_refuse_the_job(sessionmaker: Sessionmaker) -> None:
    """A transcript and a sentiment label holding NUL (Postgres cannot store it) import with U+FFFD in its
    place; a frame past int4 or a score past float4 is a PredictionFormatError and leaves no job behind."""

    def one_prediction(pred: dict[str, Any], model: str = "language") -> bytes:
        models = {model: {"grouped_predictions": [{"id": "spk_0", "predictions": [pred]}]}}
        doc = [{"source": {"type": "text"}, "results": {"predictions": [{"file": "t.txt", "models": models}]}}]
        return json.dumps(doc).encode()

    nul = {"text": "a\x00b", "position": {"begin": 0, "end": 3}, "emotions": [{"name": "Joy", "score": 0.5}],
           "sentiment": [{"name": "5\x00", "score": 0.9}]}  # fmt: skip
    job_id = await _import(sessionmaker, one_prediction(nul))
    async with sessionmaker() as session:
        stored = (
            await session.execute(text("SELECT text, extras FROM prediction WHERE job_id = :j"), {"j": job_id})
        ).one()
    assert stored.text == "a\ufffdb" and stored.extras["sentiment"] == [{"name": "5\ufffd", "score": 0.9}]
    jobs_before = await _scalar(sessionmaker, "SELECT count(*) FROM job")
    frame = {"frame": 2**31, "time": 0.0, "emotions": [{"name": "Joy", "score": 0.5}]}
    score = {"text": "x", "emotions": [{"name": "Joy", "score": 1e39}]}
    for document in (one_prediction(frame, "face"), one_prediction(score)):
        with pytest.raises(PredictionFormatError, match="out of range"):
            await _import(sessionmaker, document)
    assert await _scalar(sessionmaker, "SELECT count(*) FROM job") == jobs_before


async def test_a_model_we_do_not_know_is_stored_not_dropped(sessionmaker: Sessionmaker) -> None:
    """Predictions of a model outside our list (a newer Hume model, say) are stored like any other: its
    emotion names start the model's own order, and the summary and long-form view include it."""
    preds = [
        {"time": {"begin": i, "end": i + 1}, "emotions": [{"name": "Poise", "score": s}, {"name": "Joy", "score": 0.5}]}
        for i, s in enumerate((0.2, 0.4))
    ]
    models = {
        "gesture": {"grouped_predictions": [{"id": "hands", "predictions": preds}]},
        "face": {"grouped_predictions": [{"id": "face_0", "predictions": preds[:1]}]},
    }
    results = {"predictions": [{"file": "g.mp4", "models": models}]}
    doc = [{"source": {"type": "url", "url": "https://e.com/g.mp4"}, "results": results}]
    document = json.dumps(doc).encode()
    job_id = await _import(sessionmaker, document)
    async with sessionmaker() as session:
        summary = await analytics.summary(session, job_id)
        order = (
            (await session.execute(text("SELECT name FROM emotion WHERE model = 'gesture' ORDER BY position")))
            .scalars()
            .all()
        )
        view = await session.execute(
            text("SELECT count(*) FROM prediction_score WHERE job_id = :j AND model = 'gesture'"), {"j": job_id}
        )
    assert_summary_matches(summary, independent_summary(document))
    assert order == ["Poise", "Joy"] and view.scalar_one() == 4
