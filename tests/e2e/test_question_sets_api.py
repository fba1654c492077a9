"""/v1/question-sets over HTTP: created and refused as Hume would (422 naming the JSON Pointer), versioned by
edits that never change a written version, archived, scoped by key and tenant; and the answers read across
jobs and per job (JSON, CSV) through the API."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from typing import Any

import httpx
import orjson

from app.store import jobs, question_sets
from app.store.db import make_engine, make_sessionmaker
from app.store.decisions import AnswerRow, store_answers
from tests.conftest import Service, create_key

SET: dict[str, Any] = {
    "name": "support calls",
    "context": "Calls to a phone company's support line.",
    "questions": {
        "topic": {"type": "choice", "instructions": "What is the call about?",
                  "criteria": {"billing": "money matters", "outage": "the service is down"}},
        "cancel": {"type": "noul", "instructions": "Does the caller ask to cancel?",
                   "criteria": {"true": "asks to end the contract"}},
        "natural": {"type": "score", "instructions": "How natural does the agent sound?",
                    "criteria": ["robotic", "flat", "natural"]},
        "ring": {"type": "span", "instructions": "When does a phone ring?"},
    },
}  # fmt: skip


def _error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return dict(response.json()["error"])


def test_a_set_is_created_in_order_and_refused_naming_the_pointer(service: Service) -> None:
    with service.client() as client:
        created = client.post("/v1/question-sets", json=SET)
        assert created.status_code == 201, created.text
        body = created.json()
        assert created.headers["location"] == f"/v1/question-sets/{body['id']}"
        assert body["question_ids"] == ["topic", "cancel", "natural", "ring"]
        assert list(body["questions"]) == ["topic", "cancel", "natural", "ring"]
        assert body["questions"]["ring"] == {"type": "span", "instructions": "When does a phone ring?",
                                             "criteria": None}  # fmt: skip
        assert (body["version"], body["family_id"], body["latest_id"]) == (1, body["id"], body["id"])
        assert client.get(f"/v1/question-sets/{body['id']}").json() == body

        bad = {**SET, "questions": {**SET["questions"], "natural": {"type": "score", "instructions": "How natural?",
                                                                    "criteria": ["only one"]}}}  # fmt: skip
        error = _error(client.post("/v1/question-sets", json=bad), 422)
        assert error["details"] == {"field": "/questions/natural/criteria", "rule": "min_levels"}
        assert "at least 2 levels" in error["message"]
        spans = {f"s{i}": {"type": "span", "instructions": "When?"} for i in range(6)}
        error = _error(client.post("/v1/question-sets", json={"name": "x", "questions": spans}), 422)
        assert error["details"] == {"field": "/questions", "rule": "max_span_questions"}
        assert _error(client.post("/v1/question-sets", content=b"[1]"), 422)["code"] == "invalid_input"
        assert _error(client.get("/v1/question-sets/not-a-uuid"), 404)["code"] == "not_found"
        assert [s["id"] for s in client.get("/v1/question-sets").json()["items"]] == [body["id"]]


def test_edits_are_new_versions_and_archive_hides_the_family(service: Service) -> None:
    with service.client() as client:
        v1 = client.post("/v1/question-sets", json=SET).json()
        edited = {**SET, "name": "support calls (short)", "questions": {"cancel": SET["questions"]["cancel"]}}
        put = client.put(f"/v1/question-sets/{v1['id']}", json=edited)
        assert put.status_code == 201, put.text
        v2 = put.json()
        assert (v2["version"], v2["family_id"], v2["question_ids"]) == (2, v1["id"], ["cancel"])
        # The written version is untouched, and says which version is newest.
        again = client.get(f"/v1/question-sets/{v1['id']}").json()
        assert again["questions"] == v1["questions"] and again["name"] == "support calls"
        assert (again["latest_id"], again["latest_version"]) == (v2["id"], 2)
        # Editing an older version would drop the newer one's changes: refused, naming the newest.
        stale = _error(client.put(f"/v1/question-sets/{v1['id']}", json=SET), 409)
        assert stale["details"] == {"latest_id": v2["id"], "latest_version": 2}
        # A refused edit makes no version.
        _error(client.put(f"/v1/question-sets/{v2['id']}", json={**SET, "questions": {}}), 422)
        versions = client.get(f"/v1/question-sets/{v2['id']}/versions").json()
        assert [v["version"] for v in versions["items"]] == [1, 2]
        # The list shows each family once, by its newest version.
        other = client.post("/v1/question-sets", json={**SET, "name": "other"}).json()
        listed = client.get("/v1/question-sets").json()["items"]
        assert [s["id"] for s in listed] == [other["id"], v2["id"]]
        page = client.get("/v1/question-sets", params={"limit": 1}).json()
        rest = client.get("/v1/question-sets", params={"limit": 1, "cursor": page["next_cursor"]}).json()
        assert [s["id"] for s in page["items"] + rest["items"]] == [other["id"], v2["id"]]
        assert rest["next_cursor"] is None

        archived = client.post(f"/v1/question-sets/{v1['id']}/archive")
        assert archived.status_code == 200 and archived.json()["archived_at"] is not None
        assert [s["id"] for s in client.get("/v1/question-sets").json()["items"]] == [other["id"]]
        shown = client.get("/v1/question-sets", params={"archived": "true"}).json()["items"]
        assert {s["id"] for s in shown} == {other["id"], v2["id"]}
        assert client.get(f"/v1/question-sets/{v2['id']}").json()["archived_at"] is not None
        assert _error(client.put(f"/v1/question-sets/{v2['id']}", json=SET), 409)["code"] == "conflict"


def test_keys_and_tenants(service: Service) -> None:
    """Reading needs `read`, writing `submit`; another tenant's set is a 404 everywhere; an analyst key reads
    every tenant's sets."""
    acme = create_key(service.database_url, ["submit", "read"], name="acme", tenant="acme")
    globex = create_key(service.database_url, ["submit", "read"], name="globex", tenant="globex")
    reader = create_key(service.database_url, ["read"], name="reader", tenant="acme")
    analyst = create_key(service.database_url, ["analyst"], name="analyst")
    with service.client(acme) as a, service.client(globex) as g, service.client(reader) as r:
        mine = a.post("/v1/question-sets", json=SET).json()
        assert _error(r.post("/v1/question-sets", json=SET), 403)["code"] == "forbidden"
        assert r.get(f"/v1/question-sets/{mine['id']}").status_code == 200
        assert _error(r.post(f"/v1/question-sets/{mine['id']}/archive"), 403)["code"] == "forbidden"
        for method, path in [("GET", ""), ("PUT", ""), ("POST", "/archive"), ("GET", "/versions"),
                             ("GET", "/distribution"), ("GET", "/top?question=cancel")]:  # fmt: skip
            response = g.request(method, f"/v1/question-sets/{mine['id']}{path}", json=SET if method == "PUT" else None)
            assert _error(response, 404)["message"] == "unknown question set", (method, path)
        assert g.get("/v1/question-sets").json()["items"] == []
    with service.client(analyst) as reader_of_all:
        assert [s["id"] for s in reader_of_all.get("/v1/question-sets").json()["items"]] == [mine["id"]]


def typed(fields: dict[str, Any], options: list[str]) -> dict[str, Any]:
    """An answer's typed columns as AnswerRow takes them (JSON ones serialized, a choice's probabilities also in
    the order of the set's `options` and a span list's number and total duration, as window_rows makes them)."""
    out = {k: orjson.dumps(v) if isinstance(v, dict | list) else v for k, v in fields.items()}
    if "option_probabilities" in fields:
        out["probabilities"] = [fields["option_probabilities"].get(o) for o in options]
    if "spans" in fields:
        ended = [s["end_ms"] - s["start_ms"] for s in fields["spans"] if s["end_ms"] is not None]
        out.update(span_count=len(fields["spans"]), span_ms=sum(ended) if ended else None)
    return out


def _store(database_url: str, set_id: str, rows: list[dict[str, Any]]) -> list[uuid.UUID]:
    """Two jobs of the set (metadata customer a and b) and the given answers (job 0 or 1 by `job`)."""

    async def run() -> list[uuid.UUID]:
        engine = make_engine(database_url, pool_size=1)
        try:
            async with make_sessionmaker(engine).begin() as session:
                qs = await question_sets.get(session, uuid.UUID(set_id), tenant=None)
                assert qs is not None
                made = [(await jobs.create(session, kind="batch", backend="v1", status="completed",
                                           job_metadata={"customer": c}, request={})).id for c in "ab"]  # fmt: skip
                primitives = {q["id"]: q["type"] for q in qs.questions}
                options = {q["id"]: list(q.get("criteria") or {}) for q in qs.questions if q["type"] == "choice"}

                def answer(r: dict[str, Any]) -> AnswerRow:
                    asked = r.pop("question_id")
                    return AnswerRow(
                        job_id=made[r.pop("job")], source_index=r.pop("source", 0), source_url="https://m.example/a.wav",
                        window_index=r.pop("window", 0), window_start_ms=0, window_end_ms=30_000, question_id=asked,
                        primitive=primitives[asked], raw=orjson.dumps(r), question_set_id=qs.id,
                        family_id=qs.family_id, tenant=qs.tenant, **typed(r, options.get(asked, [])),
                    )  # fmt: skip

                await store_answers(session, [answer(r) for r in rows])
                return made
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_answers_read_across_jobs_and_per_job(service: Service) -> None:
    with service.client() as client:
        created = client.post("/v1/question-sets", json=SET).json()
        made = _store(service.database_url, created["id"], [
            {"job": 0, "question_id": "cancel", "share": 0.9},
            {"job": 0, "question_id": "cancel", "source": 1, "share": 0.15},
            {"job": 1, "question_id": "cancel", "share": 0.5},
            {"job": 0, "question_id": "topic", "choice": "outage", "confidence": 0.5,
             "option_probabilities": {"billing": 0.25, "outage": 0.75}},
            {"job": 1, "question_id": "natural", "score": 1.75, "confidence": 0.5},
            {"job": 1, "question_id": "ring", "spans": [{"start_ms": 1000, "end_ms": 3000, "probability": 0.8}]},
        ])  # fmt: skip
        found = client.get(f"/v1/question-sets/{created['id']}/distribution")
        assert found.status_code == 200, found.text
        by_id = {q["question_id"]: q for q in found.json()["questions"]}
        assert list(by_id) == ["topic", "cancel", "natural", "ring"]
        assert [b["count"] for b in by_id["cancel"]["histogram"]] == [0, 1, 0, 0, 0, 1, 0, 0, 0, 1]
        assert by_id["cancel"]["mean"] == 0.5167
        assert by_id["topic"]["options"][1] == {"option": "outage", "wins": 1, "mean_confidence": 0.5,
                                                "mean_probability": 0.75}  # fmt: skip
        assert by_id["natural"]["levels"] == [{"level": 0, "description": "robotic", "count": 0},
                                              {"level": 1, "description": "flat", "count": 0},
                                              {"level": 2, "description": "natural", "count": 1}]  # fmt: skip
        assert (by_id["ring"]["spans"], by_id["ring"]["total_span_ms"]) == (1, 2000)
        filtered = client.get(f"/v1/question-sets/{created['id']}/distribution",
                              params={"question": "cancel", "metadata": '{"customer": "b"}'}).json()  # fmt: skip
        assert [(q["question_id"], q["answers"], q["mean"]) for q in filtered["questions"]] == [("cancel", 1, 0.5)]
        error = _error(client.get(f"/v1/question-sets/{created['id']}/distribution", params={"question": "x"}), 422)
        assert error["details"]["field"] == "question"
        assert _error(client.get(f"/v1/question-sets/{created['id']}/distribution",
                                 params={"since": "yesterday"}), 422)["details"]["field"] == "since"  # fmt: skip

        top = client.get(f"/v1/question-sets/{created['id']}/top", params={"question": "cancel", "limit": 2}).json()
        assert [(i["job_id"], i["source_index"], i["strength"]) for i in top["items"]] == [
            (str(made[0]), 0, 0.9), (str(made[1]), 0, 0.5)]  # fmt: skip
        assert top["by"] == "share" and top["items"][0]["job_metadata"] == {"customer": "a"}
        weakest = client.get(f"/v1/question-sets/{created['id']}/top",
                             params={"question": "topic", "option": "billing", "order": "weakest"}).json()  # fmt: skip
        assert (weakest["by"], [i["strength"] for i in weakest["items"]]) == ("probability of billing", [0.25])
        nope = client.get(f"/v1/question-sets/{created['id']}/top", params={"question": "topic", "option": "nope"})
        assert _error(nope, 422)["details"]["field"] == "option"

        page = client.get(f"/v1/jobs/{made[0]}/answers", params={"limit": 2}).json()
        assert [(a["question_id"], a["source_index"]) for a in page["items"]] == [("cancel", 0), ("cancel", 1)]
        rest = client.get(f"/v1/jobs/{made[0]}/answers", params={"cursor": page["next_cursor"]}).json()
        assert [a["question_id"] for a in rest["items"]] == ["topic"] and rest["next_cursor"] is None
        assert rest["items"][0]["raw"] == {"choice": "outage", "confidence": 0.5,
                                           "option_probabilities": {"billing": 0.25, "outage": 0.75}}  # fmt: skip
        for response in (client.get(f"/v1/jobs/{made[0]}/answers", params={"format": "csv"}),
                         client.get(f"/v1/jobs/{made[0]}/answers", headers={"Accept": "text/csv"}),
                         client.get(f"/v1/jobs/{made[0]}/answers.csv")):  # fmt: skip
            assert response.headers["content-type"].startswith("text/csv")
            table = list(csv.DictReader(io.StringIO(response.text)))
            assert [(r["source_index"], r["question_id"], r["share"]) for r in table] == [
                ("0", "cancel", "0.9000"), ("0", "topic", ""), ("1", "cancel", "0.1500")]  # fmt: skip
        assert _error(client.get(f"/v1/jobs/{made[0]}/answers", params={"cursor": "nope"}), 422)["details"] == {
            "field": "cursor"}  # fmt: skip
    other = create_key(service.database_url, ["read"], name="other", tenant="other")
    with service.client(other) as stranger:
        assert _error(stranger.get(f"/v1/jobs/{made[0]}/answers"), 404)["code"] == "not_found"
