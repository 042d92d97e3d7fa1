"""`harness sweep` and `harness worker` refuse bad arguments before anything runs."""

from __future__ import annotations

import pytest

from harness.cli import main


@pytest.mark.parametrize("args, said", [
    (["sweep", "s.yaml", "--trials", "0"], "--trials: give a whole number of 1 or more"),
    (["sweep", "s.yaml", "--trials", "-1"], "--trials: give a whole number of 1 or more"),
    (["sweep", "s.yaml", "--timeout", "-5"], "--timeout: give a positive number of seconds"),
    (["sweep", "s.yaml", "--study", ""], "--study: '' must not be empty"),
    (["worker", "--study", "a b"], "--study: 'a b' contains ' '"),
    (["sweep", "s.yaml", "--parallel", "0"], "--parallel: give a whole number of 1 or more"),
])
def test_bad_sweep_arguments_are_refused_before_anything_runs(
        capsys: pytest.CaptureFixture[str], args: list[str], said: str) -> None:
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 2
    assert said in capsys.readouterr().err
