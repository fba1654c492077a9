"""Hume's batch callback body: `{job_id, status, predictions}` on success, an error message on failure.

The failure field's name is undocumented (HUME.md 2.1, open question 1), so several are accepted.
Predictions stay raw bytes; they are decoded only if Hume's API confirms the job completed.
"""

from __future__ import annotations

import msgspec

# msgspec cannot decode `Raw | None`; a Raw holding `null` stands for absent.
NULL = msgspec.Raw(b"null")


class CallbackFormatError(ValueError):
    """The callback body is not a Hume batch callback."""


class BatchCallback(msgspec.Struct):
    job_id: str
    status: str | None = None
    predictions: msgspec.Raw = NULL
    message: str | None = None
    error: str | None = None


class _Head(msgspec.Struct):
    job_id: str
    status: str | None = None


_HEAD = msgspec.json.Decoder(_Head)
_FULL = msgspec.json.Decoder(BatchCallback)


def head(body: bytes) -> tuple[str, str]:
    """(hume job id, status) without building the predictions."""
    try:
        parsed = _HEAD.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:  # bad UTF-8; nested too deep
        raise CallbackFormatError(f"not a Hume batch callback: {exc}") from None
    if not parsed.job_id:
        raise CallbackFormatError("job_id is empty")
    status = (parsed.status or "COMPLETED").upper()
    return parsed.job_id, status


def full(body: bytes) -> BatchCallback:
    try:
        return _FULL.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:  # bad UTF-8; nested too deep
        raise CallbackFormatError(f"not a Hume batch callback: {exc}") from None


def encode_poll(job_id: str, status: str) -> bytes:
    """The body we store when a poll, not a callback, told us a job ended (no predictions: fetched later)."""
    return msgspec.json.encode({"job_id": job_id, "status": status})
