"""The ingest pipeline: documents parsed once into a compact form that every stage shares."""
