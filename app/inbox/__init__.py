"""The inbox: what accepts webhook events (an inbox row and its task in one statement), the pipeline's
registry of handlers by provider and backends by name, and replaying events."""
