"""Prometheus metrics for ``/metrics``, fed by the box's MQTT messages.

The web service hands every bus message to :meth:`BoxMetrics.observe` as
``(suffix, payload)``: the topic below ``<prefix>/<box_id>/`` and the parsed
JSON (design.md, "MQTT"). Call events become counters and histograms; the
retained state topics become gauges, yielded at scrape time by a collector
from the latest state, so an engine's old ``backend``/``device`` label set
disappears when it changes. System and GPU figures are read at scrape time.

A payload that does not fit the contract never raises: it is counted in
``secretary_bus_malformed_messages_total{topic_kind}`` and whatever parts of
it are valid still count. Each :class:`BoxMetrics` has its own registry.
"""

from __future__ import annotations

import importlib
import logging
import math
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import psutil
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from channels.bus_contract.box_payloads import ENGINE_STATES, SERVICE_STATES, BoxStatus
from channels.bus_contract.call_payloads import CallState
from channels.bus_contract.topics import (
    CALL_EVENT,
    CALL_STATE,
    EVERY_ENGINE_STATE,
    EVERY_SERVICE_STATE,
    MODEM_STATE,
    STATUS,
    engine_name,
    matches,
    service_name,
)

log = logging.getLogger("secretary.web")

CALL_DURATION_BUCKETS = (5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
TURN_STAGE_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
ERROR_TYPES = ("call_failed", "service_crash", "engine_failed")
TOPIC_KINDS = ("status", "modem_state", "call_state", "call_event", "engine_state", "service_state")
ACTIVE_CALL_STATES = frozenset({"active", "ringing"})

MAX_LABEL_VALUES = 64  # distinct values per free-text label (outcome, reason, role, stage); the rest are "other"
MAX_LABEL_LENGTH = 64
MAX_COMPONENTS = 64  # engines / services tracked

_T = TypeVar("_T")


class _Malformed(Exception):
    """A payload (or part of one) that does not fit the contract."""


def _number(value: Any, what: str) -> float | None:
    """A finite, non-negative JSON number; None stays None; anything else is malformed."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise _Malformed(f"{what} is not a non-negative number: {value!r}")
    return float(value)


def _flag(value: Any, what: str) -> bool:
    """True/False; None counts as False; anything else is malformed."""
    if value is None or isinstance(value, bool):
        return bool(value)
    raise _Malformed(f"{what} is not true/false: {value!r}")


def _text(value: Any, what: str, *, optional: bool = False) -> str:
    if isinstance(value, str):
        return value
    if optional and value is None:
        return ""
    raise _Malformed(f"{what} is not a string: {value!r}")


def _require_dict(payload: Any) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise _Malformed(f"payload is {type(payload).__name__}, not an object")
    return payload


class _LabelValues:
    """Bounds one free-text label to MAX_LABEL_VALUES short values ("other" past that)."""

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def __call__(self, value: str) -> str:
        value = value[:MAX_LABEL_LENGTH] or "unknown"
        if value in self._seen:
            return value
        if len(self._seen) >= MAX_LABEL_VALUES:
            return "other"
        self._seen.add(value)
        return value


@dataclass
class _Component:
    """The latest retained state of an engine or service."""

    state: str
    backend: str = ""
    device: str = ""
    restarts: int | None = None


@dataclass
class _BoxState:
    engines: dict[str, _Component] = field(default_factory=dict)
    services: dict[str, _Component] = field(default_factory=dict)
    online: bool | None = None
    modem_registered: bool | None = None
    modem_signal_dbm: float | None = None
    call_active: bool = False
    last_message_at: float | None = None


class BoxStateCollector(Collector):
    """Gauges of the retained bus state, yielded from the latest values at each scrape."""

    def __init__(self, state: _BoxState, lock: threading.Lock) -> None:
        self._state = state
        self._lock = lock

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            s = self._state
            engines = {name: _Component(**vars(c)) for name, c in s.engines.items()}
            services = {name: _Component(**vars(c)) for name, c in s.services.items()}
            online, registered, signal = s.online, s.modem_registered, s.modem_signal_dbm
            call_active, last_message_at = s.call_active, s.last_message_at

        engine_state = GaugeMetricFamily(
            "secretary_engine_state", "1 for the engine's current state, 0 for its other states",
            labels=["engine", "state"],
        )
        engine_info = GaugeMetricFamily(
            "secretary_engine_info", "The backend and device serving each engine",
            labels=["engine", "backend", "device"],
        )
        for name, engine in sorted(engines.items()):
            _state_samples(engine_state, name, engine.state, ENGINE_STATES)
            engine_info.add_metric([name, engine.backend, engine.device], 1.0)
        service_state = GaugeMetricFamily(
            "secretary_service_state", "1 for the service's current state, 0 for its other states",
            labels=["service", "state"],
        )
        restarts = GaugeMetricFamily(
            "secretary_service_restarts", "How often the supervisor restarted each service", labels=["service"]
        )
        for name, service in sorted(services.items()):
            _state_samples(service_state, name, service.state, SERVICE_STATES)
            if service.restarts is not None:
                restarts.add_metric([name], float(service.restarts))
        yield from (engine_state, engine_info, service_state, restarts)

        yield GaugeMetricFamily("secretary_call_active", "1 while a call rings or is active", value=float(call_active))
        if online is not None:
            yield GaugeMetricFamily("secretary_box_online", "1 when the box's status is online", value=float(online))
        if registered is not None:
            yield GaugeMetricFamily(
                "secretary_modem_registered", "1 when the modem is registered on a network", value=float(registered)
            )
        if signal is not None:
            yield GaugeMetricFamily("secretary_modem_signal_dbm", "Modem signal strength (dBm)", value=signal)
        if last_message_at is not None:
            yield GaugeMetricFamily(
                "secretary_bus_last_message_timestamp_seconds", "When the last bus message arrived (unix time)",
                value=last_message_at,
            )


def _state_samples(family: GaugeMetricFamily, name: str, current: str, known: tuple[str, ...]) -> None:
    for state in known if current in known else (*known, current):
        family.add_metric([name, state], 1.0 if state == current else 0.0)


class _Gpu:
    """NVIDIA GPUs through pynvml (nvidia-ml-py), if it imports and initialises; tried once."""

    def __init__(self) -> None:
        self._nvml: ModuleType | None = None
        self._tried = False

    def _library(self) -> ModuleType | None:
        if not self._tried:
            self._tried = True
            try:
                nvml = importlib.import_module("pynvml")
                nvml.nvmlInit()
            except Exception as exc:  # no package, no driver, no GPU: all mean "no GPU series"
                log.debug("no GPU metrics", extra={"reason": repr(exc)})
            else:
                self._nvml = nvml
        return self._nvml

    def collect(self) -> Iterator[Metric]:
        nvml = self._library()
        if nvml is None:
            return
        utilization = GaugeMetricFamily("secretary_gpu_utilization_percent", "GPU busy percentage", labels=["gpu"])
        used = GaugeMetricFamily("secretary_gpu_memory_used_bytes", "GPU memory in use", labels=["gpu"])
        total = GaugeMetricFamily("secretary_gpu_memory_total_bytes", "GPU memory size", labels=["gpu"])
        temperature = GaugeMetricFamily("secretary_gpu_temperature_celsius", "GPU core temperature", labels=["gpu"])
        try:
            count = int(nvml.nvmlDeviceGetCount())
        except Exception as exc:
            log.debug("GPU count failed", extra={"reason": repr(exc)})
            return
        for index in range(count):
            label = [str(index)]
            try:
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
            except Exception:
                continue
            readings: list[tuple[GaugeMetricFamily, Callable[[], float]]] = [
                (utilization, lambda: float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu)),
                (used, lambda: float(nvml.nvmlDeviceGetMemoryInfo(handle).used)),
                (total, lambda: float(nvml.nvmlDeviceGetMemoryInfo(handle).total)),
                (temperature, lambda: float(nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU))),
            ]
            for family, read in readings:
                value = _reading(read)
                if value is not None:
                    family.add_metric(label, value)
        yield from (utilization, used, total, temperature)


def _reading(read: Callable[[], _T]) -> _T | None:
    """A scrape-time reading, or None when the system refuses it (a scrape never fails)."""
    try:
        return read()
    except Exception as exc:
        log.debug("metric reading failed", extra={"reason": repr(exc)})
        return None


class SystemCollector(Collector):
    """CPU, memory, disk, load and (if present) GPU figures, read at each scrape."""

    def __init__(self, data_dir: Path) -> None:
        self._data_dir = Path(data_dir)
        self._process = psutil.Process()
        self._gpu = _Gpu()

    def _disk_free(self) -> float:
        try:
            return float(shutil.disk_usage(self._data_dir).free)
        except OSError:
            return 0.0

    def collect(self) -> Iterable[Metric]:
        readings: list[tuple[str, str, Callable[[], float]]] = [
            ("secretary_cpu_percent", "CPU busy percentage since the previous scrape",
             lambda: float(psutil.cpu_percent(None))),
        ]
        memory = _reading(psutil.virtual_memory)
        if memory is not None:
            used, total = float(memory.total - memory.available), float(memory.total)
            readings += [
                ("secretary_memory_used_bytes", "Memory in use (total minus available)", lambda: used),
                ("secretary_memory_total_bytes", "Installed memory", lambda: total),
            ]
        readings += [
            ("secretary_process_resident_bytes", "Resident memory of this process",
             lambda: float(self._process.memory_info().rss)),
            ("secretary_data_disk_free_bytes", "Free space on the data directory's disk (0 if it is missing)",
             self._disk_free),
            ("secretary_load1", "One-minute load average", lambda: float(os.getloadavg()[0])),
        ]
        for name, documentation, read in readings:
            value = _reading(read)
            if value is not None:
                yield GaugeMetricFamily(name, documentation, value=value)
        yield from self._gpu.collect()


class BoxMetrics:
    """The box's metrics: fed with :meth:`observe`, exposed with :meth:`render`.

    ``observe`` is cheap and meant for the event loop; ``render`` reads the
    system (a few ms) and may run in a thread. Both are thread-safe.
    """

    def __init__(self, box_id: str, data_dir: Path, clock: Callable[[], float] = time.time) -> None:
        self.box_id = box_id
        self._clock = clock
        self.registry = CollectorRegistry()
        r = self.registry
        self._calls = Counter("secretary_calls", "Calls ended, by outcome", ["outcome"], registry=r)
        self._end_reasons = Counter("secretary_call_end_reasons", "Calls ended, by reason", ["reason"], registry=r)
        self._call_duration = Histogram(
            "secretary_call_duration_seconds", "Length of ended calls", buckets=CALL_DURATION_BUCKETS, registry=r
        )
        self._turn_stage = Histogram(
            "secretary_turn_stage_seconds", "Latency of each stage of a secretary turn", ["stage"],
            buckets=TURN_STAGE_BUCKETS, registry=r,
        )
        self._fillers = Counter("secretary_fillers", "Secretary turns that began with a filler phrase", registry=r)
        self._barge_ins = Counter("secretary_barge_ins", "Secretary turns the caller interrupted", registry=r)
        self._utterances = Counter("secretary_utterances", "Utterances in calls, by speaker", ["role"], registry=r)
        self._errors = Counter("secretary_errors", "Failed calls, service crashes and engine failures", ["type"],
                               registry=r)
        self._malformed = Counter(
            "secretary_bus_malformed_messages", "Bus messages that did not fit the contract", ["topic_kind"],
            registry=r,
        )
        for error_type in ERROR_TYPES:
            self._errors.labels(error_type)
        for kind in TOPIC_KINDS:
            self._malformed.labels(kind)
        self._outcomes, self._reasons, self._roles, self._stages = (_LabelValues() for _ in range(4))
        self._lock = threading.Lock()
        self._state = _BoxState()
        r.register(BoxStateCollector(self._state, self._lock))
        r.register(SystemCollector(data_dir))

    def observe(self, suffix: str, payload: Any) -> None:
        """Take one bus message into account; never raises."""
        with self._lock:
            self._state.last_message_at = self._clock()
        route = self._route(suffix)
        if route is None:
            return
        kind, handler = route
        try:
            handler(payload)
        except Exception as exc:  # _Malformed, or a shape nobody foresaw: count it, never break the caller
            self._malformed.labels(kind).inc()
            log.debug("malformed bus message", extra={"topic": suffix, "reason": str(exc)})

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    # -- routing
    def _route(self, suffix: str) -> tuple[str, Callable[[Any], None]] | None:
        """(topic kind, handler) for the topics that feed metrics; None for the others."""
        if not isinstance(suffix, str):
            return None
        fixed = {STATUS: ("status", self._on_status), MODEM_STATE: ("modem_state", self._on_modem_state),
                 CALL_STATE: ("call_state", self._on_call_state), CALL_EVENT: ("call_event", self._on_call_event)}
        if suffix in fixed:
            return fixed[suffix]
        if matches(EVERY_ENGINE_STATE, suffix):  # an empty name is malformed, not another topic
            return "engine_state", lambda payload: self._on_engine_state(engine_name(suffix) or "", payload)
        if matches(EVERY_SERVICE_STATE, suffix):
            return "service_state", lambda payload: self._on_service_state(service_name(suffix) or "", payload)
        return None

    # -- state topics
    def _on_status(self, payload: Any) -> None:
        online = BoxStatus.decode(payload).online
        with self._lock:
            self._state.online = online

    def _on_modem_state(self, payload: Any) -> None:
        data = _require_dict(payload)
        problems: list[str] = []
        registered: bool | None = None
        signal: float | None = None
        value = data.get("registered")
        if isinstance(value, bool) or value is None:
            registered = value
        else:
            problems.append(f"registered is not true/false: {value!r}")
        value = data.get("signal_dbm")
        if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)):
            signal = None if value is None else float(value)
        else:
            problems.append(f"signal_dbm is not a number: {value!r}")
        with self._lock:
            self._state.modem_registered = registered
            self._state.modem_signal_dbm = signal
        if problems:
            raise _Malformed("; ".join(problems))

    def _on_call_state(self, payload: Any) -> None:
        state = CallState.decode(payload).state
        with self._lock:
            self._state.call_active = state in ACTIVE_CALL_STATES

    def _component(self, table: dict[str, _Component], name: str, payload: Any) -> tuple[_Component | None, str]:
        """(previous state, new state) checks shared by engines and services."""
        if not name:
            raise _Malformed("empty component name in topic")
        if name not in table and len(table) >= MAX_COMPONENTS:
            raise _Malformed(f"too many components; ignoring {name!r}")
        return table.get(name), _text(_require_dict(payload).get("state"), "state")

    def _on_engine_state(self, name: str, payload: Any) -> None:
        problems: list[str] = []
        with self._lock:
            previous, state = self._component(self._state.engines, name, payload)
            fields: list[str] = []
            for key in ("backend", "device"):
                try:
                    fields.append(_text(payload.get(key), key, optional=True))
                except _Malformed as exc:
                    problems.append(str(exc))
                    fields.append("")
            self._state.engines[name] = _Component(state, backend=fields[0], device=fields[1])
        if state == "failed" and (previous is None or previous.state != "failed"):
            self._errors.labels("engine_failed").inc()
        if problems:
            raise _Malformed("; ".join(problems))

    def _on_service_state(self, name: str, payload: Any) -> None:
        problems: list[str] = []
        with self._lock:
            previous, state = self._component(self._state.services, name, payload)
            value = payload.get("restarts")
            restarts: int | None = None
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                restarts = value
            elif value is not None:
                problems.append(f"restarts is not a count: {value!r}")
            self._state.services[name] = _Component(state, restarts=restarts)
        if state == "backoff" and (previous is None or previous.state != "backoff"):
            self._errors.labels("service_crash").inc()
        if problems:
            raise _Malformed("; ".join(problems))

    # -- call events
    def _on_call_event(self, payload: Any) -> None:
        data = _require_dict(payload)
        match _text(data.get("type"), "event type"):
            case "utterance":
                self._on_utterance(data)
            case "ended":
                self._on_ended(data)

    def _on_utterance(self, data: dict[str, Any]) -> None:
        problems: list[str] = []
        role = data.get("role")
        if not isinstance(role, str):
            problems.append(f"role is not a string: {role!r}")
            role = "unknown"
        self._utterances.labels(self._roles(role)).inc()
        latency = data.get("latency_ms")
        if latency is not None and not isinstance(latency, dict):
            problems.append(f"latency_ms is not an object: {latency!r}")
            latency = None
        latency = latency or {}
        for key, value in latency.items():
            if not isinstance(key, str) or not key.endswith("_ms"):
                continue
            try:
                seconds = _number(value, key)
            except _Malformed as exc:
                problems.append(str(exc))
                continue
            if seconds is not None:
                self._turn_stage.labels(self._stages(key[: -len("_ms")])).observe(seconds / 1000.0)
        try:
            if _flag(latency.get("filler"), "filler"):
                self._fillers.inc()
        except _Malformed as exc:
            problems.append(str(exc))
        try:
            # A turn's timing says whether the caller cut it short; a secretary line without one
            # (the greeting) says so in its own "interrupted". A caller's "interrupted" means
            # the hang-up cut it, which is no barge-in.
            if "interrupted" in latency:
                interrupted = _flag(latency.get("interrupted"), "latency_ms.interrupted")
            else:
                interrupted = role == "secretary" and _flag(data.get("interrupted"), "interrupted")
            if interrupted:
                self._barge_ins.inc()
        except _Malformed as exc:
            problems.append(str(exc))
        if problems:
            raise _Malformed("; ".join(problems))

    def _on_ended(self, data: dict[str, Any]) -> None:
        problems: list[str] = []
        outcome = data.get("outcome")
        if outcome is None:  # the modem's own ending of a call the secretary never took
            outcome = "unanswered" if data.get("answered") is False else "unknown"
        elif not isinstance(outcome, str):
            problems.append(f"outcome is not a string: {outcome!r}")
            outcome = "unknown"
        self._calls.labels(self._outcomes(outcome)).inc()
        if outcome == "failed":
            self._errors.labels("call_failed").inc()
        reason = data.get("reason")
        if isinstance(reason, str):
            self._end_reasons.labels(self._reasons(reason)).inc()
        elif reason is not None:
            problems.append(f"reason is not a string: {reason!r}")
        try:
            duration = _number(data.get("duration_s"), "duration_s")
        except _Malformed as exc:
            problems.append(str(exc))
        else:
            if duration is not None:
                self._call_duration.observe(duration)
        if problems:
            raise _Malformed("; ".join(problems))
