"""The v1 backend: jobs measured through Hume's v1 Expression Measurement API, chunk by chunk."""
