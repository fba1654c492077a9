"""The queue's task names, and the inbox pipeline's one exception. The registry itself (`Pipeline`: handlers
by provider, backends by name, reconciler checks) is defined with `Deps` in app/deps.py, which holds it.
"""

from __future__ import annotations

# procrastinate task names: the one event runner, the job starter, the periodic reconciler and pruning.
PROCESS_EVENT = "process_event"
# The events one intake statement stored, queued together (app/store/webhook_intake.py): each is applied as
# PROCESS_EVENT applies it, and one that fails goes on as a PROCESS_EVENT task of its own.
PROCESS_EVENTS = "process_events"
START_JOB = "submit_job"
RECONCILE = "reconcile"
PRUNE = "prune_finished_tasks"
# Sends the due messages of one outbound webhook endpoint, several at a time (app/notifications/delivery.py;
# app/worker/outbox.py queues it for an endpoint, a retry for one message).
DELIVER_MESSAGE = "deliver_webhook_message"
# Reads what Hume billed for v1 runs answered (app/usage/billed_runs.py); one waits at a time.
READ_BILLED = "read_hume_billed"


class RetryLater(Exception):
    """The outcome is not known yet (Hume says the job or chat has not ended); retried with backoff."""
