"""End-to-end tests: the demo, and a data space of real processes."""
