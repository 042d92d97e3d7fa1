"""The study-wide cache: entries named by what they depend on, written whole or not at all."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from harness import cache
from harness.config import DataConfig, TrainConfig


def test_entry_depends_on_every_key_but_not_its_order(tmp_path: Path) -> None:
    a = cache.entry(tmp_path, "samples", {"model": "m", "prompts": ["p"]})
    assert a == cache.entry(tmp_path, "samples", {"prompts": ["p"], "model": "m"})
    assert a != cache.entry(tmp_path, "samples", {"model": "m", "prompts": ["q"]})
    assert a != cache.entry(tmp_path, "eval", {"model": "m", "prompts": ["p"]})
    assert a.parent == tmp_path / "samples" and a.suffix == ".json"


def test_base_model_entry_keys_model_and_quantization(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path))
    config = TrainConfig(data=DataConfig(path="train.json"))
    first = cache.base_model_entry("eval", config, split="eval")
    assert first.is_relative_to(tmp_path)
    assert first == cache.base_model_entry("eval", config, split="eval")
    assert first != cache.base_model_entry("eval", config, split="test")
    four_bit = replace(config.quantization, mode="4bit")
    assert first != cache.base_model_entry("eval", replace(config, quantization=four_bit),
                                           split="eval")
    assert first != cache.base_model_entry("eval", replace(config, model=config.model + "-x"),
                                           split="eval")


def test_json_and_pickle_round_trip(tmp_path: Path) -> None:
    cache.write_json(tmp_path / "a" / "x.json", {"loss": 1.5, "rows": [1, 2]})
    assert cache.read_json(tmp_path / "a" / "x.json") == {"loss": 1.5, "rows": [1, 2]}
    cache.write_pickle(tmp_path / "b" / "y.pkl", [(1, 2), {"k": b"v"}])
    assert cache.read_pickle(tmp_path / "b" / "y.pkl") == [(1, 2), {"k": b"v"}]


@pytest.mark.parametrize("content", [b"", b"{\"loss\": 1.", b"\x80\x04\x95 torn"])
def test_a_missing_or_torn_entry_reads_as_none(tmp_path: Path, content: bytes) -> None:
    assert cache.read_json(tmp_path / "absent.json") is None
    assert cache.read_pickle(tmp_path / "absent.pkl") is None
    (tmp_path / "torn.json").write_bytes(content)
    (tmp_path / "torn.pkl").write_bytes(content)
    assert cache.read_json(tmp_path / "torn.json") is None
    assert cache.read_pickle(tmp_path / "torn.pkl") is None


class _Unpicklable:
    def __reduce__(self) -> tuple:
        raise RuntimeError("cannot pickle")


def test_a_failed_write_keeps_the_old_entry_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "k" / "z.pkl"
    cache.write_pickle(path, "old")
    with pytest.raises(RuntimeError):
        cache.write_pickle(path, _Unpicklable())
    assert cache.read_pickle(path) == "old"
    assert sorted(p.name for p in path.parent.iterdir()) == ["z.pkl"]


def test_a_write_interrupted_after_the_temporary_keeps_the_old_entry(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "k" / "z.json"
    cache.write_json(path, {"v": 1})

    def refuse(self: Path, target: os.PathLike) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(Path, "replace", refuse)
    with pytest.raises(KeyboardInterrupt):
        cache.write_json(path, {"v": 2})
    monkeypatch.undo()
    assert cache.read_json(path) == {"v": 1}
    assert sorted(p.name for p in path.parent.iterdir()) == ["z.json"]
