"""Process-wide tuning for the long-running commands (`serve`, `worker`), applied once they are up."""

from __future__ import annotations

import gc


def settle() -> None:
    """Move everything alive after start-up (modules, SQLAlchemy's tables and caches, the SDKs, metric
    families: hundreds of thousands of objects that live as long as the process) out of the cyclic
    garbage collector's generations. Each full collection walked all of them again: under webhook load
    those pauses took ~10% of the server's CPU (py-spy showed them charged to whatever line allocated).
    Garbage made later is collected as before. Only for a process that owns its whole life: tests start
    many services in one process, and frozen objects are never collected."""
    gc.collect()
    gc.freeze()
