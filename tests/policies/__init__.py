"""Tests of the ODRL 2.2 engine: parsing, evaluation, explanations, lint, templates, CLI."""
