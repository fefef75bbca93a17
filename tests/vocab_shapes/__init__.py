"""Tests of the SHACL shapes, SKOS vocabularies and hierarchies in vocab/."""
