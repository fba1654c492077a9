"""What the emulator pretends a source contains: kind, length, inner files, URL markers.

Nothing is downloaded. A URL's extension decides the media kind and its fragment or query can
carry markers (``#duration=3600&fail``) that steer the simulated outcome.
"""

from __future__ import annotations

import hashlib
import io
import wave
from dataclasses import dataclass, field, replace
from urllib.parse import parse_qsl, urlsplit

VIDEO_EXT = (".mp4", ".mov", ".webm", ".avi", ".mkv", ".m4v")
AUDIO_EXT = (".mp3", ".wav", ".m4a", ".flac", ".ogg", ".aac")
IMAGE_EXT = (".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp")
ARCHIVE_EXT = (".zip", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".tar")
TEXT_EXT = (".txt",)

# Markers the emulator understands; anything else in a fragment or query is ignored.
KNOWN_MARKERS = frozenset(
    {
        "duration", "fail", "source_error", "file_error", "drop_callback", "duplicate_callback",
        "slow", "files", "faces", "speakers", "no_audio", "kind", "group",
    }
)  # fmt: skip


def stable_hash(*parts: str) -> int:
    """A 64-bit hash that is stable across processes (``hash()`` is salted)."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def parse_markers(url: str) -> dict[str, str]:
    """Markers from the URL fragment and query, e.g. ``#duration=3600&fail`` -> {duration: 3600, fail: ""}."""
    parts = urlsplit(url)
    markers: dict[str, str] = {}
    for chunk in (parts.query, parts.fragment):
        if not chunk:
            continue
        for key, value in parse_qsl(chunk.replace(",", "&"), keep_blank_values=True):
            if key in KNOWN_MARKERS:
                markers[key] = value
    return markers


def kind_of(name: str) -> str:
    """Media kind from a file name or URL path: video, audio, image, archive or text."""
    lower = name.lower()
    for kind, exts in (
        ("archive", ARCHIVE_EXT),
        ("video", VIDEO_EXT),
        ("audio", AUDIO_EXT),
        ("image", IMAGE_EXT),
        ("text", TEXT_EXT),
    ):
        if lower.endswith(exts):
            return kind
    # Hume sniffed content; an extension-less URL is most often a video in practice.
    return "video"


def file_type_of(kind: str, has_audio: bool) -> str:
    """Hume's undocumented ``file_type`` field; only ``video_no_audio`` was ever observed."""
    if kind == "video":
        return "video" if has_audio else "video_no_audio"
    return kind


@dataclass(frozen=True)
class MediaFile:
    """One file the models run on (a URL's media, a file inside an archive, an upload)."""

    name: str  # what Hume reports as ``file``
    kind: str  # video | audio | image | text
    duration_s: float  # 0 for images and text
    has_audio: bool
    seed_key: str  # what predictions are seeded from
    native_fps: float = 29.97
    num_faces: int = 1
    num_speakers: int = 1
    faces_together: bool = False  # all faces in every frame (``#group``)
    text: str | None = None  # raw text sources only
    error: str | None = None  # per-file failure (results.errors)

    @property
    def file_type(self) -> str:
        return file_type_of(self.kind, self.has_audio)


@dataclass(frozen=True)
class MediaSource:
    """One element of the predictions array: a URL, an uploaded file, or the raw text."""

    source: dict[str, object]
    files: tuple[MediaFile, ...]
    markers: dict[str, str] = field(default_factory=dict)
    error: str | None = None  # source-level failure

    def has(self, marker: str) -> bool:
        return marker in self.markers


def _float_marker(markers: dict[str, str], key: str) -> float | None:
    try:
        return float(markers[key]) if key in markers else None
    except ValueError:
        return None


def _int_marker(markers: dict[str, str], key: str) -> int | None:
    value = _float_marker(markers, key)
    return int(value) if value is not None else None


def _basename(url: str) -> str:
    path = urlsplit(url).path.rstrip("/")
    return path.rsplit("/", 1)[-1] or "media"


def _media_file(
    name: str,
    kind: str,
    seed_key: str,
    markers: dict[str, str],
    min_s: float,
    max_s: float,
    duration_s: float | None = None,
) -> MediaFile:
    h = stable_hash("media", seed_key, name)
    if kind == "image":
        duration = 0.0
    elif duration_s is not None:
        duration = duration_s
    else:
        declared = _float_marker(markers, "duration")
        duration = declared if declared is not None else min_s + (h % 10_000) / 10_000 * (max_s - min_s)
    duration = max(0.0, min(duration, 4 * 3600.0))
    # 25 fps is left out: stepping whole frames would give 3.125 predictions/s instead of ~3.
    fps = (23.976, 29.97, 29.97, 30.0)[(h >> 16) % 4]
    faces = _int_marker(markers, "faces") or 1 + (h >> 20) % 3
    speakers = _int_marker(markers, "speakers") or 1 + (h >> 24) % 2
    has_audio = kind in ("video", "audio") and not (kind == "video" and "no_audio" in markers)
    return MediaFile(
        name=name,
        kind=kind,
        duration_s=round(duration, 3),
        has_audio=has_audio,
        seed_key=f"{seed_key}\x1f{name}",
        native_fps=fps,
        num_faces=max(1, min(faces, 8)),
        num_speakers=max(1, min(speakers, 8)),
        faces_together="group" in markers,
    )


_ARCHIVE_MEMBER_EXT = (".jpg", ".png", ".mp4", ".wav", ".mp3", ".jpg")


def archive_members(
    archive_name: str, seed_key: str, markers: dict[str, str], min_s: float, max_s: float
) -> tuple[MediaFile, ...]:
    """A deterministic listing for an archive: 2-6 files (or ``#files=N``) of mixed kinds."""
    h = stable_hash("archive", seed_key)
    count = _int_marker(markers, "files") or 2 + h % 5
    count = max(1, min(count, 500))
    stem = archive_name.split(".", 1)[0] or "archive"
    members = []
    for i in range(count):
        ext = _ARCHIVE_MEMBER_EXT[(h >> (i % 48)) % len(_ARCHIVE_MEMBER_EXT)]
        name = f"{stem}/{i + 1:03d}{ext}"
        members.append(_media_file(name, kind_of(name), seed_key, markers, min_s, max_s))
    return tuple(members)


def with_file_error(files: tuple[MediaFile, ...], seed_key: str) -> tuple[MediaFile, ...]:
    """Mark one file as failed (``#file_error``): the last one, so others still succeed."""
    if not files:
        return files
    last = files[-1]
    failed = replace(last, error=f"Could not decode media file '{last.name}': unsupported codec or corrupt data.")
    return (*files[:-1], failed)


def url_source(url: str, min_s: float, max_s: float) -> MediaSource:
    """Model a URL: its kind from the extension (or ``#kind=``), markers from fragment/query."""
    markers = parse_markers(url)
    name = _basename(url)
    kind = markers.get("kind") or kind_of(name)
    seed_key = url
    if kind == "archive":
        files = archive_members(name, seed_key, markers, min_s, max_s)
    else:
        files = (_media_file(name, kind, seed_key, markers, min_s, max_s),)
    if "file_error" in markers:
        files = with_file_error(files, seed_key)
    error = None
    if "source_error" in markers:
        error = f"Failed to download media from URL {url}: server responded with 404 Not Found."
        files = ()
    return MediaSource(source={"type": "url", "url": url}, files=files, markers=markers, error=error)


def wav_duration(data: bytes) -> float | None:
    """Real length of an uploaded WAV, so uploads of real audio get matching timelines."""
    try:
        with wave.open(io.BytesIO(data)) as w:
            rate = w.getframerate()
            return w.getnframes() / rate if rate else None
    except (wave.Error, EOFError):
        return None


def file_source(filename: str, content_type: str | None, data: bytes, min_s: float, max_s: float) -> MediaSource:
    """Model an uploaded file. The md5 seeds predictions, so identical bytes predict identically."""
    md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
    markers = parse_markers(filename)
    clean_name = filename.split("#", 1)[0]
    kind = kind_of(clean_name)
    known_ext = clean_name.lower().endswith(VIDEO_EXT + AUDIO_EXT + IMAGE_EXT + ARCHIVE_EXT + TEXT_EXT)
    if not known_ext and content_type:
        # No telling extension: trust the part's media type (Hume sniffed content).
        major = content_type.split("/", 1)[0].lower()
        kind = {"audio": "audio", "image": "image", "video": "video"}.get(major, kind)
    duration = wav_duration(data) if clean_name.lower().endswith(".wav") else None
    if kind == "archive":
        files = archive_members(clean_name, md5, markers, min_s, max_s)
    else:
        files = (_media_file(clean_name, kind, md5, markers, min_s, max_s, duration),)
    source: dict[str, object] = {
        "type": "file",
        "filename": clean_name,
        "content_type": content_type,
        "md5sum": md5,
    }
    return MediaSource(source=source, files=files, markers=markers)


def text_source(texts: list[str]) -> MediaSource:
    """All raw ``text`` strings form one source; each string is one predicted "file"."""
    files = tuple(
        MediaFile(
            name=f"text_{i}.txt",
            kind="text",
            duration_s=0.0,
            has_audio=False,
            seed_key=f"text\x1f{t}",
            text=t,
        )
        for i, t in enumerate(texts)
    )
    return MediaSource(source={"type": "text"}, files=files)
