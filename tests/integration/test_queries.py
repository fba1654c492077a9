"""Analyst queries at the store layer against real Postgres: what they answer equals what Hume's JSON says."""

from __future__ import annotations

import csv
import json
import math
import tracemalloc
import uuid
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.analytics import csv_export as exports
from app.batch import prediction_import as importer
from app.hume.emotions import EXPRESSIONS_48, EXPRESSIONS_53
from app.store import analytics
from bench import payloads

Sessionmaker = async_sessionmaker[AsyncSession]


async def _import(sessionmaker: Sessionmaker, document: bytes) -> uuid.UUID:
    job_id, _ = await importer.import_document(sessionmaker, document, url=None, name="test.json")
    return job_id


# Scores are answered with 4 decimals (float4 in Postgres): half a unit of the last one, plus float4's own error.
ROUNDED = 0.5e-4 + 1e-6


def _hume_rows(document: bytes) -> Iterator[tuple[str | None, str, str, str | None, dict[str, Any]]]:
    """(source url, file, model, group, prediction) in document order, straight from the JSON."""
    for source in json.loads(document):
        for fp in (source.get("results") or {}).get("predictions", []):
            for model, result in fp["models"].items():
                for group in result["grouped_predictions"]:
                    for p in group["predictions"]:
                        yield source["source"].get("url"), fp["file"], model, group["id"], p


def _begin_end(p: dict[str, Any]) -> tuple[float | None, float | None]:
    t = p.get("time")
    return (t["begin"], t["end"]) if isinstance(t, dict) else (t, t)


def _face_doc(url: str, frames: list[dict[str, float]], extra_names: tuple[str, ...] = ()) -> bytes:
    """A one-source face job; each frame gives some emotions' scores (the rest 0.01)."""
    preds = [
        {
            "frame": i,
            "time": i / 3,
            "prob": 0.99,
            "box": {"x": 1, "y": 2, "w": 30, "h": 40},
            "emotions": [{"name": n, "score": scores.get(n, 0.01)} for n in (*EXPRESSIONS_48, *extra_names)],
        }
        for i, scores in enumerate(frames)
    ]
    models = {"face": {"metadata": None, "grouped_predictions": [{"id": "face_0", "predictions": preds}]}}
    doc = [{"source": {"type": "url", "url": url}, "results": {"predictions": [{"file": "v.mp4", "models": models}]}}]
    return json.dumps(doc).encode()


async def test_prediction_pages_round_trip_every_field_of_every_model(sessionmaker: Sessionmaker) -> None:
    """Paging through a job with every model (37 rows a page) gives back each prediction once, in Hume's
    order, with its source, file, group, frame, time range, prob, box, text, position, confidences, every
    score under its name, and the model-specific fields (facs, descriptions, sentiment, toxicity, ner)."""
    document = payloads.every_model()
    job_id = await _import(sessionmaker, document)
    items: list[dict[str, Any]] = []
    async with sessionmaker() as session:
        after = None
        while True:
            page = await analytics.predictions_page(
                session, analytics.PredictionFilter(job_id=job_id), after_id=after, limit=37
            )
            if not page:
                break
            items += page
            after = page[-1]["id"]
    expected = list(_hume_rows(document))
    assert len(items) == len(expected)
    for item, (url, file, model, group, p) in zip(items, expected, strict=True):
        assert (item["source_url"], item["file"], item["model"], item["group"]) == (url, file, model, group)
        begin, end = _begin_end(p)
        assert (item["time_begin"], item["time_end"]) == (begin, end)
        for key in ("frame", "prob", "text", "confidence", "speaker_confidence"):
            assert item[key] == p.get(key), key
        if p.get("box") is not None:
            assert item["box"] == pytest.approx(p["box"])
        else:
            assert item["box"] is None
        position = p.get("position") or {}
        assert (item["position_begin"], item["position_end"]) == (position.get("begin"), position.get("end"))
        assert item["scores"].keys() == {e["name"] for e in p["emotions"]}
        for e in p["emotions"]:
            assert item["scores"][e["name"]] == pytest.approx(e["score"], abs=ROUNDED)
        for key in ("facs", "descriptions", "sentiment", "toxicity", "entity", "entity_confidence", "support",
                    "uri", "link_word"):  # fmt: skip
            assert item.get(key) == p.get(key), (model, key)
    assert {i["model"] for i in items} == {"face", "prosody", "burst", "language", "ner", "facemesh"}


async def test_time_window_selects_the_predictions_that_overlap_it(sessionmaker: Sessionmaker) -> None:
    """A from/to window on prosody keeps exactly the utterances whose time range overlaps [from, to),
    and a group filter narrows them to one speaker."""
    document = payloads.every_model()
    job_id = await _import(sessionmaker, document)
    utterances = [(g, p["time"]["begin"], p["time"]["end"]) for _, _, m, g, p in _hume_rows(document) if m == "prosody"]
    lo, hi = 10.0, 20.0
    want = sorted((b, e) for _, b, e in utterances if e >= lo and b < hi)
    speaker = utterances[0][0]
    async with sessionmaker() as session:
        window = analytics.PredictionFilter(job_id=job_id, model="prosody", time_from=lo, time_to=hi)
        got = await analytics.predictions_page(session, window, after_id=None, limit=1000)
        one = analytics.PredictionFilter(job_id=job_id, model="prosody", group=speaker, time_from=lo, time_to=hi)
        only_speaker = await analytics.predictions_page(session, one, after_id=None, limit=1000)
    assert want and sorted((i["time_begin"], i["time_end"]) for i in got) == want
    assert len(want) < len(utterances)
    assert only_speaker and all(i["group"] == speaker for i in only_speaker)
    assert len(only_speaker) == sum(1 for g, b, e in utterances if g == speaker and e >= lo and b < hi)


async def test_prosody_timeline_per_speaker_equals_means_from_the_json(sessionmaker: Sessionmaker) -> None:
    """Timeline buckets by an utterance's start; per speaker, each bucket's mean and max of each emotion asked
    together (Sadness, Joy) equal those computed from the JSON. Language rows without a time (raw text) are
    left out, not bucketed at 0."""
    document = payloads.every_model()
    job_id = await _import(sessionmaker, document)
    bucket = 5.0
    names = ("Sadness", "Joy")
    expected: dict[str, dict[tuple[str | None, float], list[float]]] = {n: defaultdict(list) for n in names}
    timed_language = 0
    for _, _, model, group, p in _hume_rows(document):
        begin, _ = _begin_end(p)
        if model == "prosody":
            assert begin is not None
            for name in names:
                score = next(e["score"] for e in p["emotions"] if e["name"] == name)
                expected[name][(group, math.floor(begin / bucket) * bucket)].append(score)
        elif model == "language" and begin is not None:
            timed_language += 1
    async with sessionmaker() as session:
        positions = await analytics.emotion_positions(session, "prosody", names)
        assert positions == {n: EXPRESSIONS_48.index(n) for n in names}
        lines = await analytics.timelines(
            session, job_id, model="prosody", positions=[positions[n] for n in names], bucket_s=bucket, by_group=True
        )
        [language] = await analytics.timelines(
            session, job_id, model="language", positions=[EXPRESSIONS_53.index("Joy")], bucket_s=bucket,
            by_group=False,
        )  # fmt: skip
        assert (
            await analytics.timelines(session, job_id, model="prosody", positions=[], bucket_s=1, by_group=True) == []
        )
    assert expected["Sadness"] != expected["Joy"]
    for name, points in zip(names, lines, strict=True):
        got = {(p["group"], p["time_begin"]): p for p in points}
        assert got.keys() == expected[name].keys()
        for key, values in expected[name].items():
            assert got[key]["count"] == len(values)
            assert got[key]["mean"] == pytest.approx(sum(values) / len(values), abs=ROUNDED)
            assert got[key]["max"] == pytest.approx(max(values), abs=ROUNDED)
    assert timed_language and sum(p["count"] for p in language) == timed_language


async def test_csv_export_has_a_column_per_emotion_of_every_model(sessionmaker: Sessionmaker) -> None:
    """The CSV of a job with face and language rows has every emotion of both models as a column; each
    row fills the columns its prediction scored and leaves the others empty."""
    document = payloads.every_model()
    job_id = await _import(sessionmaker, document)
    chunks = [c async for c in exports.csv_chunks(sessionmaker, analytics.PredictionFilter(job_id=job_id))]
    lines = b"".join(chunks).decode().splitlines()
    header, *rows = list(csv.reader(lines))
    assert set(EXPRESSIONS_53) <= set(header)
    expected = list(_hume_rows(document))
    assert len(rows) == len(expected)
    for row, (_, _, model, _, p) in zip(rows, expected, strict=True):
        cells = dict(zip(header, row, strict=True))
        assert cells["model"] == model
        scored = {e["name"]: e["score"] for e in p["emotions"]}
        for name in EXPRESSIONS_53:
            if name in scored:
                assert float(cells[name]) == pytest.approx(scored[name], abs=ROUNDED)
            else:
                assert cells[name] == "", (model, name)


async def test_csv_export_of_a_one_hour_job_streams_in_flat_memory(sessionmaker: Sessionmaker) -> None:
    """Exporting a one-hour job (about 11k predictions) allocates a fraction of what holding its rows at
    once takes: rows come from a server-side cursor and leave in chunks."""
    job_id = await _import(sessionmaker, payloads.one_hour())
    filt = analytics.PredictionFilter(job_id=job_id)
    tracemalloc.start()
    try:
        total = chunks = 0
        async for chunk in exports.csv_chunks(sessionmaker, filt):
            total += len(chunk)
            chunks += 1
        _, streamed_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        async with sessionmaker() as session:
            whole = (
                await session.execute(
                    text("SELECT p.scores, p.text, p.model FROM prediction p WHERE p.job_id = :j"), {"j": job_id}
                )
            ).all()
        _, whole_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(whole) > 10_000 and chunks > 10
    assert streamed_peak < whole_peak / 3, (streamed_peak, whole_peak, total)


async def test_top_emotion_ranks_by_mean_or_max_with_job_filters(sessionmaker: Sessionmaker) -> None:
    """Across jobs, sources rank by an emotion's mean by default and by its peak on request; the job
    creation window and metadata containment filter them; the limit caps the list."""
    steady = await _import(sessionmaker, _face_doc("https://e.com/steady.mp4", [{"Anger": 0.6}] * 4))
    spike = await _import(sessionmaker, _face_doc("https://e.com/spike.mp4", [{"Anger": 0.95}, *[{"Anger": 0.1}] * 3]))
    calm = await _import(sessionmaker, _face_doc("https://e.com/calm.mp4", [{"Anger": 0.05}] * 4))
    async with sessionmaker.begin() as session:
        await session.execute(
            text("UPDATE job SET metadata = CAST(:m AS jsonb), created_at = now() - interval '2 days' WHERE id = :j"),
            {"j": calm, "m": json.dumps({"team": "ops"})},
        )
    async with sessionmaker() as session:
        by_mean = await analytics.top_emotion(session, model="face", emotion="Anger", limit=10)
        by_max = await analytics.top_emotion(session, model="face", emotion="Anger", limit=10, by="max")
        first = await analytics.top_emotion(session, model="face", emotion="Anger", limit=1)
        ops = await analytics.top_emotion(session, model="face", emotion="Anger", limit=10, metadata={"team": "ops"})
        created = (await session.execute(text("SELECT created_at FROM job WHERE id = :j"), {"j": steady})).scalar_one()
        recent = await analytics.top_emotion(
            session, model="face", emotion="Anger", limit=10, created_after=created.replace(microsecond=0)
        )
        old = await analytics.top_emotion(session, model="face", emotion="Anger", limit=10, created_before=created)
    assert [i["job_id"] for i in by_mean] == [str(steady), str(spike), str(calm)]
    assert by_mean[0]["mean"] == pytest.approx(0.6, rel=1e-6)
    assert by_mean[1]["mean"] == pytest.approx((0.95 + 0.1 * 3) / 4, rel=1e-6)
    assert [i["job_id"] for i in by_max] == [str(spike), str(steady), str(calm)]
    assert by_max[0]["source_url"] == "https://e.com/spike.mp4" and by_max[0]["predictions"] == 4
    assert [i["job_id"] for i in first] == [str(steady)]
    assert [i["job_id"] for i in ops] == [str(calm)]
    assert [i["job_id"] for i in recent] == [str(steady), str(spike)]
    assert [i["job_id"] for i in old] == [str(calm)]


async def test_emotion_names_resolve_to_the_exact_spelling_first(sessionmaker: Sessionmaker) -> None:
    """When a job brings a name that differs from a known one only by case ("joy"), it gets its own
    position; lookups give the exact spelling's position and otherwise the canonical one, never an error."""
    job_id = await _import(sessionmaker, _face_doc("https://e.com/a.mp4", [{"joy": 0.7, "Joy": 0.2}], ("joy",)))
    async with sessionmaker() as session:
        exact_lower = await analytics.emotion_position(session, "face", "joy")
        canonical = await analytics.emotion_position(session, "face", "Joy")
        shouted = await analytics.emotion_position(session, "face", "JOY")
        name = await analytics.emotion_name(session, "face", "JOY")
        summary = await analytics.summary(session, job_id)
    assert canonical == shouted == EXPRESSIONS_48.index("Joy") and name == "Joy"
    assert exact_lower == len(EXPRESSIONS_48)
    means = {e["name"]: e["mean"] for e in summary["face"]["emotions"]}
    assert means["joy"] == pytest.approx(0.7) and means["Joy"] == pytest.approx(0.2)


async def test_summary_counts_a_model_whose_predictions_scored_nothing(sessionmaker: Sessionmaker) -> None:
    """Predictions with an empty emotions list are still counted in the summary, also when a whole model
    scored nothing (no aggregate rows exist for it)."""
    preds = [{"frame": 0, "time": 0.0, "emotions": []}, {"frame": 1, "time": 0.5, "emotions": []}]
    doc = [
        {
            "source": {"type": "url", "url": "https://e.com/mesh.mp4"},
            "results": {
                "predictions": [
                    {
                        "file": "mesh.mp4",
                        "models": {
                            "facemesh": {"grouped_predictions": [{"id": "unknown", "predictions": preds}]},
                            "face": {"grouped_predictions": [{"id": "face_0", "predictions": preds[:1]}]},
                        },
                    }
                ]
            },
        }
    ]
    job_id = await _import(sessionmaker, json.dumps(doc).encode())
    job_id_scored = await _import(sessionmaker, _face_doc("https://e.com/b.mp4", [{"Joy": 0.5}]))
    async with sessionmaker() as session:
        summary = await analytics.summary(session, job_id)
        scored = await analytics.summary(session, job_id_scored)
    assert summary == {"face": {"predictions": 1, "emotions": []}, "facemesh": {"predictions": 2, "emotions": []}}
    assert scored["face"]["predictions"] == 1 and len(scored["face"]["emotions"]) == 48
