"""Plain-text answers to /status and /calls, built from what the bus says."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from channels.bus_contract.box_payloads import BoxStatus, EngineState, ServiceState
from channels.bus_contract.call_payloads import CallState
from channels.bus_contract.fields import PayloadError
from channels.bus_contract.modem_payloads import ModemState
from channels.bus_contract.topics import CALL_STATE, MODEM_STATE, STATUS, engine_name, service_name
from channels.telegram.notifications import OUTCOMES, duration_text, when

_P = TypeVar("_P")


def status_text(state: dict[str, Any], connected: bool) -> str:
    """The box at a glance from the retained bus state (``status``, ``modem/state``, ``call/state``, engines).

    A report that does not fit the contract reads as no report.
    """
    if not connected:
        return "The box's message bus is not reachable right now; I cannot see its state."
    box = _decoded(BoxStatus.decode, state.get(STATUS))
    lines = [f"Box: {box.encode() if box is not None else 'unknown'}"]
    modem = _decoded(ModemState.decode, state.get(MODEM_STATE))
    if modem is not None:
        parts = [
            f"SIM {modem.sim or '?'}",
            "registered" if modem.registered else "not registered",
            str(modem.operator or "no operator"),
            f"signal {modem.signal_dbm} dBm" if modem.signal_dbm is not None else "no signal reading",
        ]
        lines.append("Modem: " + ", ".join(parts))
    else:
        lines.append("Modem: no report yet")
    call = _decoded(CallState.decode, state.get(CALL_STATE))
    if call is not None:
        caller = f" with {call.caller}" if call.caller else ""
        lines.append(f"Call: {call.state}{caller}")
    engines = sorted(_reports(state, engine_name, EngineState.decode).items())
    if engines:
        lines.append("Engines:")
        for name, e in engines:
            backend = f" ({e.backend}, {e.device})" if e.backend else ""
            detail = f" - {e.detail}" if e.state != "ready" and e.detail else ""
            lines.append(f"  {name}: {e.state}{backend}{detail}")
    services = sorted(_reports(state, service_name, ServiceState.decode).items())
    unhealthy = [(n, s) for n, s in services if s.state != "running"]
    if services:
        lines.append("Services: all running" if not unhealthy else "Services:")
        for name, s in unhealthy:
            lines.append(f"  {name}: {s.state} - {s.detail or ''}".rstrip(" -"))
    return "\n".join(lines)


def _decoded(decode: Callable[[Any], _P], payload: Any) -> _P | None:
    try:
        return decode(payload) if payload is not None else None
    except PayloadError:
        return None


def _reports(state: dict[str, Any], name_of: Callable[[str], str | None], decode: Callable[[Any], _P]) -> dict[str, _P]:
    """``{name: report}`` of every engine's (or service's) retained state that fits the contract."""
    found: dict[str, _P] = {}
    for suffix, payload in state.items():
        name = name_of(suffix)
        report = _decoded(decode, payload) if name is not None else None
        if name is not None and report is not None:
            found[name] = report
    return found


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
