"""The analysts' web dashboard: server-rendered pages over the same query functions as the API."""
