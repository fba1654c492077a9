"""Which of Hume's two hosts a request reached: Hume serves its APIs from two origins, and a client that sends
a call to the wrong one gets a 404 there, so the emulator answers the same way.

- cloud, `https://api.cloud.hume.ai`: Expression Measurement v1 (and Audio Decisions). HUME-V1-FACTS §1,
  HUME.md's status block.
- voice, `https://api.hume.ai`: the voice-era APIs: tokens (`/oauth2-cc/token`), TTS, EVI and the batch API
  (`/v0/...`), all retired by 2026-11-13 but served here. HUME-V1-FACTS §1, HUME.md §1.1.

The emulator listens on one socket per host and tells them apart by the local address and port a request
arrived on. A socket it was not told about serves both hosts: that is a "compatible server at one URL"
(`--one-origin`). Control routes (`/_emulator/...`) and the sample media are on every socket.
"""

from __future__ import annotations

from typing import Any, Literal

from .expression_errors import error_body

Origin = Literal["cloud", "voice"]
CLOUD_PREFIXES = ("/v1/expression", "/v0/decisions", "/v0/audio-decisions")
SHARED_PREFIXES = ("/_emulator",)


WILDCARDS = ("0.0.0.0", "::", "")  # noqa: S104 (names of the any-address, not a bind)


def served_at(origins: dict[tuple[str, int], Origin], address: str, port: int) -> Origin | None:
    """The host served on the socket a connection arrived at: registered by its address, or by port for a
    socket bound to every address (a connection then names the address it really reached)."""
    found = origins.get((address, port))
    if found is None:
        found = next((origins[(w, port)] for w in WILDCARDS if (w, port) in origins), None)
    return found


def origin_of_path(path: str) -> Origin | None:
    """The host that serves `path`; None for paths on every host (control, sample media)."""
    if path.startswith(SHARED_PREFIXES):
        return None
    return "cloud" if path.startswith(CLOUD_PREFIXES) else "voice"


def wrong_host(served: Origin | None, path: str) -> dict[str, Any] | None:
    """The 404 body when `path` belongs to the other host than `served`, else None."""
    owner = origin_of_path(path)
    if served is None or owner is None or owner == served:
        return None
    if served == "cloud":
        # api.cloud.hume.ai answers in v1's error shape (HUME-V1-FACTS §5: not_found is a 404 code).
        return error_body("not_found", f"No such endpoint on this host: {path}")
    # api.hume.ai's own 404 body was never documented; a gateway-style message.
    return {"message": f"Not Found: {path} is not served on this host"}
