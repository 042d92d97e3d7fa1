"""The `harness` command as a whole: it runs as `python -m harness`, and every flag of every
command says what it does."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from helpers import ROOT, commands


def test_python_dash_m_harness_runs(tmp_path: Path) -> None:
    env = {**os.environ, "HARNESS_HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "harness", "data", "check",
                           str(ROOT / "datasets" / "samples" / "alpaca.json"), "--json"],
                          capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["format"] == "alpaca"


def test_every_flag_of_every_command_says_what_it_does() -> None:
    missing = [f"{name} {'/'.join(a.option_strings) or a.dest}"
               for name, parser in commands() for a in parser._actions
               if not isinstance(a, argparse._SubParsersAction | argparse._HelpAction)
               and not a.help and a.dest != "version"]
    assert not missing


def test_the_choices_of_a_flag_are_those_of_its_config_field() -> None:
    from typing import get_args

    from harness.config import ComputeDtype
    from harness.protocol import EXIT_CODES, Failure

    (export,) = [p for name, p in commands() if name == "harness export"]
    (dtype,) = [a for a in export._actions if a.dest == "dtype"]
    assert list(dtype.choices or []) == list(get_args(ComputeDtype))
    (train,) = [p for name, p in commands() if name == "harness train"]
    for reason in get_args(Failure):  # its help lists the exit codes the protocol gives
        assert f"{EXIT_CODES[reason]} {reason}" in str(train.description)
