"""Plain-text answers to /status and /calls, built from what the bus says."""

from __future__ import annotations

from typing import Any

from channels.telegram.notifications import OUTCOMES, duration_text, when


def status_text(state: dict[str, Any], connected: bool) -> str:
    """The box at a glance from the retained bus state (``status``, ``modem/state``, ``call/state``, engines)."""
    if not connected:
        return "The box's message bus is not reachable right now; I cannot see its state."
    lines = [f"Box: {state.get('status') or 'unknown'}"]
    modem = state.get("modem/state")
    if isinstance(modem, dict):
        signal = modem.get("signal_dbm")
        parts = [
            f"SIM {modem.get('sim') or '?'}",
            "registered" if modem.get("registered") else "not registered",
            str(modem.get("operator") or "no operator"),
            f"signal {signal} dBm" if signal is not None else "no signal reading",
        ]
        lines.append("Modem: " + ", ".join(parts))
    else:
        lines.append("Modem: no report yet")
    call = state.get("call/state")
    if isinstance(call, dict):
        caller = f" with {call['caller']}" if call.get("caller") else ""
        lines.append(f"Call: {call.get('state', '?')}{caller}")
    engines = sorted((k.split("/")[1], v) for k, v in state.items() if k.startswith("engines/") and isinstance(v, dict))
    if engines:
        lines.append("Engines:")
        for name, e in engines:
            backend = f" ({e.get('backend')}, {e.get('device')})" if e.get("backend") else ""
            detail = f" - {e['detail']}" if e.get("state") != "ready" and e.get("detail") else ""
            lines.append(f"  {name}: {e.get('state', '?')}{backend}{detail}")
    services = sorted((k.split("/")[1], v) for k, v in state.items() if k.startswith("services/") and isinstance(v, dict))
    unhealthy = [(n, s) for n, s in services if s.get("state") not in ("running", None)]
    if services:
        lines.append("Services: all running" if not unhealthy else "Services:")
        for name, s in unhealthy:
            lines.append(f"  {name}: {s.get('state')} - {s.get('detail', '')}".rstrip(" -"))
    return "\n".join(lines)


def calls_text(calls: list[dict[str, Any]]) -> str:
    if not calls:
        return "No calls yet."
    lines = [f"The last {len(calls)} call(s):"]
    for c in calls:
        outcome = OUTCOMES.get(str(c.get("outcome")), str(c.get("outcome") or ""))
        line = f"{when(c.get('started_at'))} · {c.get('caller') or 'withheld'} · {duration_text(c.get('duration_s'))} · {outcome}"
        if c.get("summary"):
            line += f"\n    {c['summary']}"
        lines.append(line)
    return "\n".join(lines)
