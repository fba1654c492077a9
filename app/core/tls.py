"""One TLS client context per process, shared by every outbound HTTP client: building one loads the whole
CA store (about 0.1 s of CPU), and the service has a client per Hume API plus two for guarded egress."""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def client_context() -> ssl.SSLContext:
    """The verifying context httpx would build for each client (the CA store, SSL_CERT_FILE/DIR honoured)."""
    return httpx.create_ssl_context()
