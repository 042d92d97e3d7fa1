"""The encoded splits cache: a second read of the same data is served from HARNESS_HOME with
exactly the first read's examples, and anything that changes encoding misses it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import harness.data.ready as ready_module
from harness.config import DataConfig
from harness.data.ready import ready_for_training

ROWS = [{"instruction": f"Question number {i}: what is {i} plus one?",
         "output": f"The answer is {i + 1}, because {i} and one make {i + 1}."}
        for i in range(40)]


@pytest.fixture
def encodes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many records each call of the encoder was given."""
    calls: list[int] = []
    real = ready_module.encode_all

    def counting(records: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(len(records))
        return real(records, *args, **kwargs)

    monkeypatch.setattr(ready_module, "encode_all", counting)
    return calls


def data_file(tmp_path: Path, rows: list[dict[str, str]]) -> Path:
    path = tmp_path / "data.json"
    path.write_text(json.dumps(rows))
    return path


def pairs(ready: Any) -> list[Any]:
    return [(rec, enc) for side in (ready.train, ready.evals, ready.tests) for rec, enc in side]


def test_the_second_read_is_served_from_the_cache_with_the_same_examples(
        tmp_path: Path, tiny_tokenizer: Any, encodes: list[int]) -> None:
    config = DataConfig(path=str(data_file(tmp_path, ROWS)), eval_fraction=0.2, cutoff_len=256)
    home = tmp_path / "home"
    first = ready_for_training(config, tiny_tokenizer, cache=home)
    assert encodes == [28, 8, 4]  # train, eval and test
    again = ready_for_training(config, tiny_tokenizer, cache=home)
    assert encodes == [28, 8, 4]  # nothing tokenized the second time
    assert pairs(again) == pairs(first)
    assert pairs(first) == pairs(ready_for_training(config, tiny_tokenizer))  # and uncached
    assert list((home / "encoded").iterdir())


@pytest.mark.parametrize("change", ["record", "cutoff_len", "train_on", "tokenizer"])
def test_what_changes_encoding_misses_the_cache(tmp_path: Path, tiny_tokenizer: Any,
                                                encodes: list[int], change: str) -> None:
    home = tmp_path / "home"
    config = DataConfig(path=str(data_file(tmp_path, ROWS)), eval_fraction=0.2, cutoff_len=256)
    ready_for_training(config, tiny_tokenizer, cache=home)
    tokenizer = tiny_tokenizer
    if change == "record":
        edited = [dict(r) for r in ROWS]
        edited[3]["output"] = "A different answer."
        data_file(tmp_path, edited)
    elif change == "cutoff_len":
        config = DataConfig(path=config.path, eval_fraction=0.2, cutoff_len=320)
    elif change == "train_on":
        config = DataConfig(path=config.path, eval_fraction=0.2, cutoff_len=256, train_on="all")
    else:
        from copy import deepcopy

        tokenizer = deepcopy(tiny_tokenizer)
        tokenizer.chat_template = "{{ messages }}"
    fresh = ready_for_training(config, tokenizer, cache=home)
    assert len(encodes) == 6
    assert pairs(fresh) == pairs(ready_for_training(config, tokenizer))


def test_a_damaged_entry_is_encoded_again(tmp_path: Path, tiny_tokenizer: Any,
                                          encodes: list[int]) -> None:
    home = tmp_path / "home"
    config = DataConfig(path=str(data_file(tmp_path, ROWS)), eval_fraction=0.2, cutoff_len=256)
    first = ready_for_training(config, tiny_tokenizer, cache=home)
    (entry,) = (home / "encoded").iterdir()
    entry.write_bytes(entry.read_bytes()[:50])  # cut short, as by a full disk
    assert pairs(ready_for_training(config, tiny_tokenizer, cache=home)) == pairs(first)
    assert len(encodes) == 6
    assert [p.name for p in (home / "encoded").iterdir()] == [entry.name]  # no temp file left
