"""Tests of catalogue quality."""
