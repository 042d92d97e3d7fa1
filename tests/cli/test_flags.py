"""Command-line flags made from a config dataclass: every field a flag, lists repeatable."""

from __future__ import annotations

import dataclasses

from helpers import commands

from harness.cli.data import LIST_FLAGS
from harness.cli.flags import values
from harness.config import DataConfig, Decontamination


def test_every_data_option_is_a_data_check_flag() -> None:
    (check,) = [p for name, p in commands() if name == "harness data check"]
    flags = {a.dest for a in check._actions}
    sections = {"decontaminate"}  # a nested section: its own flags, checked below
    assert {f.name for f in dataclasses.fields(DataConfig)} - sections <= flags
    assert {"contamination_" + f.name for f in dataclasses.fields(Decontamination)
            if f.name != "against"} | {"against"} <= flags
    args = check.parse_args(["d", "--no-dedupe", "--newline-window", "4", "--source", "GARD",
                             "--source", "NIDDK", "--refusal-phrase", ""])
    given = values(args, DataConfig, skip=("path",))
    assert given == {"dedupe": False, "newline_window": 4, "sources": ["GARD", "NIDDK"],
                     "refusal_phrases": []}
    assert set(LIST_FLAGS) == {f.name for f in dataclasses.fields(DataConfig)
                               if str(f.type).startswith("list")}
