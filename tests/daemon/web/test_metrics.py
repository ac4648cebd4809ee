"""BoxMetrics: bus messages in, Prometheus text out."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from daemon.web.metrics import BoxMetrics

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(metrics: BoxMetrics) -> Samples:
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def series(samples: Samples, name: str) -> dict[frozenset[tuple[str, str]], float]:
    return {labels: v for (n, labels), v in samples.items() if n == name}


@pytest.fixture
def metrics(tmp_path: Path) -> BoxMetrics:
    return BoxMetrics("box1", tmp_path, clock=lambda: 1700000000.0)


def utterance(role: str, **extra: Any) -> dict[str, Any]:
    return {"type": "utterance", "call_id": "c1", "ts": 1.0, "role": role, "text": "hi", **extra}


def test_calls_and_durations(metrics: BoxMetrics) -> None:
    metrics.observe("call/event", {"type": "ringing", "call_id": "c1", "ts": 1.0, "caller": "+441"})
    metrics.observe("call/event", {"type": "answered", "call_id": "c1", "ts": 2.0})
    metrics.observe("call/event", {"type": "ended", "call_id": "c1", "ts": 3.0, "duration_s": 42.5,
                                   "reason": "remote_hangup", "outcome": "message_taken", "summary": None})
    metrics.observe("call/event", {"type": "ended", "call_id": "c2", "ts": 4.0, "duration_s": 3,
                                   "reason": "error", "outcome": "failed"})
    metrics.observe("call/event", {"type": "ended", "call_id": "c3", "ts": 5.0, "duration_s": 0.0,
                                   "reason": "remote_hangup", "answered": False})
    s = scrape(metrics)
    assert series(s, "secretary_calls_total") == {
        frozenset({("outcome", "message_taken")}): 1.0,
        frozenset({("outcome", "failed")}): 1.0,
        frozenset({("outcome", "unanswered")}): 1.0,
    }
    assert value(s, "secretary_call_end_reasons_total", reason="remote_hangup") == 2.0
    assert value(s, "secretary_call_end_reasons_total", reason="error") == 1.0
    assert value(s, "secretary_errors_total", type="call_failed") == 1.0
    assert value(s, "secretary_call_duration_seconds_count") == 3.0
    assert value(s, "secretary_call_duration_seconds_sum") == pytest.approx(45.5)
    buckets = {le: value(s, "secretary_call_duration_seconds_bucket", le=le)
               for le in ("5.0", "15.0", "30.0", "60.0", "1800.0", "+Inf")}
    assert buckets == {"5.0": 2.0, "15.0": 2.0, "30.0": 2.0, "60.0": 3.0, "1800.0": 3.0, "+Inf": 3.0}
    assert series(s, "secretary_bus_malformed_messages_total") == {
        frozenset({("topic_kind", k)}): 0.0
        for k in ("status", "modem_state", "call_state", "call_event", "engine_state", "service_state")
    }


def test_turn_latencies_fillers_and_barge_ins(metrics: BoxMetrics) -> None:
    metrics.observe("call/event", utterance("secretary", source="greeting", interrupted=False,
                                            latency_ms={"greeting_ms": 25.0}))
    metrics.observe("call/event", utterance("caller", interrupted=False))
    metrics.observe("call/event", utterance("secretary", interrupted=False, latency_ms={
        "endpoint_ms": 180.2, "voice_to_voice_ms": 950.0, "stt_ms": 300.1, "first_text_ms": 400.0,
        "first_tts_ms": 500.0, "first_audio_ms": 700.0, "filler": False, "interrupted": False}))
    metrics.observe("call/event", utterance("caller", interrupted=True))  # cut by the hang-up: no barge-in
    metrics.observe("call/event", utterance("secretary", interrupted=True, latency_ms={
        "endpoint_ms": 150.0, "voice_to_voice_ms": None, "stt_ms": 250.0, "first_text_ms": None,
        "first_tts_ms": None, "first_audio_ms": 1200.0, "filler": True, "interrupted": True}))
    metrics.observe("call/event", utterance("secretary", source="greeting", interrupted=True,
                                            latency_ms={"greeting_ms": 30.0}))
    s = scrape(metrics)
    assert value(s, "secretary_utterances_total", role="secretary") == 4.0
    assert value(s, "secretary_utterances_total", role="caller") == 2.0
    assert value(s, "secretary_fillers_total") == 1.0
    assert value(s, "secretary_barge_ins_total") == 2.0

    def stage(name: str) -> tuple[float, float]:
        return (value(s, "secretary_turn_stage_seconds_count", stage=name),
                value(s, "secretary_turn_stage_seconds_sum", stage=name))

    assert stage("greeting") == (2.0, pytest.approx(0.055))
    assert stage("endpoint") == (2.0, pytest.approx(0.3302))
    assert stage("voice_to_voice") == (1.0, pytest.approx(0.95))
    assert stage("stt") == (2.0, pytest.approx(0.5501))
    assert stage("first_text") == (1.0, pytest.approx(0.4))
    assert stage("first_audio") == (2.0, pytest.approx(1.9))
    assert {labels for labels in series(s, "secretary_turn_stage_seconds_count")} == {
        frozenset({("stage", n)}) for n in
        ("greeting", "endpoint", "voice_to_voice", "stt", "first_text", "first_tts", "first_audio")
    }
    first_audio = {le: value(s, "secretary_turn_stage_seconds_bucket", stage="first_audio", le=le)
                   for le in ("0.5", "0.8", "1.0", "1.5", "+Inf")}
    assert first_audio == {"0.5": 0.0, "0.8": 1.0, "1.0": 1.0, "1.5": 2.0, "+Inf": 2.0}
    assert value(s, "secretary_turn_stage_seconds_bucket", stage="endpoint", le="0.2") == 2.0
    assert value(s, "secretary_turn_stage_seconds_bucket", stage="endpoint", le="0.1") == 0.0
    assert value(s, "secretary_bus_malformed_messages_total", topic_kind="call_event") == 0.0


def test_service_crashes_count_transitions_into_backoff(metrics: BoxMetrics) -> None:
    for state, restarts in [("starting", 0), ("running", 0), ("backoff", 1), ("backoff", 1), ("starting", 1),
                            ("running", 1), ("backoff", 2)]:
        metrics.observe("services/modem/state", {"state": state, "detail": "", "restarts": restarts, "since": 1.0})
    metrics.observe("services/web/state", {"state": "running", "detail": "", "restarts": 0, "since": 1.0})
    s = scrape(metrics)
    assert value(s, "secretary_errors_total", type="service_crash") == 2.0
    assert value(s, "secretary_service_restarts", service="modem") == 2.0
    assert value(s, "secretary_service_restarts", service="web") == 0.0
    modem = {dict(labels)["state"]: v for labels, v in series(s, "secretary_service_state").items()
             if dict(labels)["service"] == "modem"}
    assert modem == {"starting": 0.0, "running": 0.0, "degraded": 0.0, "backoff": 1.0, "stopping": 0.0,
                     "stopped": 0.0}
    assert value(s, "secretary_service_state", service="web", state="running") == 1.0


def test_engine_states_and_failures(metrics: BoxMetrics) -> None:
    metrics.observe("engines/stt/state", {"state": "loading", "backend": None, "device": None, "detail": ""})
    metrics.observe("engines/stt/state", {"state": "ready", "backend": "faster-whisper", "device": "cpu"})
    metrics.observe("engines/stt/state", {"state": "failed", "backend": "faster-whisper", "device": "cpu",
                                          "detail": "out of memory"})
    metrics.observe("engines/stt/state", {"state": "failed", "backend": "faster-whisper", "device": "cpu"})
    metrics.observe("engines/tts/state", {"state": "ready", "backend": "piper", "device": "cpu"})
    s = scrape(metrics)
    assert value(s, "secretary_errors_total", type="engine_failed") == 1.0
    stt = {dict(labels)["state"]: v for labels, v in series(s, "secretary_engine_state").items()
           if dict(labels)["engine"] == "stt"}
    assert stt == {"loading": 0.0, "ready": 0.0, "degraded": 0.0, "failed": 1.0, "stopped": 0.0}
    assert value(s, "secretary_engine_state", engine="tts", state="ready") == 1.0


def test_engine_info_keeps_only_the_current_label_set(metrics: BoxMetrics) -> None:
    metrics.observe("engines/tts/state", {"state": "ready", "backend": "xtts", "device": "cuda:0"})
    metrics.observe("engines/tts/state", {"state": "degraded", "backend": "piper", "device": "cpu"})
    s = scrape(metrics)
    assert series(s, "secretary_engine_info") == {
        frozenset({("engine", "tts"), ("backend", "piper"), ("device", "cpu")}): 1.0
    }


def test_modem_call_and_status_gauges(metrics: BoxMetrics) -> None:
    s = scrape(metrics)
    assert value(s, "secretary_call_active") == 0.0
    for name in ("secretary_box_online", "secretary_modem_registered", "secretary_modem_signal_dbm"):
        assert series(s, name) == {}  # unknown until the box says

    metrics.observe("status", "online")
    metrics.observe("modem/state", {"sim": "ready", "registered": True, "operator": "Vodafone", "signal_dbm": -71,
                                    "ports": {"at": "/dev/ttyUSB2", "audio": "/dev/ttyUSB4"}})
    metrics.observe("call/state", {"state": "ringing", "call_id": "c1", "caller": "+441", "since": 1.0})
    s = scrape(metrics)
    assert value(s, "secretary_box_online") == 1.0
    assert value(s, "secretary_modem_registered") == 1.0
    assert value(s, "secretary_modem_signal_dbm") == -71.0
    assert value(s, "secretary_call_active") == 1.0
    assert value(s, "secretary_bus_last_message_timestamp_seconds") == 1700000000.0

    metrics.observe("call/state", {"state": "active", "call_id": "c1", "caller": "+441", "since": 2.0})
    assert value(scrape(metrics), "secretary_call_active") == 1.0
    metrics.observe("call/state", {"state": "idle", "call_id": None, "caller": None, "since": 3.0})
    metrics.observe("status", "offline")
    metrics.observe("modem/state", {"sim": "absent", "registered": False, "operator": None, "signal_dbm": None,
                                    "ports": None})
    s = scrape(metrics)
    assert value(s, "secretary_call_active") == 0.0
    assert value(s, "secretary_box_online") == 0.0
    assert value(s, "secretary_modem_registered") == 0.0
    assert series(s, "secretary_modem_signal_dbm") == {}


@pytest.mark.parametrize(("suffix", "payload", "kind"), [
    ("call/event", "ended", "call_event"),
    ("call/event", None, "call_event"),
    ("call/event", [1, 2], "call_event"),
    ("call/event", {"call_id": "c1"}, "call_event"),
    ("call/state", None, "call_state"),
    ("call/state", {"state": 3}, "call_state"),
    ("modem/state", "registered", "modem_state"),
    ("modem/state", {"registered": "yes", "signal_dbm": -70}, "modem_state"),
    ("engines/stt/state", ["ready"], "engine_state"),
    ("engines/stt/state", {"backend": "x"}, "engine_state"),
    ("engines//state", {"state": "ready"}, "engine_state"),
    ("services/bus/state", 5, "service_state"),
    ("services/bus/state", {"state": "running", "restarts": "many"}, "service_state"),
    ("status", {"online": True}, "status"),
    ("status", "maybe", "status"),
])
def test_malformed_payloads_are_counted_not_raised(metrics: BoxMetrics, suffix: str, payload: Any,
                                                   kind: str) -> None:
    metrics.observe(suffix, payload)
    s = scrape(metrics)
    assert value(s, "secretary_bus_malformed_messages_total", topic_kind=kind) == 1.0
    assert sum(series(s, "secretary_bus_malformed_messages_total").values()) == 1.0


def test_malformed_parts_count_once_and_the_valid_parts_still_count(metrics: BoxMetrics) -> None:
    metrics.observe("call/event", utterance("secretary", latency_ms={
        "endpoint_ms": "fast", "stt_ms": 200.0, "first_audio_ms": -5, "filler": "no", "interrupted": False}))
    metrics.observe("call/event", utterance("secretary", latency_ms="950"))
    metrics.observe("call/event", {"type": "ended", "call_id": "c1", "ts": 1.0, "duration_s": "abc",
                                   "reason": "remote_hangup", "outcome": "no_message"})
    metrics.observe("call/event", {"type": "ended", "call_id": "c2", "ts": 1.0, "duration_s": 10,
                                   "reason": ["x"], "outcome": 7})
    metrics.observe("call/event", utterance(None))  # type: ignore[arg-type]
    metrics.observe("engines/tts/state", {"state": "ready", "backend": 1, "device": "cpu"})
    metrics.observe("whatever/else", None)  # not a metrics topic: ignored, not malformed
    metrics.observe("cmd/hangup", "x")
    s = scrape(metrics)
    assert value(s, "secretary_bus_malformed_messages_total", topic_kind="call_event") == 5.0
    assert value(s, "secretary_bus_malformed_messages_total", topic_kind="engine_state") == 1.0
    assert value(s, "secretary_turn_stage_seconds_count", stage="stt") == 1.0
    assert ("secretary_turn_stage_seconds_count", frozenset({("stage", "endpoint")})) not in s
    assert value(s, "secretary_utterances_total", role="secretary") == 2.0
    assert value(s, "secretary_utterances_total", role="unknown") == 1.0
    assert value(s, "secretary_fillers_total") == 0.0
    assert value(s, "secretary_calls_total", outcome="no_message") == 1.0
    assert value(s, "secretary_calls_total", outcome="unknown") == 1.0
    assert value(s, "secretary_call_end_reasons_total", reason="remote_hangup") == 1.0
    assert value(s, "secretary_call_duration_seconds_count") == 1.0
    assert value(s, "secretary_call_duration_seconds_sum") == 10.0
    assert series(s, "secretary_engine_info") == {
        frozenset({("engine", "tts"), ("backend", ""), ("device", "cpu")}): 1.0
    }


def test_system_metrics_are_present_and_sane(metrics: BoxMetrics) -> None:
    s = scrape(metrics)
    total = value(s, "secretary_memory_total_bytes")
    assert total > 0
    assert 0 < value(s, "secretary_memory_used_bytes") <= total
    assert 0 < value(s, "secretary_process_resident_bytes") < total
    assert value(s, "secretary_data_disk_free_bytes") > 0
    assert 0.0 <= value(s, "secretary_cpu_percent") <= 100.0 * 1024
    assert value(s, "secretary_load1") >= 0.0


def test_missing_data_dir_reports_zero_free(tmp_path: Path) -> None:
    s = scrape(BoxMetrics("box1", tmp_path / "nowhere"))
    assert value(s, "secretary_data_disk_free_bytes") == 0.0


def test_no_gpu_series_without_nvml(metrics: BoxMetrics) -> None:
    if importlib.util.find_spec("pynvml") is not None:
        pytest.skip("pynvml is installed here")
    for _ in range(2):  # the failed probe is remembered, the scrape keeps working
        assert not [name for name, _ in scrape(metrics) if name.startswith("secretary_gpu_")]


def test_each_instance_has_its_own_registry(tmp_path: Path) -> None:
    a, b = BoxMetrics("a", tmp_path), BoxMetrics("b", tmp_path)
    a.observe("call/event", {"type": "ended", "call_id": "c", "ts": 1.0, "duration_s": 1, "outcome": "no_message"})
    assert value(scrape(a), "secretary_calls_total", outcome="no_message") == 1.0
    assert series(scrape(b), "secretary_calls_total") == {}
    assert REGISTRY.get_sample_value("secretary_calls_total", {"outcome": "no_message"}) is None


class _FakeNvml:
    """Just enough of pynvml for the collector: one GPU, or an nvmlInit that fails."""

    NVML_TEMPERATURE_GPU = 0

    def __init__(self, init_fails: bool = False) -> None:
        self.init_fails = init_fails
        self.init_calls = 0

    def nvmlInit(self) -> None:
        self.init_calls += 1
        if self.init_fails:
            raise RuntimeError("NVML Shared Library Not Found")

    def nvmlDeviceGetCount(self) -> int:
        return 1

    def nvmlDeviceGetHandleByIndex(self, index: int) -> str:
        return f"gpu{index}"

    def nvmlDeviceGetUtilizationRates(self, handle: str) -> Any:
        return type("Rates", (), {"gpu": 37, "memory": 10})()

    def nvmlDeviceGetMemoryInfo(self, handle: str) -> Any:
        return type("Memory", (), {"used": 2 * 2**30, "total": 24 * 2**30, "free": 22 * 2**30})()

    def nvmlDeviceGetTemperature(self, handle: str, sensor: int) -> int:
        raise RuntimeError("not supported")  # a reading the card refuses is left out


def test_gpu_series_from_nvml(metrics: BoxMetrics, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", _FakeNvml())
    s = scrape(metrics)
    assert value(s, "secretary_gpu_utilization_percent", gpu="0") == 37.0
    assert value(s, "secretary_gpu_memory_used_bytes", gpu="0") == 2 * 2**30
    assert value(s, "secretary_gpu_memory_total_bytes", gpu="0") == 24 * 2**30
    assert series(s, "secretary_gpu_temperature_celsius") == {}


def test_failed_nvml_init_is_tried_once(metrics: BoxMetrics, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _FakeNvml(init_fails=True)
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    for _ in range(3):
        assert not [name for name, _ in scrape(metrics) if name.startswith("secretary_gpu_")]
    assert fake.init_calls == 1
