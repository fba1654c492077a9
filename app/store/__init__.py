"""The repository layer: tables, queries and COPY ingest. The only place that speaks SQL."""
