"""Process-wide tuning for the long-running commands (`serve`, `worker`), applied once they are up."""

from __future__ import annotations

import gc

# Collect the youngest generation every 20,000 net allocations instead of 700, and each older one after
# 20 of the one below instead of 10. Under webhook load the defaults ran a collection every few requests
# and a full one every few thousand: in A/B runs of bench_ack's EVI deliveries the server answered
# 630-770 req/s with the defaults, 690-770 with (20_000, 10, 10) and 810-980 with these, its memory the
# same (128 MB after 60,000 deliveries). Cyclic garbage waits longer for its collection; what
# refcounting frees (nearly everything) is still freed at once.
GC_THRESHOLDS = (20_000, 20, 20)


def settle() -> None:
    """Move everything alive after start-up (modules, SQLAlchemy's tables and caches, the SDKs, metric
    families: hundreds of thousands of objects that live as long as the process) out of the cyclic
    garbage collector's generations, and collect less often. Each full collection walked all of them
    again: under webhook load those pauses took ~10% of the server's CPU (py-spy charged them to whatever
    line allocated). Only for a process that owns its whole life: tests start many services in one
    process, and frozen objects are never collected."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
