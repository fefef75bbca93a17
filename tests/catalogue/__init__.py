"""Tests of the catalogue node: publish, store, index, search, SPARQL, signatures, CLI."""
