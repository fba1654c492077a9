"""Analyst endpoints over real HTTP: summary, timeline, predictions (JSON pages and streamed CSV), top emotions."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import math
import uuid
from collections import defaultdict
from typing import Any

from sqlalchemy import text

from app.batch import prediction_import as importer
from app.store.db import make_engine, make_sessionmaker
from bench import payloads
from tests.conftest import Service, create_key
from tests.fixtures import REAL_PREDICTIONS

# Scores are answered with 4 decimals (they are float4 in Postgres): half a unit of the last one, plus float4.
ROUNDED = 0.5e-4 + 1e-6


def import_documents(database_url: str, *documents: bytes, metadata: list[dict[str, Any]] | None = None) -> list[str]:
    """Import each document as a job (optionally with job metadata); their ids in order."""

    async def run() -> list[str]:
        engine = make_engine(database_url, pool_size=1)
        sessionmaker = make_sessionmaker(engine)
        ids = []
        try:
            for i, document in enumerate(documents):
                job_id, _ = await importer.import_document(sessionmaker, document, url=None, name=f"doc{i}.json")
                if metadata is not None:
                    async with sessionmaker.begin() as session:
                        await session.execute(
                            text("UPDATE job SET metadata = CAST(:m AS jsonb) WHERE id = :id"),
                            {"m": json.dumps(metadata[i]), "id": job_id},
                        )
                ids.append(str(job_id))
        finally:
            await engine.dispose()
        return ids

    return asyncio.run(run())


def face_predictions(document: bytes) -> list[tuple[str, dict[str, Any]]]:
    raw = json.loads(document)
    return [
        (group["id"], p)
        for source in raw
        for fp in (source.get("results") or {}).get("predictions", [])
        for model, result in fp["models"].items()
        if model == "face"
        for group in result["grouped_predictions"]
        for p in group["predictions"]
    ]


def face_doc(url: str, anger: float, frames: int = 6) -> bytes:
    """A small face job whose Anger score is `anger` in every frame (other emotions low)."""
    from app.hume.emotions import EXPRESSIONS_48

    preds = [
        {
            "frame": f,
            "time": f / 3,
            "prob": 0.99,
            "box": {"x": 0, "y": 0, "w": 10, "h": 10},
            "emotions": [{"name": n, "score": anger if n == "Anger" else 0.01} for n in EXPRESSIONS_48],
        }
        for f in range(frames)
    ]
    models = {"face": {"metadata": None, "grouped_predictions": [{"id": "unknown", "predictions": preds}]}}
    document = [
        {
            "source": {"type": "url", "url": url},
            "results": {"predictions": [{"file": "v.mp4", "models": models}], "errors": []},
        }
    ]
    return json.dumps(document).encode()


def test_summary_is_served_with_every_emotion_sorted_by_mean(service: Service) -> None:
    """GET /v1/jobs/{id}/summary answers the CONTRACT shape for an imported real job: 1,075 face
    predictions, 48 emotions with mean and max, highest mean first; unknown ids are 404."""
    [job_id] = import_documents(service.database_url, REAL_PREDICTIONS.read_bytes())
    with service.client() as client:
        body = client.get(f"/v1/jobs/{job_id}/summary").json()
        assert body["job_id"] == job_id
        face = body["models"]["face"]
        assert face["predictions"] == 1075
        assert len(face["emotions"]) == 48
        means = [e["mean"] for e in face["emotions"]]
        assert means == sorted(means, reverse=True)
        assert all(e["max"] >= e["mean"] for e in face["emotions"])
        missing = client.get(f"/v1/jobs/{uuid.uuid4()}/summary")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_timeline_means_per_bucket_and_per_group(service: Service) -> None:
    """The timeline's per-second means of Joy equal those computed from the JSON, overall and per face."""
    document = REAL_PREDICTIONS.read_bytes()
    [job_id] = import_documents(service.database_url, document)
    overall: dict[float, list[float]] = defaultdict(list)
    per_group: dict[tuple[str, float], list[float]] = defaultdict(list)
    for group, p in face_predictions(document):
        joy = next(e["score"] for e in p["emotions"] if e["name"] == "Joy")
        overall[math.floor(p["time"] / 2) * 2.0].append(joy)
        per_group[(group, math.floor(p["time"] / 2) * 2.0)].append(joy)
    with service.client() as client:
        params: dict[str, Any] = {"model": "face", "emotion": "joy", "bucket_s": 2}
        body = client.get(f"/v1/jobs/{job_id}/timeline", params=params).json()
        assert body["bucket_s"] == 2
        points = {p["time_begin"]: p["mean"] for p in body["points"]}
        assert points.keys() == overall.keys()
        for t, values in overall.items():
            assert abs(points[t] - sum(values) / len(values)) <= ROUNDED
        grouped = client.get(
            f"/v1/jobs/{job_id}/timeline",
            params={"model": "face", "emotion": "Joy", "bucket": 2, "per_group": "true"},  # old name
        ).json()
        got = {(p["group"], p["time_begin"]): p["mean"] for p in grouped["points"]}
        assert got.keys() == per_group.keys()
        for key, values in per_group.items():
            assert abs(got[key] - sum(values) / len(values)) <= ROUNDED
        bad = client.get(f"/v1/jobs/{job_id}/timeline", params={"model": "face", "emotion": "Glee"})
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_input"
        assert client.get(f"/v1/jobs/{job_id}/timeline", params={"emotion": "Joy"}).status_code == 422


def test_predictions_page_with_cursor_and_filters(service: Service) -> None:
    """Cursor pages cover every prediction exactly once; model, group and time filters narrow them;
    a bad cursor or source is a 422."""
    document = payloads.every_model()
    [job_id] = import_documents(service.database_url, document)
    with service.client() as client:
        seen: list[int] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 100, **({"cursor": cursor} if cursor else {})}
            page = client.get(f"/v1/jobs/{job_id}/predictions", params=params).json()
            seen += [item["id"] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        total = client.get(f"/v1/jobs/{job_id}/summary").json()["models"]
        assert len(seen) == len(set(seen)) == sum(m["predictions"] for m in total.values())
        panel = [(g, p["time"]) for g, p in face_predictions(document)[:40]]
        group, start = panel[-1]
        want = {t for g, t in panel if g == group and start <= t < start + 3}
        faces = client.get(
            f"/v1/jobs/{job_id}/predictions",
            params={"model": "face", "group": group, "from": start, "to": start + 3, "limit": 5000},
        ).json()["items"]
        assert faces and all(i["model"] == "face" and i["group"] == group for i in faces)
        assert want <= {i["time_begin"] for i in faces}
        assert all(i["time_end"] >= start and i["time_begin"] < start + 3 for i in faces)
        assert len(faces[0]["scores"]) == 48 and "facs" in faces[0]
        assert all(round(v, 4) == v for v in faces[0]["scores"].values())  # float4 scores, 4 decimals
        language = client.get(f"/v1/jobs/{job_id}/predictions", params={"model": "language", "limit": 1}).json()
        item = language["items"][0]
        assert item["position_begin"] is not None and item["sentiment"] and item["toxicity"]
        source = item["source_id"]
        only = client.get(f"/v1/jobs/{job_id}/predictions", params={"source": source, "limit": 5000}).json()["items"]
        assert only and all(i["source_id"] == source for i in only)
        assert client.get(f"/v1/jobs/{job_id}/predictions", params={"cursor": "zz"}).status_code == 422
        assert client.get(f"/v1/jobs/{job_id}/predictions", params={"source": "first"}).status_code == 422
        assert client.get(f"/v1/jobs/{job_id}/predictions", params={"model": "smell"}).status_code == 422


def test_csv_export_streams_one_row_per_prediction(service: Service) -> None:
    """`Accept: text/csv` and the .csv suffix both give the same streamed CSV: a header with every emotion,
    then one row per prediction with the scores from Hume's file."""
    document = REAL_PREDICTIONS.read_bytes()
    [job_id] = import_documents(service.database_url, document)
    with service.client() as client:
        by_header = client.get(f"/v1/jobs/{job_id}/predictions", headers={"Accept": "text/csv"})
        by_suffix = client.get(f"/v1/jobs/{job_id}/predictions.csv")
    assert by_header.status_code == by_suffix.status_code == 200
    assert by_header.headers["content-type"].startswith("text/csv")
    assert by_header.text == by_suffix.text
    rows = list(csv.DictReader(io.StringIO(by_header.text)))
    assert len(rows) == 1075
    expected = {(g, p["frame"]): p for g, p in face_predictions(document)}
    for row in rows[:50]:
        p = expected[(row["group"], int(row["frame"]))]
        for e in p["emotions"]:
            assert abs(float(row[e["name"]]) - e["score"]) <= ROUNDED


def test_top_emotion_ranks_sources_across_jobs_with_filters(service: Service) -> None:
    """GET /v1/emotions/top ranks sources by an emotion's mean (or max) across jobs, filters by job
    metadata and creation time, matches names case-insensitively, and refuses what it cannot answer."""
    levels = [0.2, 0.9, 0.5, 0.7]
    ids = import_documents(
        service.database_url,
        *(face_doc(f"https://example.com/{i}.mp4", a) for i, a in enumerate(levels)),
        metadata=[{"team": "research" if i % 2 else "sales"} for i in range(len(levels))],
    )
    with service.client() as client:
        body = client.get("/v1/emotions/top", params={"model": "face", "emotion": "anger", "limit": 3}).json()
        assert body["emotion"] == "Anger"
        assert [i["job_id"] for i in body["items"]] == [ids[1], ids[3], ids[2]]
        assert abs(body["items"][0]["mean"] - 0.9) <= ROUNDED and body["items"][0]["predictions"] == 6
        research = client.get(
            "/v1/emotions/top", params={"model": "face", "emotion": "Anger", "metadata": '{"team": "sales"}'}
        ).json()
        assert [i["job_id"] for i in research["items"]] == [ids[2], ids[0]]
        future = client.get(
            "/v1/emotions/top",
            params={"model": "face", "emotion": "Anger", "created_after": "2999-01-01T00:00:00+00:00"},
        ).json()
        assert future["items"] == []
        for params in (
            {"model": "face", "emotion": "Glee"},
            {"model": "smell", "emotion": "Anger"},
            {"model": "face"},
            {"model": "face", "emotion": "Anger", "by": "median"},
            {"model": "face", "emotion": "Anger", "metadata": "[1]"},
            {"model": "face", "emotion": "Anger", "created_after": "yesterday"},
            {"model": "face", "emotion": "Anger", "limit": "0"},
        ):
            response = client.get("/v1/emotions/top", params=params)
            assert response.status_code == 422, params
            assert response.json()["error"]["code"] == "invalid_input"
    with service.client(key=create_key(service.database_url, ["submit"])) as client:
        assert client.get("/v1/emotions/top", params={"model": "face", "emotion": "Anger"}).status_code == 403


def test_csv_of_several_models_has_the_union_of_their_emotions(service: Service) -> None:
    """A job with face (48 emotions) and language (53) exports one header with all 53 names; each row fills
    its own model's columns with its scores, leaves the others empty, and keeps text with commas intact."""
    document = payloads.every_model()
    [job_id] = import_documents(service.database_url, document)
    with service.client() as client:
        body = client.get(f"/v1/jobs/{job_id}/predictions.csv").text
        language_page = client.get(f"/v1/jobs/{job_id}/predictions", params={"model": "language", "limit": 5000})
        summary = client.get(f"/v1/jobs/{job_id}/summary").json()
    rows = list(csv.DictReader(io.StringIO(body)))
    assert len(rows) == sum(m["predictions"] for m in summary["models"].values())
    header = next(csv.reader(io.StringIO(body)))
    assert "Annoyance" in header and "Admiration" in header and header.count("Joy") == 1
    language = [r for r in rows if r["model"] == "language"]
    face = [r for r in rows if r["model"] == "face"]
    assert language and face
    assert all(r["Annoyance"] != "" for r in language) and all(r["Annoyance"] == "" for r in face)
    items = language_page.json()["items"]
    assert [r["text"] for r in language] == [i["text"] for i in items]
    assert any("," in (r["text"] or "") for r in language)  # the raw text "Alice met Bob in Paris and ..."
    for row, item in zip(language, items, strict=True):
        for name, score in item["scores"].items():
            assert float(row[name]) == score  # JSON and CSV carry the same rounded score


def test_text_that_postgres_cannot_hold_is_a_422_not_a_500(service: Service) -> None:
    """NUL characters in an emotion, a group (JSON and streamed CSV) or a metadata filter are refused with
    invalid_input before any query runs; the connection stays usable and the job's data is untouched."""
    [job_id] = import_documents(service.database_url, REAL_PREDICTIONS.read_bytes())
    with service.client() as client:
        for path, params in (
            ("/v1/emotions/top", {"model": "face", "emotion": "An\x00ger"}),
            ("/v1/emotions/top", {"model": "face", "emotion": "Anger", "metadata": '{"team": "a\\u0000b"}'}),
            ("/v1/emotions/top", {"model": "face", "emotion": "Anger", "metadata": '{"a\\u0000": 1}'}),
            (f"/v1/jobs/{job_id}/timeline", {"model": "face", "emotion": "J\x00oy"}),
            (f"/v1/jobs/{job_id}/predictions", {"group": "face_\x000"}),
            (f"/v1/jobs/{job_id}/predictions.csv", {"group": "face_\x000"}),
            ("/v1/jobs", {"hume_id": "x\x00"}),
            ("/v1/jobs", {"metadata": '{"team": "\\u0000"}'}),
        ):
            response = client.get(path, params=params)
            assert response.status_code == 422, (path, params, response.text)
            assert response.json()["error"]["code"] == "invalid_input"
        assert client.get(f"/v1/jobs/{job_id}/summary").json()["models"]["face"]["predictions"] == 1075
