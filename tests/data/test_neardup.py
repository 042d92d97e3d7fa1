"""Near-duplicate clusters: found across formats, one record kept per group of alike records,
the same one whatever the file order, and clusters never split across train, eval and test."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from harness.config import DataConfig, Decontamination
from harness.data.load import load_dataset
from harness.data.neardup import find_clusters
from harness.data.shingles import shingles
from harness.errors import ConfigError

TOPICS = ["volcanoes", "tides", "glaciers", "deserts", "comets", "coral reefs", "monsoons",
          "earthquakes", "auroras", "rainbows", "geysers", "caves"]


VOCABULARY = [f"{a}{b}" for a in "bcdfghklmnprst" for b in ("a", "e", "i", "o", "u", "ai")]


def _answer(topic: str) -> list[str]:
    """80 words of its own for each topic, so that no two topics look alike."""
    rng = random.Random(topic)
    return [rng.choice(VOCABULARY) for _ in range(80)]


def _records(copies: int = 3) -> list[dict[str, str]]:
    """Each topic once, and ``copies`` - 1 paraphrases, each with one word changed (an
    estimated similarity about 0.93)."""
    out = []
    for topic in TOPICS:
        words = _answer(topic)
        out.append({"instruction": f"Explain {topic}.", "output": " ".join(words)})
        for k in range(copies - 1):
            changed = words[:]
            changed[20 + 10 * k] = "zzz"
            out.append({"instruction": f"Explain {topic}!", "output": " ".join(changed)})
    return out


def _write(path: Path, records: list[dict[str, str]]) -> str:
    path.write_text(json.dumps(records))
    return str(path)


def test_paraphrases_cluster_and_one_of_each_is_kept(tmp_path: Path) -> None:
    data = load_dataset(DataConfig(path=_write(tmp_path / "d.json", _records()),
                                   eval_fraction=0.0, test_fraction=0.0))
    assert len(data.records) == len(TOPICS)
    assert data.skipped() == {"near_duplicate": 2 * len(TOPICS)}
    assert len(data.cleaning.clusters) == len(TOPICS)
    kept = {r.index for r in data.records}
    for cluster in data.cleaning.clusters:
        assert cluster[0].index in kept and not {r.index for r in cluster[1:]} & kept
    problem = data.problems[0]
    assert "near-duplicate of" in problem.detail and "record" in problem.detail


def test_the_kept_record_does_not_depend_on_file_order(tmp_path: Path) -> None:
    records = _records()
    shuffled = records[:]
    random.Random(3).shuffle(shuffled)
    kept = []
    for name, recs in (("a.json", records), ("b.json", shuffled)):
        data = load_dataset(DataConfig(path=_write(tmp_path / name, recs), eval_fraction=0.0,
                                       test_fraction=0.0))
        kept.append(sorted(r.content_key for r in data.records))
    assert kept[0] == kept[1]
    other_seed = load_dataset(DataConfig(path=str(tmp_path / "a.json"), eval_fraction=0.0,
                                         test_fraction=0.0, seed=7))
    assert sorted(r.content_key for r in other_seed.records) != kept[0]


def test_a_chain_keeps_records_that_are_not_alike() -> None:
    words = [f"w{i}" for i in range(60)]
    # a ~ b and b ~ c at about 0.8, a and c at about 0.6: one cluster, two kept
    a, b, c = (" ".join(words[s:s + 40]) for s in (0, 5, 10))
    clusters = find_clusters([a, b, c], threshold=0.75)
    assert clusters.members == [[0, 1, 2]]
    assert clusters.similarity(0, 2) < 0.75 <= clusters.similarity(0, 1)


def test_clusters_across_formats(tmp_path: Path) -> None:
    chat = tmp_path / "chat.jsonl"
    rows = [{"messages": [{"role": "user", "content": r["instruction"]},
                          {"role": "assistant", "content": r["output"]}]} for r in _records(2)]
    chat.write_text("\n".join(json.dumps(r) for r in rows))
    data = load_dataset(DataConfig(path=str(chat), eval_fraction=0.0, test_fraction=0.0))
    assert data.skipped() == {"near_duplicate": len(TOPICS)}


def _sides(split) -> dict[tuple[str, int], str]:
    return {(r.path, r.index): side for side, recs in
            (("train", split.train), ("eval", split.eval), ("test", split.test)) for r in recs}


def test_without_dedupe_no_cluster_straddles_the_split(tmp_path: Path) -> None:
    data = load_dataset(DataConfig(path=_write(tmp_path / "d.json", _records(4)),
                                   dedupe=False, eval_fraction=0.25, test_fraction=0.25))
    assert len(data.records) == 4 * len(TOPICS) and data.split.eval and data.split.test
    sides = _sides(data.split)
    for cluster in data.cleaning.clusters:
        assert len({sides[(r.path, r.index)] for r in cluster}) == 1
    assert data.cleaning.moved > 0  # alone, each record is its own group and would scatter
    assert "moved split" in data.cleaning.line()


def test_with_dedupe_no_two_alike_records_remain_on_any_sides(tmp_path: Path) -> None:
    data = load_dataset(DataConfig(path=_write(tmp_path / "d.json", _records(4)),
                                   eval_fraction=0.25, test_fraction=0.25))
    texts = [r.plain_text for r in data.records]
    assert find_clusters(texts, threshold=0.8).members == []


def test_off_finds_nothing_and_yaml_off_reads_as_off(tmp_path: Path) -> None:
    path = _write(tmp_path / "d.json", _records())
    assert DataConfig(path=path, near_dup=False).near_dup == "off"  # type: ignore[arg-type]
    assert DataConfig(path=path, near_dup="0.9").near_dup == 0.9  # type: ignore[arg-type]
    data = load_dataset(DataConfig(path=path, near_dup="off", eval_fraction=0.0,
                                   test_fraction=0.0))
    assert len(data.records) == 3 * len(TOPICS) and not data.cleaning.clusters
    with pytest.raises(ConfigError, match="near_dup"):
        DataConfig(path=path, near_dup=1.5)


def test_the_fingerprint_changes_with_the_settings(tmp_path: Path) -> None:
    path = _write(tmp_path / "d.json", [{"instruction": f"task {i}", "output": f"done {i}"}
                                        for i in range(20)])
    bench = _write(tmp_path / "b.json", [{"instruction": "something else", "output": "x"}])
    prints = {load_dataset(DataConfig(path=path, **kw)).fingerprint for kw in (
        {}, {"near_dup": 0.9}, {"near_dup": "off"}, {"dedupe": False},
        {"decontaminate": Decontamination(against=[bench])},
        {"decontaminate": Decontamination(ngram=13)})}
    assert len(prints) == 6
    # the same records and settings: the same fingerprint
    assert load_dataset(DataConfig(path=path)).fingerprint in prints


def test_shingles_are_stable_across_processes() -> None:
    # word hashes must not come from Python's salted hash(), or clusters would change from
    # run to run: two interpreters with different hash seeds must agree with this one
    code = ("from harness.data.shingles import shingles; "
            "print(shingles('The same few words, again.', 3).tolist())")
    here = str(shingles("The same few words, again.", 3).tolist())
    for seed in ("1", "2"):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True, env={**os.environ, "PYTHONHASHSEED": seed}).stdout
        assert out.strip() == here


def test_the_outcome_is_cached_for_the_trials(tmp_path: Path, monkeypatch) -> None:
    from harness.data import cleaned_cache

    config = DataConfig(path=_write(tmp_path / "d.json", _records(4)), dedupe=False,
                        eval_fraction=0.25, test_fraction=0.25)
    first = load_dataset(config, cache=tmp_path / "home")
    monkeypatch.setattr(cleaned_cache, "clean", _must_not_run)
    again = load_dataset(config, cache=tmp_path / "home")
    assert [r.index for r in again.split.test] == [r.index for r in first.split.test]
    assert again.fingerprint == first.fingerprint and again.cleaning == first.cleaning
    with pytest.raises(AssertionError, match="computed again"):  # another setting: another entry
        load_dataset(DataConfig(path=config.path, near_dup=0.9), cache=tmp_path / "home")


def _must_not_run(*args: object) -> None:
    raise AssertionError("computed again")
