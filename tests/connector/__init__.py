"""Tests of the DSP 2025-1 control plane: messages, state machines, stores, HTTP binding."""
