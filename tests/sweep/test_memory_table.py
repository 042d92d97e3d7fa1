"""`harness sweep --no-run`'s memory table: the enqueued trials and the corners of the space,
sized from the base model's config alone (the shipped 7B space on this CPU machine, its
weights never downloaded)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.memory import shape
from harness.memory.estimate import estimate
from harness.space.load import load_space
from harness.sweep import memory_table
from harness.sweep.memory_table import corners
from harness.sweep.memory_table import memory_table as table_of

ROOT = Path(__file__).resolve().parents[2]
SEVEN_B = ROOT / "search_spaces" / "qlora-7b.yaml"


def test_the_7b_space_is_sized_from_its_known_shape_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    read: list[str] = []

    def counted(name: str) -> shape.ModelShape:
        read.append(name)
        return shape.model_shape(name)

    monkeypatch.setattr(memory_table, "model_shape", counted)
    space = load_space(str(SEVEN_B))
    table = table_of(space, limit_mb=16_000, where="a 16 GB GPU", here="cuda")
    assert len(read) == 1  # one base model: its config read once for every row
    names = list(table.columns[0].cells)
    assert names[:len(space.baselines)] == space.baselines and "corner" in names
    gpu_mb = [float(c.replace(",", "")) for c in table.columns[6].cells]
    fits = list(table.columns[8].cells)
    assert [f == "yes" for f in fits] == [mb <= 16_000 for mb in gpu_mb]
    assert {"yes", "[red]too big[/]"} <= set(fits)  # this limit cuts through the space


def test_the_corners_span_the_lightest_and_heaviest_trials(tmp_path: Path) -> None:
    space = load_space(str(SEVEN_B))
    model = shape.model_shape(space.train_config({}, output_dir="unused").model)
    found = corners(space, lambda name: model)
    costs = [estimate(space.train_config(v, output_dir="unused"), model, device="cuda").total_mb
             for _, v in found]
    searched = [p for p in space.params if p.name in memory_table.SIZING]
    for param in searched:  # corners take each sizing parameter at its ends only
        assert all(v[param.name] in param.extremes() for _, v in found), param.name
    # no value of the space needs more than the heaviest corner (each parameter alone)
    heaviest = max(costs)
    for param in searched:
        for value in param.extremes():
            values = {**found[costs.index(heaviest)][1], param.name: value}
            alone = estimate(space.train_config(values, output_dir="unused"), model,
                             device="cuda").total_mb
            assert alone <= heaviest + 1e-6
