from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.config import DataConfig
from harness.data.load import detect_format, load_dataset
from harness.errors import DataError

ALPACA = [{"instruction": f"task {i}", "output": f"done {i}"} for i in range(10)]
CHAT = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}


def test_detection_by_suffix_and_first_record(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps(ALPACA))
    (tmp_path / "c.jsonl").write_text(json.dumps(CHAT) + "\n")
    (tmp_path / "t.txt").write_text("text")
    assert detect_format(tmp_path / "a.json") == "alpaca"
    assert detect_format(tmp_path / "c.jsonl") == "chat"
    assert detect_format(tmp_path / "t.txt") == "rawtext"
    (tmp_path / "d.xml").write_text("<x/>")
    with pytest.raises(DataError, match="both XML and JSON"):
        detect_format(tmp_path)


def test_unknown_layout_asks_for_a_format(tmp_path: Path) -> None:
    (tmp_path / "data.csv").write_text("a,b\n")
    with pytest.raises(DataError, match="pass --format"):
        load_dataset(DataConfig(path=str(tmp_path)))


def test_a_bad_file_in_a_directory_is_reported_and_the_rest_kept(tmp_path: Path) -> None:
    (tmp_path / "good.json").write_text(json.dumps(ALPACA))
    (tmp_path / "bad.json").write_text("[{")
    (tmp_path / "notes.md").write_text("hello")
    data = load_dataset(DataConfig(path=str(tmp_path), format="alpaca"))
    assert len(data.records) == 10
    reasons = {(p.reason, Path(p.path).name) for p in data.problems}
    assert reasons == {("unreadable_file", "bad.json"), ("ignored_file", "notes.md")}
    with pytest.raises(DataError, match=r"bad\.json: malformed JSON"):
        data.require_usable(allow_defects=False)
    data.require_usable(allow_defects=True)


def test_the_same_bad_file_alone_is_an_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("[{")
    with pytest.raises(DataError, match="malformed JSON at line 1"):
        load_dataset(DataConfig(path=str(bad)))


def test_nothing_usable_is_an_error_for_training(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text(json.dumps([{"instruction": "x", "output": "As an AI language model, no"}]))
    data = load_dataset(DataConfig(path=str(path)))
    with pytest.raises(DataError, match="no usable records"):
        data.require_usable(allow_defects=False)


def test_format_files_do_not_apply_to_conversations(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps(CHAT) + "\n")
    with pytest.raises(DataError, match="chat template"):
        load_dataset(DataConfig(path=str(path), format_file="chat"))


def test_fingerprint_follows_content_not_location(tmp_path: Path) -> None:
    one, two = tmp_path / "one.json", tmp_path / "two.json"
    one.write_text(json.dumps(ALPACA))
    two.write_text(json.dumps(ALPACA, indent=2))
    a = load_dataset(DataConfig(path=str(one)))
    b = load_dataset(DataConfig(path=str(two)))
    assert a.fingerprint == b.fingerprint
    two.write_text(json.dumps([*ALPACA[:9], {"instruction": "task 9", "output": "other"}]))
    assert load_dataset(DataConfig(path=str(two))).fingerprint != a.fingerprint



@pytest.mark.parametrize("layout", ["file", "directory"])
def test_the_split_follows_the_data_not_where_it_lies(tmp_path: Path, layout: str) -> None:
    """Moving the data (a resumed study run from elsewhere, a bench in a temporary folder)
    must not move records between train, eval and test."""
    records = [{"instruction": f"task {i}", "output": f"answer {i}"} for i in range(40)]

    def split_at(where: Path) -> list[set[int]]:
        (where / "data").mkdir(parents=True)
        (where / "data" / "tasks.json").write_text(json.dumps(records))
        path = where / "data" if layout == "directory" else where / "data" / "tasks.json"
        split = load_dataset(DataConfig(path=str(path), eval_fraction=0.2,
                                        test_fraction=0.2)).split
        return [{r.index for r in side} for side in (split.train, split.eval, split.test)]

    here, there = split_at(tmp_path / "a"), split_at(tmp_path / "b" / "elsewhere")
    assert here == there and all(here)

def test_links_fifos_and_empty_files_in_a_directory_are_reported_never_opened(
        tmp_path: Path) -> None:
    import os

    (tmp_path / "good.txt").write_text("Some text long enough to become a chunk of its own. " * 4)
    (tmp_path / "empty.txt").write_text("")
    os.mkfifo(tmp_path / "pipe.txt")  # reading it would wait for a writer forever
    (tmp_path / "gone.txt").symlink_to(tmp_path / "moved-away.txt")
    data = load_dataset(DataConfig(path=str(tmp_path), format="rawtext"))
    assert data.records
    reasons = {Path(p.path).name: p.reason for p in data.problems}
    assert reasons == {"empty.txt": "empty_file", "pipe.txt": "not_a_file",
                       "gone.txt": "broken_link"}
    assert data.defects == []  # reported, but no reason to refuse the rest (an editor's lock)
    assert "moved-away.txt" in next(p.detail for p in data.problems if p.reason == "broken_link")


def test_an_empty_data_file_is_an_error_naming_it(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(DataError, match=r"empty\.txt: the file is empty"):
        load_dataset(DataConfig(path=str(empty)))
