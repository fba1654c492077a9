"""Issue 11, findings 2, 5, 6 (input side) and 9: client data that could poison reads is refused with a 422
naming the field, stored data that cannot be written never takes a list down, and CSV cells cannot run."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from app.emulator.testing import EmulatorServer
from app.store.db import make_engine, make_sessionmaker
from tests.conftest import Service
from tests.e2e.test_spine import wait_for_status

URL = "https://example.com/p.mp4"


def _nested(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


def _field(response: httpx.Response) -> str:
    assert response.status_code == 422, response.text
    return str(response.json()["error"]["details"]["field"])


def test_poison_metadata_number_is_refused_and_stored_ones_do_not_break_reads(service: Service) -> None:
    """`{"n": 1e20}` is a 422 (jsonb would give it back as an integer orjson cannot write), and a
    row stored before the check (written here by SQL) no longer turns list, get and top into 500s."""
    with service.client() as client:
        refused = client.post("/v1/jobs", json={"urls": [URL], "metadata": {"n": 1e20}})
        assert _field(refused) == "metadata.n"
        assert client.get("/v1/jobs").json()["items"] == []
        job = client.post("/v1/jobs", json={"urls": [URL], "metadata": {"n": 1}}).json()

    async def poison() -> None:
        engine = make_engine(service.database_url, pool_size=1)
        try:
            async with make_sessionmaker(engine).begin() as session:
                await session.execute(
                    text("UPDATE job SET metadata = '{\"n\": 1e20}'::jsonb WHERE id = :id"), {"id": job["id"]}
                )
        finally:
            await engine.dispose()

    asyncio.run(poison())
    with service.client() as client:
        listed = client.get("/v1/jobs")
        assert listed.status_code == 200, listed.text
        [item] = listed.json()["items"]
        assert item["id"] == job["id"] and "error" in item["metadata"]
        shown = client.get(f"/v1/jobs/{job['id']}")
        assert shown.status_code == 200 and "error" in shown.json()["metadata"]


@pytest.mark.parametrize(
    ("metadata", "field"),
    [
        ({"blob": "x" * (20 << 10)}, "metadata"),
        ({f"k{i}": i for i in range(101)}, "metadata"),
        ({"k" * 129: 1}, "metadata.kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"),
        (_nested(9), "metadata"),
        ({"big": 2**53 + 1}, "metadata.big"),
    ],
)
def test_unbounded_metadata_is_refused(service: Service, metadata: dict[str, Any], field: str) -> None:
    """metadata is bounded (16 KiB as JSON, 100 keys an object, keys of 128 characters, depth 8,
    numbers within ±2**53) on submit and on every filter; nothing is stored."""
    with service.client() as client:
        assert _field(client.post("/v1/jobs", json={"urls": [URL], "metadata": metadata})) == field
        assert _field(client.get("/v1/jobs", params={"metadata": json.dumps(metadata)})) == field
        top = client.get(
            "/v1/emotions/top", params={"model": "face", "emotion": "Joy", "metadata": json.dumps(metadata)}
        )
        assert _field(top) == field
        assert client.get("/v1/jobs").json()["items"] == []


def test_metadata_within_the_bounds_is_accepted_and_reads_back_equal(service: Service) -> None:
    metadata = {"team": "research", "depth": _nested(7), "n": 2**53, "x": -1.5, "tags": ["a", "b"]}
    with service.client() as client:
        job = client.post("/v1/jobs", json={"urls": [URL], "metadata": metadata})
        assert job.status_code == 202, job.text
        assert client.get(f"/v1/jobs/{job.json()['id']}").json()["metadata"] == metadata
        found = client.get("/v1/jobs", params={"metadata": json.dumps({"team": "research"})}).json()["items"]
        assert [j["id"] for j in found] == [job.json()["id"]]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"urls": [URL], "metadata": {"a\x00b": 1}}, "metadata"),
        ({"urls": [URL], "metadata": {"a": "b\x00"}}, "metadata.a"),
        ({"urls": [URL], "models": {"face": {"identify_faces": True, "x\x00": 1}}}, "models.face"),
        ({"urls": [URL], "metadata": _nested(300)}, "body"),
    ],
)
def test_sender_input_500s_are_422(service: Service, body: dict[str, Any], field: str) -> None:
    """NUL in metadata keys, values or model options, and deep metadata, are 422s, not 500s."""
    with service.client() as client:
        assert _field(client.post("/v1/jobs", json=body)).startswith(field)
        assert client.get("/v1/jobs").json()["items"] == []


def test_deeply_nested_bodies_and_filters_are_422(service: Service) -> None:
    """a body nested 2000 levels and a metadata filter nested 300 levels are refused before they
    reach a recursive encoder or Postgres."""
    deep = b'{"urls": ["' + URL.encode() + b'"], "metadata": ' + b'{"a":' * 2000 + b"1" + b"}" * 2001
    with service.client() as client:
        assert _field(client.post("/v1/jobs", content=deep, headers={"content-type": "application/json"})) == "body"
        assert _field(client.get("/v1/jobs", params={"metadata": json.dumps(_nested(300))})) == "metadata"


def test_csv_formula_injection_is_neutralised(service: Service) -> None:
    """a text cell starting with =, +, -, @ is exported with a leading single quote, so a
    spreadsheet shows it instead of running it."""
    formula = '=HYPERLINK("http://evil.example/x","click")'
    with service.client() as client:
        job = client.post("/v1/jobs", json={"text": [formula, "@SUM(A1)", "plain words"]}).json()
        wait_for_status(client, job["id"], {"completed"})
        body = client.get(f"/v1/jobs/{job['id']}/predictions.csv").text
    texts = [row["text"] for row in csv.DictReader(io.StringIO(body)) if row["text"]]
    assert texts
    assert not any(t[0] in "=+-@\t\r" for t in texts), texts
    assert any(t.startswith("'=HYPERLINK") or t.startswith("'@") for t in texts), texts


@pytest.mark.parametrize("body", [{"text": "hello\x00world"}, {"text": "hi", "description": "calm\x00"}])
def test_tts_with_nul_is_422_and_costs_no_hume_call(service: Service, emulator: EmulatorServer, body: Any) -> None:
    """text Postgres cannot hold was served but never cached (every repeat a paid Hume call);
    now it is a 422 naming the field, and Hume is never called."""
    with service.client() as client:
        for _ in range(2):
            answer = client.post("/v1/tts", json=body)
            assert answer.status_code == 422, answer.text
            assert answer.json()["error"]["details"]["field"] in {"text", "description"}
    assert emulator.calls().get("POST /v0/tts", 0) == 0
