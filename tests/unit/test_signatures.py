"""EVI webhook verification: the pure function over raw bytes, headers, keys and an injected clock."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from app.emulator.webhooks import signed_headers as emulator_signed_headers
from app.hume.signatures import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookVerificationError,
    sign,
    signed_headers,
    verify,
)

KEY = "current-signing-key"
OLD_KEY = "previous-signing-key"
NOW = 1_800_000_000.0
BODY = b'{"event_name":"chat_started","chat_id":"c1","chat_group_id":"g1","start_time":1}'


def _verify(body: bytes, headers: dict[str, str], *, keys: tuple[str, ...] = (KEY,), now: float = NOW) -> int:
    return verify(body, headers, keys=keys, now=now, tolerance_s=300)


def test_sign_is_hmac_sha256_hex_of_body_dot_timestamp() -> None:
    """The signed message is the body, a dot, then the timestamp string (HUME.md 2.2), as lowercase hex."""
    expected = hmac.new(KEY.encode(), BODY + b".1800000000", hashlib.sha256).hexdigest()
    assert sign(BODY, "1800000000", KEY) == expected
    assert expected == expected.lower()


def test_valid_delivery_returns_its_timestamp() -> None:
    """A correctly signed, fresh delivery passes and yields the timestamp it was sent at."""
    assert _verify(BODY, signed_headers(BODY, KEY, now=NOW - 10)) == int(NOW - 10)


def test_emulator_deliveries_verify() -> None:
    """What the emulator (and so Hume, as documented) sends verifies with the same key."""
    assert _verify(BODY, emulator_signed_headers(BODY, KEY, now=NOW)) == int(NOW)


def test_headers_are_matched_case_insensitively_and_signature_case_does_not_matter() -> None:
    """Proxies lowercase header names; an uppercase hex digest is the same digest."""
    headers = signed_headers(BODY, KEY, now=NOW)
    lowered = {k.lower(): v for k, v in headers.items()}
    lowered[SIGNATURE_HEADER.lower()] = lowered[SIGNATURE_HEADER.lower()].upper()
    assert _verify(BODY, lowered) == int(NOW)


def test_tampered_body_is_refused() -> None:
    """One changed byte in the body breaks the signature."""
    headers = signed_headers(BODY, KEY, now=NOW)
    with pytest.raises(WebhookVerificationError, match="does not match"):
        _verify(BODY.replace(b"c1", b"c2"), headers)


def test_reserialized_body_is_refused() -> None:
    """Verification is over the exact bytes: the same JSON with other whitespace does not pass."""
    headers = signed_headers(BODY, KEY, now=NOW)
    with pytest.raises(WebhookVerificationError):
        _verify(BODY.replace(b",", b", "), headers)


def test_tampered_timestamp_is_refused() -> None:
    """The timestamp is part of the signed message: moving it invalidates the signature."""
    headers = signed_headers(BODY, KEY, now=NOW)
    headers[TIMESTAMP_HEADER] = str(int(NOW) - 1)
    with pytest.raises(WebhookVerificationError, match="does not match"):
        _verify(BODY, headers)


def test_wrong_key_is_refused() -> None:
    """A delivery signed with a key we do not hold is refused."""
    with pytest.raises(WebhookVerificationError, match="does not match"):
        _verify(BODY, signed_headers(BODY, "someone-else", now=NOW))


@pytest.mark.parametrize("offset", [-300, 0, 300])
def test_timestamps_within_tolerance_pass(offset: int) -> None:
    """Exactly at the tolerance, in either direction, still passes (clock skew)."""
    assert _verify(BODY, signed_headers(BODY, KEY, now=NOW + offset)) == int(NOW + offset)


@pytest.mark.parametrize(("offset", "reason"), [(-301, "too old"), (301, "in the future"), (-86400, "too old")])
def test_stale_and_future_timestamps_are_refused(offset: int, reason: str) -> None:
    """Beyond the tolerance a correctly signed delivery is refused: captured ones cannot be replayed."""
    with pytest.raises(WebhookVerificationError, match=reason):
        _verify(BODY, signed_headers(BODY, KEY, now=NOW + offset))


def test_previous_key_is_accepted_during_rotation() -> None:
    """Deliveries signed with the previous key still pass while both keys are configured."""
    headers = signed_headers(BODY, OLD_KEY, now=NOW)
    assert _verify(BODY, headers, keys=(KEY, OLD_KEY)) == int(NOW)
    with pytest.raises(WebhookVerificationError):
        _verify(BODY, headers, keys=(KEY,))


def test_no_key_configured_refuses_everything() -> None:
    """Without a key nothing can be verified, so nothing is accepted (not even an empty-key HMAC)."""
    headers = signed_headers(BODY, "", now=NOW)
    with pytest.raises(WebhookVerificationError, match="no webhook signing key"):
        _verify(BODY, headers, keys=("",))


@pytest.mark.parametrize("missing", [SIGNATURE_HEADER, TIMESTAMP_HEADER])
def test_missing_headers_are_refused(missing: str) -> None:
    """Either header missing means the delivery is unsigned."""
    headers = signed_headers(BODY, KEY, now=NOW)
    del headers[missing]
    with pytest.raises(WebhookVerificationError, match="missing"):
        _verify(BODY, headers)


@pytest.mark.parametrize(
    ("signature", "timestamp"),
    [
        ("not-hex", None),
        ("ab" * 31, None),  # too short
        ("ab" * 33, None),  # too long
        ("\u00e9" * 64, None),  # non-ASCII: compare_digest would raise TypeError on it
        ("sha256=" + "ab" * 32, None),
        (None, "1.8e9"),
        (None, "-1800000000"),
        (None, "\uff11\uff18" + "\uff10" * 8),  # full-width digits: int() accepts them, we do not
        (None, "9" * 40),  # an int this large must not reach the clock arithmetic
        (None, ""),
    ],
)
def test_malformed_headers_are_refused_with_the_one_error(signature: str | None, timestamp: str | None) -> None:
    """Garbage in either header is a verification failure, never another exception (no 500s)."""
    headers = signed_headers(BODY, KEY, now=NOW)
    if signature is not None:
        headers[SIGNATURE_HEADER] = signature
    if timestamp is not None:
        headers[TIMESTAMP_HEADER] = timestamp
    with pytest.raises(WebhookVerificationError):
        _verify(BODY, headers)


def test_duplicated_header_is_refused() -> None:
    """Two signature headers (as a list of pairs folded into a mapping) are ambiguous and refused."""

    class TwoSignatures(dict[str, str]):
        def items(self) -> list[tuple[str, str]]:  # type: ignore[override]
            return [*super().items(), (SIGNATURE_HEADER.lower(), "ab" * 32)]

    with pytest.raises(WebhookVerificationError, match="more than one"):
        _verify(BODY, TwoSignatures(signed_headers(BODY, KEY, now=NOW)))


def test_non_utf8_body_is_verified_as_bytes() -> None:
    """A body that is not UTF-8 is verified over its bytes: valid when signed, refused when not."""
    body = b"\xff\xfe\x00garbage\x80"
    assert _verify(body, signed_headers(body, KEY, now=NOW)) == int(NOW)
    with pytest.raises(WebhookVerificationError):
        _verify(body, signed_headers(b"other", KEY, now=NOW))
