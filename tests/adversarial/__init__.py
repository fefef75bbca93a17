"""Attacks on the released product, each written before its fix."""
