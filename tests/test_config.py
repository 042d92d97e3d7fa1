from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.config import DataConfig, TrainConfig, from_mapping
from harness.errors import ConfigError


def test_overlap_not_below_cutoff_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="overlap_len: 64 must be smaller than cutoff_len"):
        DataConfig(path="x.txt", cutoff_len=64, overlap_len=64)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as info:
        DataConfig(path="x", format="csv", train_on="prompt", cutoff_len=4, eval_fraction=1.5)
    keys = {p.split(":")[0] for p in info.value.problems}
    assert {"format", "train_on", "cutoff_len", "eval_fraction"} <= keys


def test_from_mapping_names_key_paths_of_unknown_keys_and_wrong_types() -> None:
    raw = {"path": "d.json", "cutoff_len": "long", "seed": True, "sources": "GARD", "bogus": 1}
    with pytest.raises(ConfigError) as info:
        from_mapping(DataConfig, raw, key_path="data", source="sweep.yaml")
    text = str(info.value)
    assert "in sweep.yaml" in text
    for fragment in ("data.cutoff_len: expected int", "data.seed: expected an integer",
                     "data.sources: expected a list", "data.bogus: unknown key"):
        assert fragment in text


def test_from_mapping_runs_value_checks_with_key_paths() -> None:
    with pytest.raises(ConfigError, match=r"data\.overlap_len"):
        from_mapping(DataConfig, {"path": "a", "cutoff_len": 32, "overlap_len": 40},
                     key_path="data")


def test_from_mapping_builds_a_valid_config() -> None:
    cfg = from_mapping(DataConfig, {"path": "a.json", "eval_fraction": 0, "qtypes": ["x"]})
    assert cfg.eval_fraction == 0.0 and isinstance(cfg.eval_fraction, float)
    assert cfg.qtypes == ["x"]


def test_missing_required_key() -> None:
    with pytest.raises(ConfigError, match="path: required"):
        from_mapping(DataConfig, {})


def test_train_file_with_nested_sections(tmp_path: Path) -> None:
    from harness.config import load_train_config

    path = tmp_path / "train.yaml"
    path.write_text("model: tiny\ndata: {path: d.json}\ntraining: {learning_rate: 2e-4, "
                    "max_steps: 3}\nlora: {r: 4, alpha: 8}\nquantization: {mode: 4bit}\n")
    cfg = load_train_config(str(path))
    assert (cfg.training.learning_rate, cfg.lora.r, cfg.quantization.mode) == (2e-4, 4, "4bit")


def test_train_file_problems_carry_nested_key_paths(tmp_path: Path) -> None:
    from harness.config import load_train_config

    path = tmp_path / "train.yaml"
    path.write_text("data: {path: d.json, cutoff_len: long}\ntraining: {scheduler: step, "
                    "epochs: 0}\nquantization: {mode: 2bit}\nextra: 1\n")
    with pytest.raises(ConfigError) as info:
        load_train_config(str(path))
    text = str(info.value)
    for fragment in ("data.cutoff_len", "training.scheduler", "training.epochs",
                     "quantization.mode", "extra: unknown key", str(path)):
        assert fragment in text


@pytest.mark.parametrize("section", [{"data": {"path": "d.json", "format": None}},
                                     {"data": {"path": "d.json", "train_on": None}},
                                     {"data": {"path": "d.json"}, "training": {"scheduler": None}},
                                     {"data": {"path": "d.json"}, "quantization": {"mode": None}}])
def test_a_choice_given_as_null_is_refused(section: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="is not one of"):
        from_mapping(TrainConfig, section)


def test_a_study_choice_given_as_null_is_refused() -> None:
    from harness.config import StudySettings

    with pytest.raises(ConfigError, match="pruner: None is not one of"):
        from_mapping(StudySettings, {"pruner": None})


NON_FINITE = [("lora", "alpha", ".nan"), ("lora", "alpha", ".inf"),
              ("lora", "loraplus_ratio", ".inf"), ("lora", "loraplus_ratio", ".nan"),
              ("training", "epochs", ".inf"), ("training", "max_grad_norm", ".nan"),
              ("training", "learning_rate", "-.inf"), ("samples", "temperature", ".inf"),
              ("data", "eval_fraction", ".nan"), ("training", "epochs", "'inf'")]


@pytest.mark.parametrize(("section", "key", "value"), NON_FINITE)
def test_a_number_that_is_not_finite_is_refused_with_its_key_path(
        tmp_path: Path, section: str, key: str, value: str) -> None:
    from harness.config import load_train_config

    path = tmp_path / "train.yaml"
    sections = {"data": "path: d.json"}
    sections[section] = f"{sections.get(section, 'x: 0')}, {key}: {value}".removeprefix(
        "x: 0, ")
    path.write_text("".join(f"{name}: {{{text}}}\n" for name, text in sections.items()))
    with pytest.raises(ConfigError) as info:
        load_train_config(str(path))
    assert f"{section}.{key}: " in str(info.value)
    assert "not a finite number" in str(info.value)


def test_every_non_finite_number_is_reported_at_once(tmp_path: Path) -> None:
    from harness.config import load_train_config

    path = tmp_path / "train.yaml"
    path.write_text("data: {path: d.json}\nlora: {alpha: .nan, loraplus_ratio: .inf}\n"
                    "training: {epochs: .inf, max_grad_norm: .nan}\n"
                    "samples: {temperature: .inf}\n")
    with pytest.raises(ConfigError) as info:
        load_train_config(str(path))
    found = {p.split(":")[0] for p in info.value.problems if "not a finite number" in p}
    assert found == {"lora.alpha", "lora.loraplus_ratio", "training.epochs",
                     "training.max_grad_norm", "samples.temperature"}


def test_a_time_limit_of_infinity_is_refused() -> None:
    from harness.config import StudySettings

    with pytest.raises(ConfigError, match="timeout: inf is not a finite number"):
        from_mapping(StudySettings, {"timeout": float("inf")})


def test_task_metrics_may_not_take_the_harness_figures_names() -> None:
    from harness.config import EvaluationSettings

    with pytest.raises(ConfigError) as err:
        EvaluationSettings(metrics=["mine:loss", "a:score", "b:score"])
    text = str(err.value)
    assert "'loss' is the name of one of the harness's own figures" in text
    assert "score named twice" in text
