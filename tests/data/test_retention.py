"""The general text of the forgetting check: the shipped sample, a user's own, or none."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.config import RetentionSettings
from harness.data.render import ChatRenderer
from harness.data.retention import SHIPPED, retention_data
from harness.errors import DataError


def test_the_shipped_sample_is_general_text_unlike_any_training_sample(
        tiny_tokenizer: Any) -> None:
    examples, fingerprint = retention_data(RetentionSettings(), tokenizer=tiny_tokenizer,
                                           renderer=ChatRenderer(tiny_tokenizer))
    assert len(examples) == len(json.loads(SHIPPED.read_text())) and fingerprint
    shipped = {r["instruction"] for r in json.loads(SHIPPED.read_text())}
    samples = Path(__file__).resolve().parents[2] / "datasets" / "samples" / "alpaca.json"
    assert not shipped & {r["instruction"] for r in json.loads(samples.read_text())}


def test_off_means_nothing_is_read(tiny_tokenizer: Any) -> None:
    settings = RetentionSettings(enabled=False, path="/nonexistent")
    assert retention_data(settings, tokenizer=tiny_tokenizer,
                          renderer=ChatRenderer(tiny_tokenizer)) == ([], "")


def test_a_users_own_set_is_cut_to_max_records(tmp_path: Path, tiny_tokenizer: Any) -> None:
    path = tmp_path / "general.json"
    path.write_text(json.dumps([{"instruction": f"Say {i}.", "output": f"{i}."}
                                for i in range(10)]))
    examples, _ = retention_data(RetentionSettings(path=str(path), max_records=4),
                                 tokenizer=tiny_tokenizer, renderer=ChatRenderer(tiny_tokenizer))
    assert len(examples) == 4


def test_a_missing_or_unusable_set_names_the_file_and_what_to_do(
        tmp_path: Path, tiny_tokenizer: Any) -> None:
    renderer = ChatRenderer(tiny_tokenizer)
    with pytest.raises(DataError, match="no such file"):
        retention_data(RetentionSettings(path=str(tmp_path / "gone.json")),
                       tokenizer=tiny_tokenizer, renderer=renderer)
    path = tmp_path / "long.json"
    path.write_text(json.dumps([{"instruction": "word " * 200, "output": "ok"}]))
    with pytest.raises(DataError, match=r"retention\.cutoff_len") as err:
        retention_data(RetentionSettings(path=str(path), cutoff_len=16),
                       tokenizer=tiny_tokenizer, renderer=renderer)
    assert str(path) in str(err.value)
