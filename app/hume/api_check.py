"""`python -m app hume check`'s probe of the live Hume API we use (v1 Expression Measurement): the smallest
request it takes, one second of 16 kHz mono WAV, through the same client the v1 backend uses, judged for
authentication, latency and whether the answer has the shape we parse (the SDK's response model).

Hume bills at least 10 s for every run that took media (HUME-V1-FACTS §6), so against Hume's own cloud host
the probe is only sent when the caller agreed to spend that (`spend`); against the emulator or a compatible
server it is free.
"""

from __future__ import annotations

import io
import math
import struct
import time
import types
import typing
import wave
from dataclasses import dataclass, field
from typing import Any

import httpx
import pydantic
from hume_expression_measurement.core.parse_error import ParsingError
from hume_expression_measurement.types import AudioFileResponse

from app.config import Settings
from app.hume import billing, catalog
from app.hume.errors import HumeError, HumeTransientError
from app.hume.expression_client import ExpressionClient

SAMPLE_RATE = 16_000  # v1 audio is s16le PCM, 16 kHz, mono (HUME-V1-FACTS §4)
AUDIO_PATH = "/v1/expression/audio/file"
CALL = f"POST {AUDIO_PATH}, 1 s of 16 kHz mono WAV"
BILLED_MINIMUM_S = round(billing.MIN_RUN_SECONDS)  # HUME-V1-FACTS §6, as app/hume/billing.py encodes it
SPEND_WARNING = (
    f"not called: Hume bills at least {BILLED_MINIMUM_S} s for every run that took media (HUME-V1-FACTS §6), "
    f"so this one-second check is billed as {BILLED_MINIMUM_S} s of audio; pass --spend to run it"
)
# HUME-V1-FACTS §1: 403 = the organization may not use the API; v1 is a limited release since 2026-10-06.
NOT_ENABLED = (
    "403: this organization is not enabled for v1 (limited release since 2026-10-06; access by request to Hume's sales)"
)


def one_second_wav() -> bytes:
    """A 440 Hz tone, 1 s, 16 kHz mono 16-bit: the smallest medium worth measuring."""
    samples = (round(3000 * math.sin(2 * math.pi * 440 * i / SAMPLE_RATE)) for i in range(SAMPLE_RATE))
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(b"".join(struct.pack("<h", s) for s in samples))
    return out.getvalue()


@dataclass
class Probe:
    """What one check found. `ok` is False when the API failed (unreachable, refused, or unreadable)."""

    url: str
    called: bool = False
    ok: bool = False
    authentication: str = "not judged"
    latency_ms: float | None = None
    unknown: list[str] = field(default_factory=list)
    """Fields in the answer the SDK's model does not know (tolerated: Hume may add fields)."""
    missing: list[str] = field(default_factory=list)
    """Fields the model requires that the answer lacks (we cannot read it)."""
    problem: str | None = None


def _models(annotation: Any) -> list[tuple[type[pydantic.BaseModel], bool]]:
    """The response models inside a field's annotation, each with whether it comes as a list."""
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        return [(annotation, False)]
    origin = typing.get_origin(annotation)
    if origin in (list, typing.List):  # noqa: UP006  # the SDK writes typing.List
        return [(model, True) for model, _ in _models(typing.get_args(annotation)[0])]
    if origin in (typing.Union, types.UnionType):
        return [found for arg in typing.get_args(annotation) for found in _models(arg)]
    return []


def compare(model: type[pydantic.BaseModel], value: Any, path: str, unknown: set[str], missing: set[str]) -> None:
    """Walk `value` (JSON) against `model`: names of fields it does not know, and of required ones it lacks."""
    if not isinstance(value, dict):
        missing.add(path.rstrip(".") or "the body (not a JSON object)")
        return
    fields = {(info.alias or name): info for name, info in model.model_fields.items()}
    unknown.update(f"{path}{key}" for key in value if key not in fields)
    for key, info in fields.items():
        if value.get(key) is None:
            if info.is_required():
                missing.add(f"{path}{key}")
            continue
        for sub, many in _models(info.annotation):
            items = value[key] if many and isinstance(value[key], list) else [value[key]]
            for item in items:
                compare(sub, item, f"{path}{key}{'[]' if many else ''}.", unknown, missing)


def _authentication(exc: HumeError) -> str:
    if exc.status == 401:
        return "401: the key was refused (HUME_CLOUD_API_KEY, else HUME_API_KEY)"
    if exc.status == 403:
        return NOT_ENABLED
    return "not judged"


async def check_v1(settings: Settings, *, spend: bool) -> Probe:
    """Measure one second of audio at the cloud host, unless that is Hume's own and `spend` is False."""
    probe = Probe(url=catalog.CLOUD.url(settings))
    if catalog.CLOUD.is_hume(settings) and not spend:
        probe.problem = SPEND_WARNING
        return probe
    client = ExpressionClient(api_key=settings.cloud_key, base_url=probe.url, max_retries=0, timeout_s=30)
    answers: list[Any] = []

    async def keep_answer(response: httpx.Response) -> None:
        # Hume's JSON as it came, to compare with the SDK's model (the client returns it parsed, or not at all).
        if response.request.url.path.endswith(AUDIO_PATH) and response.status_code == 200:
            await response.aread()
            try:
                answers.append(response.json())
            except ValueError:
                answers.append(None)

    client._http.event_hooks = {"response": [keep_answer]}
    probe.called = True
    started = time.perf_counter()
    try:
        await client.measure_audio(one_second_wav(), name="hume-check.wav")
    except HumeTransientError as exc:
        probe.problem = str(exc)
    except HumeError as exc:
        probe.authentication = _authentication(exc)
        probe.problem = str(exc)
    except ParsingError:
        pass  # a 200 the SDK could not read: judged by its shape below
    finally:
        probe.latency_ms = (time.perf_counter() - started) * 1000
        await client.aclose()
    if answers:
        probe.authentication = "ok"
        unknown: set[str] = set()
        missing: set[str] = set()
        compare(AudioFileResponse, answers[0], "", unknown, missing)
        probe.unknown, probe.missing = sorted(unknown), sorted(missing)
        probe.ok = not missing
        if missing:
            probe.problem = "the answer lacks fields the SDK requires, so the v1 backend cannot read it"
    return probe
