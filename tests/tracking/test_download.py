"""Files from the store into a directory of the user's: a name the store does not know is an
error naming it, with nothing written; what is delivered replaces only files of its names."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import seeded_store

from harness.errors import HarnessError
from harness.tracking.download import deliver, download, merge_into, staging
from harness.tracking.refs import version_location
from harness.tracking.store import client_for


def test_a_model_the_store_does_not_know_is_named_and_nothing_is_written(
        tmp_path: Path) -> None:
    store = seeded_store(tmp_path / "mlflow.db")  # an empty registry
    client_for(store)
    target = tmp_path / "out"
    with pytest.raises(HarnessError, match="cannot download models:/nope@champion from"), \
            staging(target, force=False, purpose="pull") as (_, tmp):
        download(lambda: version_location("models:/nope@champion", store), store=store,
                 into=tmp, ref="models:/nope@champion")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlflow.db", "mlflow.db.lock"]


def test_delivered_files_replace_only_their_names(tmp_path: Path) -> None:
    target = tmp_path / "adapter"
    (target / "nested").mkdir(parents=True)
    (target / "notes.txt").write_text("mine")
    (target / "adapter_config.json").write_text("old")
    (target / "nested" / "keep.txt").write_text("mine too")
    source = tmp_path / "new"
    (source / "nested").mkdir(parents=True)
    (source / "adapter_config.json").write_text("new")
    (source / "nested" / "weights.bin").write_text("w")
    deliver(source, target)
    assert (target / "adapter_config.json").read_text() == "new"
    assert (target / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in (target / "nested").iterdir()) == ["keep.txt", "weights.bin"]


def test_a_file_where_a_directory_goes_stops_the_move_before_anything_moves(
        tmp_path: Path) -> None:
    target, source = tmp_path / "adapter", tmp_path / "new"
    target.mkdir()
    (target / "nested").write_text("a file of mine")
    (source / "nested").mkdir(parents=True)
    (source / "nested" / "weights.bin").write_text("w")
    (source / "adapter_config.json").write_text("new")
    with pytest.raises(HarnessError, match="in the way"):
        merge_into(source, target)
    assert sorted(p.name for p in target.iterdir()) == ["nested"]  # nothing moved


def test_a_target_that_is_not_empty_needs_force(tmp_path: Path) -> None:
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "x").write_text("mine")
    with pytest.raises(HarnessError, match="is not empty"), \
            staging(tmp_path / "used", force=False, purpose="pull"):
        pass
    with staging(tmp_path / "used", force=True, purpose="pull") as (target, tmp):
        assert tmp.parent == target.parent and tmp.name.startswith(".used.pull-")
    assert not tmp.exists()  # the scratch directory went with the staging
