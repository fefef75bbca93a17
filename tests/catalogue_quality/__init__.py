"""Tests of the fast SHACL validator against pyshacl, quality scores and the seed catalogue."""
