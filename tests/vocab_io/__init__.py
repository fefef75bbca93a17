"""Tests of vocab io."""
