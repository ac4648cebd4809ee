"""Local web UI: login, status, call history, persona and voice management."""
