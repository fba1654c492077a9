"""What several layers of the service share and no one layer owns (the store, Hume's clients, the features,
the commands): small definitions that import nothing else of app, so app/'s root holds only entry points,
settings, errors and wiring. Job statuses, time conversions, prediction rows, metrics, the TLS context, the
process's garbage-collector tuning and the background server runner."""
