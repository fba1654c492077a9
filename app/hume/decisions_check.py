"""`python -m app hume check --decisions`: one short Audio Decisions request with one question of each
primitive, through the client the service uses, so the first person with a key sees what Hume answered (raw)
next to what we read, and which fields we do not know. That settles the assumptions in decisions_contract
(marked ASSUMED) in one command.

Hume bills every decisions request by input tokens (D/billing), so against Hume's own cloud host the probe is
only sent when the caller agreed to spend that (`spend`); against the emulator or a compatible server it is
free. Nothing at all is sent to Hume's own host without `spend`; with it, the free input-token estimate
(D/billing) is asked first.
"""

from __future__ import annotations

import io
import math
import struct
import time
import wave
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from app.config import Settings
from app.hume import catalog
from app.hume import decisions_contract as hume
from app.hume.decisions import DecisionsClient, DecisionsError

RATE = 16_000
SECONDS = 5  # D/limits-and-errors: "at least 5 seconds for most questions"
CALL = f"POST {hume.DECISIONS_PATH}, {SECONDS} s of 16 kHz mono WAV, one question of each primitive"
QUESTIONS: dict[str, dict[str, Any]] = {
    "tone_present": {"type": "noul", "instructions": "Is a steady tone audible in this recording?",
                     "criteria": {"true": "A tone can be heard", "false": "Only silence or noise"}},
    "pitch": {"type": "choice", "instructions": "How high is the tone's pitch?",
              "criteria": {"low": "Below middle C", "high": "Above middle C"}},
    "loudness": {"type": "score", "instructions": "How loud is the recording?",
                 "criteria": ["Silent", "Quiet", "Moderate", "Loud"]},
    "tone_times": {"type": "span", "instructions": "When does a tone sound?"},
}  # fmt: skip
SPEND_WARNING = (
    "not called: Hume bills each decisions request by its input tokens (audio duration and question text, "
    "D/billing); pass --spend to send this one request"
)
_READ = {"noul": ("share",), "choice": ("choice", "probabilities"), "score": ("score", "probabilities"),
         "span": ("spans",)}  # fmt: skip
"""What must be read from each primitive's answer for the service to store it."""


def probe_wav() -> bytes:
    """5 s: a 440 Hz tone for 2 s, 1 s of silence, a 660 Hz tone for 2 s (so the span question has two)."""
    samples = []
    for i in range(RATE * SECONDS):
        t = i / RATE
        hz = 440 if t < 2 else (0 if t < 3 else 660)
        samples.append(round(8000 * math.sin(2 * math.pi * hz * t)) if hz else 0)
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(struct.pack(f"<{len(samples)}h", *samples))
    return out.getvalue()


@dataclass
class QuestionReport:
    question_id: str
    primitive: str
    raw: Any
    parsed: dict[str, Any]
    unknown: list[str]
    missing: list[str]


@dataclass
class DecisionsProbe:
    url: str
    called: bool = False
    ok: bool = False
    authentication: str = "not judged"
    latency_ms: float | None = None
    run_id: str | None = None
    input_tokens: int | None = None
    estimate: int | None = None
    estimate_raw: Any = None
    estimate_problem: str | None = None
    raw: Any = None
    questions: list[QuestionReport] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    """Fields of the response outside the answers that the reader does not know."""
    problem: str | None = None


def _parsed(answer: hume.Answer) -> dict[str, Any]:
    read = {name: value for name in ("share", "choice", "confidence", "probabilities", "score", "legend")
            if (value := getattr(answer, name)) is not None}  # fmt: skip
    if answer.spans is not None:
        read["spans"] = [span._asdict() for span in answer.spans]
    return read


def _authentication(exc: DecisionsError) -> str:
    if exc.status == 401:
        return "401: the key was refused (HUME_CLOUD_API_KEY, else HUME_API_KEY)"
    if exc.status == hume.PAYMENT_REQUIRED_STATUS:
        return "402: the organization has no payment method on file (or an unpaid invoice)"
    if exc.status == hume.FORBIDDEN_STATUS:
        return "403: the organization has no Audio Decisions access, or the key's permissions exclude it"
    return "ok" if exc.status is not None and exc.status != 429 and exc.status < 500 else "not judged"


async def check_decisions(settings: Settings, *, spend: bool) -> DecisionsProbe:
    """Estimate, then ask the probe's questions at the cloud host, unless it is Hume's own and `spend` is False."""
    probe = DecisionsProbe(url=catalog.CLOUD.url(settings))
    client = DecisionsClient(api_key=settings.cloud_key, base_url=probe.url, max_retries=0, timeout_s=30)
    estimates: list[Any] = []

    async def keep_estimate(response: httpx.Response) -> None:
        if response.request.url.path.endswith(hume.INPUT_TOKENS_PATH) and response.status_code == 200:
            await response.aread()
            estimates.append(orjson.loads(response.content) if response.content else None)

    client.http.event_hooks = {"response": [keep_estimate]}
    try:
        if catalog.CLOUD.is_hume(settings) and not spend:
            probe.problem = SPEND_WARNING
            return probe
        try:
            probe.estimate = await client.input_tokens(SECONDS * 1000, QUESTIONS)
            probe.estimate_raw = estimates[0] if estimates else None
        except DecisionsError as exc:
            probe.estimate_problem = str(exc)
        probe.called = True
        started = time.perf_counter()
        try:
            result = await client.decide(probe_wav(), "hume-check.wav", "audio/wav", QUESTIONS)
        except DecisionsError as exc:
            probe.authentication = _authentication(exc)
            probe.problem = str(exc)
            return probe
        finally:
            probe.latency_ms = (time.perf_counter() - started) * 1000
    finally:
        await client.aclose()
    probe.authentication = "ok"
    probe.run_id, probe.input_tokens, probe.raw = result.run_id, result.input_tokens, result.raw
    probe.unknown = [name for name in result.unknown_fields if not name.startswith("answers.")]
    for qid, question in QUESTIONS.items():
        kind = question["type"]
        answer = result.answers.get(qid)
        if answer is None:
            probe.questions.append(QuestionReport(qid, kind, None, {}, [], ["the whole answer"]))
            continue
        missing = [name for name in _READ[kind] if getattr(answer, name) is None]
        probe.questions.append(QuestionReport(qid, kind, answer.raw, _parsed(answer), list(answer.unknown_fields),
                                              missing))  # fmt: skip
    missing_any = any(q.missing for q in probe.questions)
    probe.ok = result.run_id is not None and not missing_any
    if missing_any:
        probe.problem = "some answers could not be read: correct the spellings in app/hume/decisions_contract.py"
    elif result.run_id is None:
        probe.problem = "the answer has no run_id"
    return probe
