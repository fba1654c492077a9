"""Faults injected on demand so the service's reliability code can be exercised.

Rules come from ``POST /_emulator/faults``; URL markers (``#fail``, ``#drop_callback`` ...)
cover per-job faults and live in ``media.py``/``jobs.py``.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field
from typing import Any

Json = dict[str, Any]


class FaultSpecError(ValueError):
    """A fault specification the control endpoint cannot use."""


@dataclass
class FaultRule:
    """Answer matching requests with ``status`` (and/or after ``delay_s``), ``times`` times."""

    path: str | None = None  # exact path, route template, or prefix ending in "*"; None: every Hume path
    method: str | None = None
    status: int | None = None
    times: int | None = None  # None: until reset
    retry_after: float | None = None
    delay_s: float = 0.0
    body: Any = None

    def matches(self, method: str, path: str, template: str) -> bool:
        if self.method is not None and self.method.upper() != method:
            return False
        if self.path is None:
            return True
        if self.path.endswith("*"):
            return path.startswith(self.path[:-1])
        return self.path in (path, template)


@dataclass
class Faults:
    rules: list[FaultRule] = field(default_factory=list)
    sunset: bool = False
    sunset_status: int = 404
    fail_jobs: int = 0  # the next N jobs end FAILED
    drop_callbacks: int = 0  # the next N jobs send no callback
    duplicate_callbacks: int = 0  # the next N jobs send their callback twice
    # API keys whose organization is not enabled for v1: 403 `forbidden` (auth.py), until reset.
    v1_not_enabled: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def take(self, method: str, path: str, template: str) -> FaultRule | None:
        """The first matching rule, consuming one of its ``times``."""
        with self.lock:
            for rule in self.rules:
                if rule.matches(method, path, template):
                    if rule.times is not None:
                        rule.times -= 1
                        if rule.times <= 0:
                            self.rules.remove(rule)
                    return rule
        return None

    def v1_enabled(self, api_key: str) -> bool:
        with self.lock:
            return api_key not in self.v1_not_enabled

    def take_counter(self, name: str) -> bool:
        """Consume one unit of a per-job counter (``fail_jobs`` ...)."""
        with self.lock:
            value = int(getattr(self, name))
            if value > 0:
                setattr(self, name, value - 1)
                return True
            return False

    def apply(self, spec: Json) -> None:
        """Update from a control request body (see README for the accepted keys)."""
        if not isinstance(spec, dict):
            raise FaultSpecError("fault spec must be a JSON object")
        with self.lock:
            if spec.get("clear"):
                self.rules.clear()
                self.sunset = False
                self.fail_jobs = self.drop_callbacks = self.duplicate_callbacks = 0
                self.v1_not_enabled.clear()
            if "sunset" in spec:
                self.sunset = bool(spec["sunset"])
                if spec.get("status") is not None:
                    self.sunset_status = _int(spec["status"], "status")
            if "v1_not_enabled" in spec:
                keys = spec["v1_not_enabled"]
                if not isinstance(keys, list) or not all(isinstance(k, str) and k for k in keys):
                    raise FaultSpecError("v1_not_enabled must be a list of API keys")
                self.v1_not_enabled.update(keys)
            for counter in ("fail_jobs", "drop_callbacks", "duplicate_callbacks"):
                if counter in spec:
                    setattr(self, counter, _int(spec[counter], counter))
            if "sunset" not in spec and ("status" in spec or "delay_s" in spec):
                status = spec.get("status")
                rule = FaultRule(
                    path=_opt_str(spec.get("path"), "path"),
                    method=_opt_str(spec.get("method"), "method"),
                    status=_int(status, "status") if status is not None else None,
                    times=_int(spec["times"], "times") if spec.get("times") is not None else None,
                    retry_after=float(spec["retry_after"]) if spec.get("retry_after") is not None else None,
                    delay_s=float(spec.get("delay_s") or 0.0),
                    body=spec.get("body"),
                )
                if rule.status is not None and not 100 <= rule.status <= 599:
                    raise FaultSpecError("status must be an HTTP status code")
                self.rules.append(rule)

    def snapshot(self) -> Json:
        with self.lock:
            return {
                "rules": [asdict(r) for r in self.rules],
                "sunset": self.sunset,
                "sunset_status": self.sunset_status,
                "fail_jobs": self.fail_jobs,
                "drop_callbacks": self.drop_callbacks,
                "duplicate_callbacks": self.duplicate_callbacks,
                "v1_not_enabled": sorted(self.v1_not_enabled),
            }


def _int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise FaultSpecError(f"{name} must be an integer")
    try:
        return int(value)
    except ValueError as exc:
        raise FaultSpecError(f"{name} must be an integer") from exc


def _opt_str(value: object, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise FaultSpecError(f"{name} must be a string")
    return value
