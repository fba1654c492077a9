"""A WHERE clause made of optional conditions with bind parameters: the readers' filters (a prediction page's,
the emotion ranking's, a decision question's) add each condition only when its value is given."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson


@dataclass
class Where:
    clauses: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)

    def add(self, clause: str, name: str, value: Any) -> None:
        """`clause` with its parameter `:name` bound to `value`, unless the value is None (no filter)."""
        if value is not None:
            self.clauses.append(clause)
            self.params[name] = value

    def jobs(
        self, job: str, *, since: datetime | None, until: datetime | None, metadata: dict[str, Any] | None
    ) -> bool:
        """The job filters every cross-job read takes, on the job table aliased `job`: created at or after
        `since`, before `until`, metadata containing `metadata` (an empty object filters nothing). Whether any
        was added (a caller joins the job table only then)."""
        before = len(self.clauses)
        self.add(f"{job}.created_at >= :since", "since", since)
        self.add(f"{job}.created_at < :until", "until", until)
        if metadata:
            self.add(f"{job}.metadata @> CAST(:meta AS jsonb)", "meta", orjson.dumps(metadata).decode())
        return len(self.clauses) > before

    def sql(self) -> str:
        return " AND ".join(self.clauses)
