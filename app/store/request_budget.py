"""A request rate shared through Postgres by every process of the service (the generic cell rate algorithm,
GCRA): each request reserves the next slot of a named budget in one statement and is told how long to wait
for it, so any number of API and worker processes together stay under a provider's per-minute limit.

A budget of `per_minute` requests with a burst of `burst` paces requests `60 / (per_minute - burst)` seconds
apart after the burst: in any 60 s window at most `burst + (per_minute - burst) = per_minute` requests start,
whatever the window's alignment (a fixed or a sliding minute on the provider's side alike).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

# One round trip: the row is created on first use; the update serialises concurrent reservations on its lock.
_RESERVE = text("""
INSERT INTO request_budget AS b (name, tat) VALUES (:name, clock_timestamp() + make_interval(secs => :interval))
ON CONFLICT (name) DO UPDATE SET tat = GREATEST(b.tat, clock_timestamp()) + make_interval(secs => :interval)
RETURNING EXTRACT(EPOCH FROM (b.tat - clock_timestamp()))::float8
""")


@dataclass(frozen=True)
class Budget:
    name: str
    per_minute: int
    burst: int = 10

    def __post_init__(self) -> None:
        if not 1 <= self.burst < self.per_minute:
            raise ValueError(f"burst must be from 1 to {self.per_minute - 1}, got {self.burst}")

    @property
    def interval_s(self) -> float:
        return 60.0 / (self.per_minute - self.burst)

    def wait_for(self, ahead_s: float) -> float:
        """The wait before a request whose reservation put the budget's clock `ahead_s` past now."""
        return max(0.0, ahead_s - self.interval_s * self.burst)


async def reserve(sessionmaker: async_sessionmaker[AsyncSession], budget: Budget) -> float:
    """Reserve one request of `budget`; returns the seconds to wait before sending it (0 within the burst)."""
    async with sessionmaker.begin() as session:
        ahead = (await session.execute(_RESERVE, {"name": budget.name, "interval": budget.interval_s})).scalar_one()
    return budget.wait_for(float(ahead))
