"""Tests of the data plane: governed reads, the DuckDB sandbox, read limits, audit, job client."""
