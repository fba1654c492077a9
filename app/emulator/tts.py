"""TTS (Octave) REST endpoints: ``/v0/tts``, ``/v0/tts/file``, ``/v0/tts/stream/json``, ``/v0/tts/stream/file``.

Validation mirrors Hume (HUME.md 5.2/5.5): schema problems are 422 ``{"detail": [...]}`` in
FastAPI's format, semantic ones (version 2 without a voice, instant mode misuse, unknown
generation id) are 400.
"""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from . import audio
from .media import stable_hash
from .responses import emu, json

Json = dict[str, Any]
FORMATS = ("mp3", "pcm", "wav")
CHARS_PER_SECOND = 15.0  # an unhurried speaking rate
CHUNK_SECONDS = 1.0  # streamed chunk length


class TtsValidationError(Exception):
    def __init__(self, detail: list[Json]) -> None:
        super().__init__("invalid TTS request")
        self.detail = detail


class TtsBadRequest(Exception):
    pass


def _issue(loc: list[str | int], msg: str, kind: str, value: object = None) -> Json:
    return {"loc": ["body", *loc], "msg": msg, "type": kind, "input": value}


def _number(obj: Json, key: str, lo: float, hi: float, loc: list[str | int], issues: list[Json]) -> None:
    value = obj.get(key)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        issues.append(_issue([*loc, key], "Input should be a valid number", "float_type", value))
    elif value < lo:
        issues.append(
            _issue([*loc, key], f"Input should be greater than or equal to {lo}", "greater_than_equal", value)
        )
    elif value > hi:
        issues.append(_issue([*loc, key], f"Input should be less than or equal to {hi}", "less_than_equal", value))


def _string(obj: Json, key: str, max_len: int, loc: list[str | int], issues: list[Json], required: bool) -> None:
    value = obj.get(key)
    if value is None:
        if required:
            issues.append(_issue([*loc, key], "Field required", "missing", obj))
        return
    if not isinstance(value, str):
        issues.append(_issue([*loc, key], "Input should be a valid string", "string_type", value))
    elif len(value) > max_len:
        issues.append(
            _issue([*loc, key], f"String should have at most {max_len} characters", "string_too_long", len(value))
        )


def _utterances(raw: object, loc: list[str | int], issues: list[Json]) -> None:
    if raw is None:
        issues.append(_issue(loc, "Field required", "missing"))
        return
    if not isinstance(raw, list):
        issues.append(_issue(loc, "Input should be a valid list", "list_type", raw))
        return
    if not raw:
        issues.append(_issue(loc, "List should have at least 1 item after validation, not 0", "too_short", raw))
    for i, utt in enumerate(raw):
        where: list[str | int] = [*loc, i]
        if not isinstance(utt, dict):
            issues.append(_issue(where, "Input should be a valid dictionary", "dict_type", utt))
            continue
        _string(utt, "text", 5000, where, issues, required=True)
        _string(utt, "description", 1000, where, issues, required=False)
        _number(utt, "speed", 0.5, 2.0, where, issues)
        _number(utt, "trailing_silence", 0.0, 5.0, where, issues)
        voice = utt.get("voice")
        if voice is not None and not (
            isinstance(voice, dict) and (isinstance(voice.get("id"), str) or isinstance(voice.get("name"), str))
        ):
            issues.append(
                _issue([*where, "voice"], "Input should be an object with an id or a name", "model_type", voice)
            )


def validate(body: object, streaming: bool) -> Json:
    """The request, or TtsValidationError (422) / TtsBadRequest (400) as Hume answers."""
    if not isinstance(body, dict):
        raise TtsValidationError([_issue([], "Input should be a valid dictionary", "model_attributes_type", body)])
    issues: list[Json] = []
    _utterances(body.get("utterances"), ["utterances"], issues)
    fmt = body.get("format")
    if fmt is not None:
        if not isinstance(fmt, dict) or fmt.get("type") not in FORMATS:
            tag = fmt.get("type") if isinstance(fmt, dict) else fmt
            issues.append(
                _issue(
                    ["format"],
                    f"Input tag '{tag}' found using 'type' does not match any of the expected tags: "
                    "'mp3', 'pcm', 'wav'",
                    "union_tag_invalid",
                    fmt,
                )
            )
    _number(body, "num_generations", 1, 5, [], issues)
    context = body.get("context")
    if isinstance(context, dict) and "utterances" in context:
        _utterances(context.get("utterances"), ["context", "utterances"], issues)
    version = body.get("version")
    if version is not None and str(version) not in ("1", "2"):
        issues.append(_issue(["version"], "Input should be '1' or '2'", "literal_error", version))
    if issues:
        raise TtsValidationError(issues)
    utterances: list[Json] = body["utterances"]
    if str(version) == "2" and any(u.get("voice") is None for u in utterances):
        raise TtsBadRequest("Octave 2 (version '2') requires a voice for every utterance.")
    if streaming and body.get("instant_mode"):
        if any(u.get("voice") is None for u in utterances):
            raise TtsBadRequest("Instant mode requires a voice to be specified for every utterance.")
        if (body.get("num_generations") or 1) != 1:
            raise TtsBadRequest("Instant mode requires num_generations to be 1.")
    return body


@dataclass
class SnippetAudio:
    id: str
    text: str
    utterance_index: int
    pcm: bytes
    timestamps: list[Json]


@dataclass
class Generation:
    id: str
    snippets: list[list[SnippetAudio]]

    @property
    def pcm(self) -> bytes:
        return b"".join(s.pcm for group in self.snippets for s in group)


_SENTENCE = re.compile(r"[^.!?]+[.!?]*\s*")


def _pieces(text: str, split: bool) -> list[str]:
    """split_utterances: long utterances become one snippet per sentence (Hume splits at natural pauses)."""
    if not split:
        return [text]
    parts = [m.group().strip() for m in _SENTENCE.finditer(text) if m.group().strip()]
    return parts or [text]


def _word_timestamps(text: str, seconds: float) -> list[Json]:
    words = text.split()
    if not words:
        return []
    slot = seconds * 1000 / len(words)
    return [
        {"text": w, "time": {"begin": int(i * slot), "end": int((i + 0.75) * slot)}, "type": "word"}
        for i, w in enumerate(words)
    ]


def synthesize(body: Json) -> list[Generation]:
    """Audio for every generation: duration from text length, speed and trailing silence."""
    split = body.get("split_utterances")
    split = True if split is None else bool(split)
    want_words = "word" in (body.get("include_timestamp_types") or [])
    generations = []
    for g in range(int(body.get("num_generations") or 1)):
        gen_id = str(uuid.uuid4())
        groups: list[list[SnippetAudio]] = []
        for index, utt in enumerate(body["utterances"]):
            voice = utt.get("voice") or {}
            voice_key = str(voice.get("id") or voice.get("name") or utt.get("description") or "")
            pitch = 110 + stable_hash("voice", voice_key, str(g)) % 140
            speed = float(utt.get("speed") or 1.0)
            pieces = _pieces(str(utt["text"]), split)
            group = []
            for p, piece in enumerate(pieces):
                seconds = max(0.3, len(piece) / CHARS_PER_SECOND / speed)
                if p == len(pieces) - 1:
                    seconds += float(utt.get("trailing_silence") or 0.0)
                pcm = audio.speech_pcm(piece, seconds, pitch)
                stamps = _word_timestamps(piece, seconds) if want_words else []
                group.append(SnippetAudio(str(uuid.uuid4()), piece, index, pcm, stamps))
            groups.append(group)
        generations.append(Generation(gen_id, groups))
    return generations


def _fmt(body: Json) -> str:
    fmt = body.get("format")
    return str(fmt["type"]) if isinstance(fmt, dict) else "mp3"  # Hume's default format


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _snippet_json(s: SnippetAudio, gen: Generation, fmt: str, strip: bool) -> Json:
    return {
        "id": s.id,
        "generation_id": gen.id,
        "text": s.text,
        "transcribed_text": s.text,
        "utterance_index": s.utterance_index,
        "timestamps": s.timestamps,
        "audio": _b64(audio.encode(fmt, s.pcm, header=not strip)),
    }


def _errors(exc: Exception) -> Response:
    if isinstance(exc, TtsValidationError):
        return json({"detail": exc.detail}, status_code=422)
    return json({"error": "Bad Request", "message": str(exc)}, status_code=400)


async def _parse(request: Request, streaming: bool) -> Json | Response:
    try:
        raw = await request.body()
        body: object = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        return json({"detail": [_issue([], "JSON decode error", "json_invalid")]}, status_code=422)
    try:
        valid = validate(body, streaming)
    except (TtsValidationError, TtsBadRequest) as exc:
        return _errors(exc)
    if isinstance(valid.get("context"), dict) and "generation_id" in valid["context"]:
        known: set[str] = emu(request).tts_generations
        if valid["context"]["generation_id"] not in known:
            return _errors(TtsBadRequest(f"Generation {valid['context']['generation_id']} not found."))
    return valid


def _remember(request: Request, generations: list[Generation]) -> None:
    emu(request).tts_generations.update(g.id for g in generations)


async def tts_json(request: Request) -> Response:
    body = await _parse(request, streaming=False)
    if isinstance(body, Response):
        return body
    fmt = _fmt(body)
    strip = bool(body.get("strip_headers"))
    generations = synthesize(body)
    _remember(request, generations)
    out = []
    for gen in generations:
        data = audio.encode(fmt, gen.pcm)
        out.append(
            {
                "generation_id": gen.id,
                "audio": _b64(data),
                "duration": round(audio.pcm_seconds(gen.pcm), 5),
                "file_size": len(data),
                "encoding": {"format": fmt, "sample_rate": audio.SAMPLE_RATE},
                "snippets": [[_snippet_json(s, gen, fmt, strip) for s in group] for group in gen.snippets],
            }
        )
    return json({"request_id": str(uuid.uuid4()), "generations": out})


async def tts_file(request: Request) -> Response:
    body = await _parse(request, streaming=False)
    if isinstance(body, Response):
        return body
    fmt = _fmt(body)
    generations = synthesize(body)
    _remember(request, generations)
    gen = generations[0]
    return Response(
        audio.encode(fmt, gen.pcm), media_type=audio.CONTENT_TYPES[fmt], headers={"x-generation-id": gen.id}
    )


def _chunks(pcm: bytes) -> Iterator[bytes]:
    size = int(CHUNK_SECONDS * audio.SAMPLE_RATE) * 2
    for start in range(0, max(len(pcm), 1), size):
        yield pcm[start : start + size]


async def tts_stream_file(request: Request) -> Response:
    body = await _parse(request, streaming=True)
    if isinstance(body, Response):
        return body
    fmt = _fmt(body)
    generations = synthesize(body)
    _remember(request, generations)
    pcm = generations[0].pcm

    async def stream() -> AsyncIterator[bytes]:
        if fmt == "mp3":
            data = audio.encode("mp3", pcm)
            frame = 384 * 40  # about a second of frames per chunk
            for start in range(0, len(data), frame):
                yield data[start : start + frame]
            return
        if fmt == "wav":
            # The header announces the full length, so the concatenated stream is one valid file.
            yield audio.wav_header(len(pcm))
        for chunk in _chunks(pcm):
            yield chunk

    return StreamingResponse(stream(), media_type=audio.CONTENT_TYPES[fmt])


async def tts_stream_json(request: Request) -> Response:
    body = await _parse(request, streaming=True)
    if isinstance(body, Response):
        return body
    fmt = _fmt(body)
    strip = bool(body.get("strip_headers"))
    generations = synthesize(body)
    _remember(request, generations)
    request_id = str(uuid.uuid4())

    async def stream() -> AsyncIterator[bytes]:
        for gen in generations:
            gen_pcm = gen.pcm
            chunk_index = 0
            for group in gen.snippets:
                for s in group:
                    pieces = list(_chunks(s.pcm))
                    for i, piece in enumerate(pieces):
                        if fmt == "wav":
                            if not strip:
                                data = audio.wav_file(piece)  # each chunk a file of its own
                            elif chunk_index == 0:
                                # strip_headers: one header announcing the whole generation, so
                                # the concatenated chunks form one valid file.
                                data = audio.wav_header(len(gen_pcm)) + piece
                            else:
                                data = piece
                        else:
                            data = audio.encode(fmt, piece)
                        last = i == len(pieces) - 1
                        line: Json = {
                            "type": "audio",
                            "audio": _b64(data),
                            "audio_format": fmt,
                            "chunk_index": chunk_index,
                            "generation_id": gen.id,
                            "is_last_chunk": last,
                            "request_id": request_id,
                            "snippet_id": s.id,
                            "text": s.text,
                            "transcribed_text": s.text,
                            "utterance_index": s.utterance_index,
                        }
                        if last:
                            line["snippet"] = _snippet_json(s, gen, fmt, strip)
                        yield orjson.dumps(line) + b"\n"
                        chunk_index += 1
                    for stamp in s.timestamps:
                        msg = {
                            "type": "timestamp",
                            "generation_id": gen.id,
                            "request_id": request_id,
                            "snippet_id": s.id,
                            "timestamp": stamp,
                        }
                        yield orjson.dumps(msg) + b"\n"

    return StreamingResponse(stream(), media_type="application/x-ndjson")


routes = [
    Route("/v0/tts", tts_json, methods=["POST"]),
    Route("/v0/tts/file", tts_file, methods=["POST"]),
    Route("/v0/tts/stream/json", tts_stream_json, methods=["POST"]),
    Route("/v0/tts/stream/file", tts_stream_file, methods=["POST"]),
]
