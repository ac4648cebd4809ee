"""The turn-end keys: ``call.turn_end`` (when to ask, how sure, how long to wait) and ``engines.vad.turn_end_model``.

Each problem is reported with its key path and what would fix it; defaults
that cannot work with a changed endpoint window step aside instead of failing.
"""

from __future__ import annotations

import pytest

from config.errors import ConfigError
from config.loader import parse_config_text
from config.schema import SecretaryConfig


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config_text(text, "test.yaml", {})
    return [str(issue) for issue in caught.value.issues]


def settings(text: str) -> SecretaryConfig:
    return parse_config_text(text, "test.yaml", {}).settings


def test_the_defaults_ask_the_packaged_model_at_a_short_pause() -> None:
    config = settings("box_id: b\n")
    turn_end = config.call.turn_end
    assert turn_end.enabled and turn_end.pause_ms < config.call.endpoint_silence_ms <= turn_end.max_silence_ms
    assert 0 < turn_end.threshold < 1
    assert config.engines.vad.turn_end_model == "packaged:smart-turn-v3"
    assert settings("box_id: b\nengines:\n  vad:\n    turn_end_model: null\n").engines.vad.turn_end_model is None


def test_the_model_is_asked_inside_the_endpoint_window() -> None:
    [problem] = problems("box_id: b\ncall:\n  turn_end:\n    pause_ms: 600\n")
    assert problem == (
        "call: turn_end.pause_ms (600) must be below endpoint_silence_ms (550): the turn-end model is asked inside "
        "the silence that would end the turn anyway (or set turn_end.enabled: false) (line 2)"
    )
    assert settings("box_id: b\ncall:\n  turn_end:\n    pause_ms: 600\n    enabled: false\n").call.turn_end.pause_ms == 600


def test_an_unfinished_turn_waits_at_least_the_endpoint_window() -> None:
    [problem] = problems("box_id: b\ncall:\n  turn_end:\n    max_silence_ms: 400\n")
    assert "turn_end.max_silence_ms (400) must be at least endpoint_silence_ms (550)" in problem


def test_defaults_step_aside_for_a_changed_endpoint_window() -> None:
    short = settings("box_id: b\ncall:\n  endpoint_silence_ms: 180\n").call.turn_end
    assert not short.enabled  # no room for a 200 ms pause inside a 180 ms window: the fixed window, as before
    long = settings("box_id: b\ncall:\n  endpoint_silence_ms: 2000\n").call.turn_end
    assert long.enabled and long.max_silence_ms == 2000


@pytest.mark.parametrize(("key", "value", "says"), [
    ("threshold", "1.5", "call.turn_end.threshold: must be the model's probability of a complete turn"),
    ("pause_ms", "20", "call.turn_end.pause_ms: must be caller silence after which the turn-end model is asked"),
    ("max_silence_ms", "9000", "call.turn_end.max_silence_ms: must be caller silence that ends a turn the model"),
])
def test_out_of_range_values_say_what_is_allowed(key: str, value: str, says: str) -> None:
    [problem] = problems(f"box_id: b\ncall:\n  turn_end:\n    {key}: {value}\n")
    assert problem.startswith(says), problem


def test_an_empty_model_path_is_refused() -> None:
    [problem] = problems("box_id: b\nengines:\n  vad:\n    turn_end_model: ''\n")
    assert problem.startswith("engines.vad.turn_end_model"), problem
