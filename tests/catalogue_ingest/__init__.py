"""The catalogue ingest pipeline: compact form, stages, signing."""
