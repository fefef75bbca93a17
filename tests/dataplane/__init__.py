"""Tests of dataplane."""
