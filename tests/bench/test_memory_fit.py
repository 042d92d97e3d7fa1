"""bench/memory_estimate.py --fit: the CPU's figures are fitted from measured peaks, not typed
in; fitted to peaks that a known set of figures produced, it finds those figures again."""

from __future__ import annotations

import argparse
import dataclasses
import importlib
from pathlib import Path
from types import ModuleType

import pytest

from harness.memory.estimate import CPU_FIT, CpuFit, estimate
from harness.memory.known import KNOWN
from harness.memory.shape import shape_from_config

ROOT = Path(__file__).resolve().parents[2]
SMOLLM = "HuggingFaceTB/SmolLM2-135M-Instruct"


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """bench/memory_estimate.py, its folder on the path for this test only."""
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    return importlib.import_module("memory_estimate")


def test_the_fit_finds_the_figures_that_made_the_peaks(tmp_path: Path,
                                                      bench: ModuleType) -> None:
    truth = CpuFit(runtime_mb=512.0, slack=0.3, slack_checkpointed=1.2, dequantized=2.0)
    shape = shape_from_config(KNOWN[SMOLLM], source=SMOLLM)
    rows = []
    for label, _, settings in bench.MATRIX:
        config = bench.config_of("m", settings, text=tmp_path / "corpus.txt", out=tmp_path / "out")
        peak = estimate(config, shape, device="cpu", cpu=truth).total_mb
        rows.append(bench.Row(label, config, shape, peak))
    fitted = bench.fit(rows)
    for name in ("runtime_mb", "slack", "slack_checkpointed", "dequantized"):
        assert getattr(fitted, name) == pytest.approx(getattr(truth, name), abs=1e-3), name


def test_a_figure_no_config_depends_on_keeps_its_value(tmp_path: Path,
                                                     bench: ModuleType) -> None:
    truth = dataclasses.replace(CPU_FIT, runtime_mb=512.0, slack=0.3)
    shape = shape_from_config(KNOWN[SMOLLM], source=SMOLLM)
    rows = []
    for label, _, settings in bench.MATRIX[:4]:  # full precision, no checkpointing: two figures
        config = bench.config_of("m", settings, text=tmp_path / "corpus.txt", out=tmp_path / "out")
        peak = estimate(config, shape, device="cpu", cpu=dataclasses.replace(
            truth, slack_checkpointed=9.0, dequantized=9.0)).total_mb  # not seen: no effect
        rows.append(bench.Row(label, config, shape, peak))
    fitted = bench.fit(rows)
    assert (fitted.runtime_mb, fitted.slack) == pytest.approx((512.0, 0.3), abs=1e-3)
    assert (fitted.slack_checkpointed, fitted.dequantized) == \
        (CPU_FIT.slack_checkpointed, CPU_FIT.dequantized)


def test_the_harness_keeps_the_fit_of_the_recorded_peaks_rounded(
        tmp_path: Path, bench: ModuleType, harness_home: Path) -> None:
    args = argparse.Namespace(measured=ROOT / "bench" / "memory_peaks_cpu.jsonl", model=None,
                              save=None)
    rows = list(bench.measured_rows(bench.MATRIX, args, work=tmp_path, device="cpu"))
    fitted = bench.fit([row for row in rows if not row.held_out])
    assert fitted.runtime_mb == pytest.approx(CPU_FIT.runtime_mb, abs=5)
    for name in ("slack", "slack_checkpointed", "dequantized"):
        assert getattr(fitted, name) == pytest.approx(getattr(CPU_FIT, name), abs=0.05), name


def test_too_few_configs_to_tell_the_figures_apart_are_refused(tmp_path: Path,
                                                                bench: ModuleType) -> None:
    shape = shape_from_config(KNOWN[SMOLLM], source=SMOLLM)
    label, _, settings = bench.MATRIX[0]
    config = bench.config_of("m", settings, text=tmp_path / "corpus.txt", out=tmp_path / "out")
    with pytest.raises(SystemExit, match="cannot tell 2 figures apart"):
        bench.fit([bench.Row(label, config, shape, 3000.0)])
