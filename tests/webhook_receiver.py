"""A webhook receiver on a real socket for tests and benchmarks: it verifies every delivery with the
`standardwebhooks` library itself (not our code) against each secret it is told, and records it.

Its answers are scripted: `statuses` are used one per request (then 200), `delays_s` likewise.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes
    verified_by: list[str]
    """The secrets (of those the receiver was told) whose signature matched."""

    @property
    def payload(self) -> Any:
        return json.loads(self.body)

    @property
    def msg_id(self) -> str:
        return self.headers["webhook-id"]


@dataclass
class Receiver:
    secrets: list[str] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    delays_s: list[float] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                with receiver.lock:
                    verified = []
                    for secret in receiver.secrets:
                        try:
                            Webhook(secret).verify(body, headers)
                            verified.append(secret)
                        except WebhookVerificationError:
                            pass
                    receiver.deliveries.append(Delivery(headers, body, verified))
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    delay = receiver.delays_s.pop(0) if receiver.delays_s else 0.0
                if delay:
                    time.sleep(delay)
                answer = b"ok" if status < 300 else b"x" * 2000
                try:
                    self.send_response(status)
                    self.send_header("content-length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except OSError:
                    pass  # the sender gave up waiting (a timeout test)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, count: int, timeout: float = 20.0) -> list[Delivery]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.deliveries) >= count:
                    return list(self.deliveries)
            time.sleep(0.02)
        raise AssertionError(f"expected {count} deliveries, got {len(self.deliveries)}")
