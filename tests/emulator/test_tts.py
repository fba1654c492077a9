"""TTS endpoints through the SDK's ``client.tts`` methods."""

from __future__ import annotations

import base64
import io
import wave

import httpx
import pytest
from hume import AsyncHumeClient, HumeClient
from hume.core.api_error import ApiError
from hume.tts import (
    FormatMp3,
    FormatPcm,
    FormatWav,
    PostedContextWithGenerationId,
    PostedUtterance,
    PostedUtteranceVoiceWithName,
    SnippetAudioChunk,
    TimestampMessage,
)
from hume.tts.errors import UnprocessableEntityError

from app.emulator.testing import EmulatorServer

TEXT = "Hello there. This emulator speaks in tones, not words, but it takes the right time."


def _wav_seconds(data: bytes) -> float:
    with wave.open(io.BytesIO(data)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 48_000)
        return float(w.getnframes()) / float(w.getframerate())


def test_synthesize_json_returns_generations_with_real_audio(client: HumeClient) -> None:
    """POST /v0/tts: ReturnTts with base64 WAV per generation, snippets grouped per utterance,
    duration proportional to text and matching the audio."""
    result = client.tts.synthesize_json(
        utterances=[PostedUtterance(text=TEXT), PostedUtterance(text="Short.", speed=2.0, trailing_silence=1.0)],
        format=FormatWav(),
        num_generations=2,
    )
    assert result.request_id and len(result.generations) == 2
    gen = result.generations[0]
    data = base64.b64decode(gen.audio)
    assert gen.file_size == len(data) and gen.encoding.format == "wav" and gen.encoding.sample_rate == 48_000
    assert abs(_wav_seconds(data) - gen.duration) < 0.01
    assert 5 < gen.duration < 9  # ~83 characters at 15 chars/s, plus 1 s trailing silence
    assert [len(group) for group in gen.snippets] == [2, 1]  # split_utterances at sentences
    assert [s.utterance_index for group in gen.snippets for s in group] == [0, 0, 1]
    assert all(s.generation_id == gen.generation_id for group in gen.snippets for s in group)
    assert result.generations[1].generation_id != gen.generation_id
    # The generation id works as context for a follow-up request.
    follow = client.tts.synthesize_json(
        utterances=[PostedUtterance(text="And again.")],
        context=PostedContextWithGenerationId(generation_id=gen.generation_id),
        split_utterances=False,
    )
    assert follow.generations[0].encoding.format == "mp3"


def test_longer_text_gives_longer_audio(client: HumeClient) -> None:
    """Audio length grows with text length and shrinks with speed."""

    def seconds(text: str, speed: float = 1.0) -> float:
        data = b"".join(
            client.tts.synthesize_file(utterances=[PostedUtterance(text=text, speed=speed)], format=FormatWav())
        )
        return _wav_seconds(data)

    short, long = seconds("Hi there friend."), seconds("Hi there friend. " * 10)
    assert long > 8 * short
    assert seconds("Hi there friend. " * 10, speed=2.0) < long / 1.8


def test_synthesize_file_formats(client: HumeClient, emu: EmulatorServer) -> None:
    """POST /v0/tts/file returns a WAV that parses, raw PCM of the same length, and MP3 frames."""
    utt = [PostedUtterance(text=TEXT)]
    wav = b"".join(client.tts.synthesize_file(utterances=utt, format=FormatWav()))
    pcm = b"".join(client.tts.synthesize_file(utterances=utt, format=FormatPcm()))
    mp3 = b"".join(client.tts.synthesize_file(utterances=utt, format=FormatMp3()))
    assert wav[:4] == b"RIFF" and wav[8:12] == b"WAVE"
    assert len(pcm) == len(wav) - 44 and _wav_seconds(wav) == len(pcm) / 96_000
    assert mp3[:2] == b"\xff\xfb" and len(mp3) % 384 == 0
    assert abs(len(mp3) / 384 * 0.024 - _wav_seconds(wav)) < 0.05
    resp = httpx.post(
        f"{emu.base_url}/v0/tts/file",
        json={"utterances": [{"text": "x"}], "format": {"type": "wav"}},
        headers={"X-Hume-Api-Key": "k"},
    )
    assert resp.headers["content-type"] == "audio/wav"


def test_stream_file_concatenates_to_one_valid_file(client: HumeClient) -> None:
    """POST /v0/tts/stream/file streams chunks that form one WAV."""
    chunks = list(client.tts.synthesize_file_streaming(utterances=[PostedUtterance(text=TEXT * 2)], format=FormatWav()))
    data = b"".join(chunks)
    assert len(chunks) > 1
    assert _wav_seconds(data) > 5


def test_stream_json_lines_parse_into_sdk_types(client: HumeClient) -> None:
    """POST /v0/tts/stream/json: newline-delimited audio chunks (and word timestamps when asked)."""
    outputs = list(
        client.tts.synthesize_json_streaming(
            utterances=[PostedUtterance(text=TEXT, voice=PostedUtteranceVoiceWithName(name="Ava Song"))],
            format=FormatWav(),
            include_timestamp_types=["word"],
            strip_headers=True,
        )
    )
    audio = [o for o in outputs if isinstance(o, SnippetAudioChunk)]
    stamps = [o for o in outputs if isinstance(o, TimestampMessage)]
    assert audio and stamps
    assert [a.chunk_index for a in audio] == list(range(len(audio)))
    assert sum(a.is_last_chunk for a in audio) == 2  # one per snippet (two sentences)
    assert audio[-1].snippet is not None
    assert len({a.request_id for a in audio}) == 1
    # strip_headers: the concatenation of all chunks is one WAV file.
    whole = b"".join(base64.b64decode(a.audio) for a in audio)
    assert _wav_seconds(whole) > 4
    assert stamps[0].timestamp.type == "word" and stamps[0].timestamp.text == "Hello"


async def test_async_tts_and_validation_errors(async_client: AsyncHumeClient) -> None:
    """Invalid bodies answer 422 `detail` (UnprocessableEntityError) or 400, as Hume does."""
    with pytest.raises(UnprocessableEntityError) as err:
        await async_client.tts.synthesize_json(utterances=[PostedUtterance(text="x" * 5001)])
    assert err.value.status_code == 422
    assert err.value.body.detail[0].loc == ["body", "utterances", 0, "text"]
    with pytest.raises(UnprocessableEntityError):
        await async_client.tts.synthesize_json(utterances=[PostedUtterance(text="hi", speed=3.0)])
    with pytest.raises(UnprocessableEntityError):
        await async_client.tts.synthesize_json(utterances=[PostedUtterance(text="hi")], num_generations=6)
    with pytest.raises(ApiError) as bad:
        await async_client.tts.synthesize_json(utterances=[PostedUtterance(text="hi")], version="2")
    assert bad.value.status_code == 400 and "voice" in str(bad.value.body)
    ok = await async_client.tts.synthesize_json(utterances=[PostedUtterance(text="hi")], format=FormatPcm())
    assert ok.generations[0].encoding.format == "pcm"


def test_tts_accepts_bearer_tokens_but_not_garbage(emu: EmulatorServer) -> None:
    """TTS and EVI take `Authorization: Bearer <token from /oauth2-cc/token>`; batch and unknown tokens get 401."""
    resp = httpx.post(f"{emu.base_url}/oauth2-cc/token", data={"grant_type": "client_credentials"}, auth=("key", "s"))
    token = resp.json()["access_token"]
    good = HumeClient(base_url=emu.base_url, headers={"Authorization": f"Bearer {token}"})
    assert good.tts.synthesize_json(utterances=[PostedUtterance(text="hi")]).generations
    assert list(good.empathic_voice.chats.list_chats()) == []  # EVI takes tokens too
    with pytest.raises(ApiError) as batch_err:
        good.expression_measurement.batch.list_jobs()  # batch never did
    assert batch_err.value.status_code == 401
    bad = HumeClient(base_url=emu.base_url, headers={"Authorization": "Bearer forged"})
    with pytest.raises(ApiError) as err:
        bad.tts.synthesize_json(utterances=[PostedUtterance(text="hi")])
    assert err.value.status_code == 401
