"""Hume's realtime limits as the relay applies them before forwarding (HUME-V1-FACTS §4)."""

from __future__ import annotations

from app.hume.realtime_client import AUDIO_FRAME_MAX_BYTES, RateGate, frame_problem, realtime_url

SECOND = 32_000  # bytes of 16 kHz s16le mono


def test_audio_may_run_one_second_ahead_of_the_clock_and_no_more() -> None:
    gate = RateGate("audio")
    assert gate.take(b"\x00" * SECOND, now=100.0)  # 1 s ahead at the first frame: the slack
    assert not gate.take(b"\x00" * 2, now=100.0), "anything more at once is too fast"
    assert gate.take(b"\x00" * (SECOND // 2), now=100.5)
    assert not gate.take(b"\x00" * (SECOND // 2), now=100.9)
    assert gate.take(b"\x00" * (SECOND // 2), now=101.0)
    # Refused frames spend nothing: after a pause, 10 s of audio goes through in one frame.
    assert gate.take(b"\x00" * AUDIO_FRAME_MAX_BYTES, now=111.0)


def test_video_takes_three_frames_a_second() -> None:
    gate = RateGate("video")
    frames = [gate.take(b"jpeg", now=50.0) for _ in range(4)]
    assert frames == [True, True, True, False]
    assert gate.take(b"jpeg", now=50.34) and not gate.take(b"jpeg", now=50.34)


def test_frames_hume_would_refuse() -> None:
    assert frame_problem("audio", b"") is not None
    assert frame_problem("audio", b"\x00" * 3) is not None
    assert frame_problem("audio", b"\x00" * (AUDIO_FRAME_MAX_BYTES + 2)) is not None
    assert frame_problem("audio", b"\x00" * AUDIO_FRAME_MAX_BYTES) is None
    assert frame_problem("video", b"") is not None and frame_problem("video", b"\xff\xd8") is None


def test_the_realtime_url_is_on_the_cloud_host_as_a_websocket() -> None:
    assert realtime_url("https://api.cloud.hume.ai", "audio") == "wss://api.cloud.hume.ai/v1/expression/audio/realtime"
    assert realtime_url("http://127.0.0.1:9/", "video") == "ws://127.0.0.1:9/v1/expression/video/realtime"
