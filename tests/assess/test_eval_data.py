"""What `harness eval` scores of a study: its split as the trials drew it, named and batched as
they named and batched it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.assess.data import from_study
from harness.config import TrainConfig, from_mapping


def test_a_study_split_is_named_and_batched_as_its_trials_scored_it(tmp_path: Path,
                                                                      tiny_tokenizer: Any) -> None:
    path = tmp_path / "rules.json"
    path.write_text(json.dumps([{"instruction": f"Say {i}.", "input": "", "output": f"{i}"}
                                for i in range(40)]))
    config = from_mapping(TrainConfig, {
        "data": {"path": str(path), "format": "alpaca", "eval_fraction": 0.25,
                 "test_fraction": 0.25},
        "training": {"micro_batch_size": 3}})
    data = from_study(config, study="s", split="test", tokenizer=tiny_tokenizer, cap=None)
    # the trial run's test input is named `rules.json test`: one dataset in MLflow, not two
    assert data.name == "rules.json test"
    # an 8-bit model's loss moves with the batch: the trials' micro-batch reproduces theirs
    assert data.batch_size == 3
    assert data.records and all(r.path == str(path) for r in data.records)
