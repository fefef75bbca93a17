"""Tests of the offline JSON-LD loader, our contexts and limited RDF parsing."""
