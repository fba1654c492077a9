"""The worker: the queue (procrastinate tasks and their retry policy), the one event runner, the job
starter, the periodic reconciler, and the outbox that ends jobs and queues our outbound webhooks."""
