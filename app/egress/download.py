"""Stream a media URL into a temporary file: guarded hops, bounded size and time, never the body in memory.

Redirects are followed here, not by httpx, so that every hop goes through the guard and is pinned to its
checked address. The size limit counts the bytes actually received (after content decoding, so a gzip bomb
is bounded too); a Content-Length above the limit refuses early, but a small or absent one changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

import httpx

from app.egress.errors import FetchFailed, MediaTooLarge
from app.egress.pinned import PinnedClient
from app.egress.url_guard import media_url, unparsable

_REDIRECTS = {301, 302, 303, 307, 308}
_FLUSH_BYTES = 1 << 20  # file writes go to a thread in batches this big, off the event loop


@dataclass(frozen=True)
class FetchLimits:
    max_bytes: int = 2 << 30
    """MEDIA_MAX_BYTES: the largest body accepted, enforced while streaming."""
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 30.0
    """The longest silence between two reads of the body."""
    total_timeout_s: float = 900.0
    """The whole download, redirects included."""
    max_redirects: int = 5

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> FetchLimits:
        """MEDIA_MAX_BYTES, MEDIA_FETCH_CONNECT_TIMEOUT_S, MEDIA_FETCH_READ_TIMEOUT_S, MEDIA_FETCH_TIMEOUT_S."""
        defaults = cls()

        def number(key: str, default: float) -> float:
            raw = environ.get(key, "").strip()
            try:
                value = float(raw) if raw else default
            except ValueError:
                raise ValueError(f"{key} must be a number, got {raw!r}") from None
            if value <= 0:
                raise ValueError(f"{key} must be positive, got {raw!r}")
            return value

        return cls(
            max_bytes=int(number("MEDIA_MAX_BYTES", defaults.max_bytes)),
            connect_timeout_s=number("MEDIA_FETCH_CONNECT_TIMEOUT_S", defaults.connect_timeout_s),
            read_timeout_s=number("MEDIA_FETCH_READ_TIMEOUT_S", defaults.read_timeout_s),
            total_timeout_s=number("MEDIA_FETCH_TIMEOUT_S", defaults.total_timeout_s),
        )

    def client_timeout(self) -> httpx.Timeout:
        return httpx.Timeout(
            connect=self.connect_timeout_s, read=self.read_timeout_s, write=self.read_timeout_s, pool=None
        )


@dataclass(frozen=True)
class DownloadedMedia:
    path: Path
    size: int
    content_type: str | None
    url: str
    """The final URL, after redirects."""


def _display(url: httpx.URL) -> str:
    return str(url.copy_with(query=None, fragment=None))[:300]


async def _stream_body(response: httpx.Response, out: IO[bytes], url: httpx.URL, limit: int) -> int:
    declared = response.headers.get("content-length", "")
    # ASCII digits only: "²".isdigit() is true and int("²") raises (a stranger's server chooses this header).
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise MediaTooLarge(_display(url), limit)
    size = 0
    pending: list[bytes] = []
    pending_size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise MediaTooLarge(_display(url), limit)
        pending.append(chunk)
        pending_size += len(chunk)
        if pending_size >= _FLUSH_BYTES:
            await asyncio.to_thread(out.write, b"".join(pending))
            pending, pending_size = [], 0
    if pending:
        await asyncio.to_thread(out.write, b"".join(pending))
    await asyncio.to_thread(out.flush)
    return size


async def _fetch(client: PinnedClient, url: str, out: IO[bytes], limits: FetchLimits) -> DownloadedMedia:
    current = media_url(url)  # BlockedUrl naming the rule; each hop is checked again by client.open
    for _hop in range(limits.max_redirects + 1):
        async with client.open("GET", current, timeouts=limits.client_timeout()) as (response, _target):
            if response.status_code in _REDIRECTS and "location" in response.headers:
                location = response.headers["location"]
                try:
                    urlsplit(location)  # its errors name what is wrong (brackets, NFKC) where httpx's may not
                    next_url = current.join(location)
                except (httpx.InvalidURL, ValueError) as exc:  # IDNA failures are UnicodeError, a ValueError
                    raise FetchFailed(
                        f"{_display(current)} redirected to an invalid URL: {unparsable(exc).message}",
                        kind="status",
                        status=response.status_code,
                    ) from None
                current = next_url
                continue
            if response.status_code >= 400 or response.status_code in _REDIRECTS:
                raise FetchFailed(
                    f"{_display(current)} answered HTTP {response.status_code} {response.reason_phrase}".rstrip(),
                    kind="status",
                    status=response.status_code,
                )
            size = await _stream_body(response, out, current, limits.max_bytes)
            return DownloadedMedia(
                path=Path(out.name), size=size, content_type=response.headers.get("content-type"), url=str(current)
            )
    raise FetchFailed(f"{_display(media_url(url))} redirected more than {limits.max_redirects} times", kind="redirects")


def _temporary_file(directory: str | None) -> IO[bytes]:
    # delete=False: the file outlives its handle (decoders reopen it by path) until `download` unlinks it.
    return tempfile.NamedTemporaryFile(prefix="media-", dir=directory, delete=False)


@contextlib.asynccontextmanager
async def download(
    client: PinnedClient, url: str, limits: FetchLimits, *, directory: str | None = None
) -> AsyncIterator[DownloadedMedia]:
    """Download `url` into a temporary file that exists for the duration of the `async with` block.

    Raises BlockedUrl, MediaTooLarge or FetchFailed; the partial file is removed in every case.
    """
    out = await asyncio.to_thread(_temporary_file, directory)
    try:
        try:
            async with asyncio.timeout(limits.total_timeout_s):
                media = await _fetch(client, url, out, limits)
        except TimeoutError:
            raise FetchFailed(f"{url[:300]} took longer than {limits.total_timeout_s:g} s", kind="timeout") from None
        finally:
            await asyncio.to_thread(out.close)
        yield media
    finally:
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(os.unlink, out.name)
