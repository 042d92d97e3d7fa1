"""`harness sweep`, `harness worker` and `harness ui` refuse bad arguments before anything runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli import main


@pytest.mark.parametrize("args, said", [
    (["sweep", "s.yaml", "--trials", "0"], "--trials: give a whole number of 1 or more"),
    (["sweep", "s.yaml", "--trials", "-1"], "--trials: give a whole number of 1 or more"),
    (["sweep", "s.yaml", "--timeout", "-5"], "--timeout: give a positive number of seconds"),
    (["sweep", "s.yaml", "--study", ""], "--study: '' must not be empty"),
    (["worker", "--study", "a b"], "--study: 'a b' contains ' '"),
    (["sweep", "s.yaml", "--parallel", "0"], "--parallel: give a whole number of 1 or more"),
    (["sweep", "s.yaml", "--timeout", "inf"], "--timeout: give a positive number of seconds"),
    (["sweep", "s.yaml", "--timeout", "nan"], "--timeout: give a positive number of seconds"),
    (["ui", "--port", "0"], "--port: give a port from 1 to 65535"),
    (["ui", "--port", "http"], "--port: give a port from 1 to 65535"),
])
def test_bad_sweep_arguments_are_refused_before_anything_runs(
        capsys: pytest.CaptureFixture[str], args: list[str], said: str) -> None:
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 2
    assert said in capsys.readouterr().err


def test_a_non_finite_setting_stops_sweep_no_run_before_the_study_is_made(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    space = tmp_path / "s.yaml"
    space.write_text("data: {path: d.json}\nlora: {alpha: .nan}\ntraining: {epochs: .inf}\n"
                     "search:\n  lora.r: [4, 8]\n  training.learning_rate: "
                     "{low: 1.0e-5, high: .inf}\n")
    storage = tmp_path / "optuna.journal"
    assert main(["sweep", str(space), "--no-run", "--storage", str(storage)]) == 2
    err = capsys.readouterr().err
    for key in ("lora.alpha: nan", "training.epochs: inf",
                "search.training.learning_rate.high: inf"):
        assert f"{key} is not a finite number" in err, key
    assert not storage.exists()
