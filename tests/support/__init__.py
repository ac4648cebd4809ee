"""Shared helpers for the test suite (real broker, bus watcher, daemon runner)."""
