"""`harness sweep --no-run`'s memory table: the estimate of each enqueued trial and of the
corners of the space (the parameters that size memory at their extremes), on a GPU and on the
CPU, against what the study allows. Read from the base model's config alone: nothing loads."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from typing import Any

from rich.table import Table

from harness.config import TrainConfig
from harness.memory.estimate import estimate
from harness.memory.shape import ModelShape, model_shape
from harness.space.file import SpaceFile
from harness.space.params import Param

SIZING = ("lora.r", "training.micro_batch_size", "data.cutoff_len", "quantization.mode",
          "lora.target_modules", "training.gradient_checkpointing", "lora.dora",
          "training.micro_batch_parts", "lora.dropout")
"""Searched parameters that change a trial's memory."""
MAX_CORNERS = 16


ShapeOf = Callable[[str], ModelShape]
"""A base model's shape by its name, each read once."""


def rows_to_size(space: SpaceFile, shape_of: ShapeOf) -> list[tuple[str, dict[str, Any]]]:
    """(name, values) of the enqueued trials, then of the corners of the space."""
    rows = [(name, values) for name, values in zip(space.baselines, space.enqueue,
                                                   strict=True)]
    return rows + corners(space, shape_of)


def corners(space: SpaceFile, shape_of: ShapeOf) -> list[tuple[str, dict[str, Any]]]:
    """Every combination of the lightest and heaviest value of each searched parameter that
    sizes memory (the others at their lows); past `MAX_CORNERS`, the lightest and heaviest
    corners and each parameter heavy alone."""
    lows = {p.name: p.extremes()[0] for p in space.params}
    sizing = [p for p in space.params if p.name in SIZING]
    ends = [_light_heavy(space, p, lows, shape_of) for p in sizing]
    picks = list(itertools.product(*ends))
    if len(picks) > MAX_CORNERS:
        light = tuple(e[0] for e in ends)
        picks = [light, tuple(e[-1] for e in ends)] + [
            (*light[:i], ends[i][-1], *light[i + 1:]) for i in range(len(ends))]
    seen, out = set(), []
    for pick in picks:
        values = {**lows, **{p.name: v for p, v in zip(sizing, pick, strict=True)}}
        key = repr(sorted(values.items(), key=lambda kv: kv[0]))
        if key not in seen:
            seen.add(key)
            out.append(("corner", values))
    return out


def _light_heavy(space: SpaceFile, param: Param, lows: dict[str, Any],
                 shape_of: ShapeOf) -> tuple[Any, ...]:
    """The value of ``param`` that needs the least memory and the one that needs the most."""
    options = param.extremes()
    configs = [space.train_config({**lows, param.name: v}, output_dir="unused")
               for v in options]
    costs = [estimate(c, shape_of(c.model), device="cuda").total_mb for c in configs]
    light, heavy = options[costs.index(min(costs))], options[costs.index(max(costs))]
    return (light,) if light == heavy else (light, heavy)


def memory_table(space: SpaceFile, *, limit_mb: float, where: str, here: str) -> Table:
    """The estimates of `rows_to_size`, on a GPU and on the CPU; ``limit_mb`` is what a trial
    may use here (``where`` says what it is), set against the estimate for device ``here``."""
    table = Table(title=f"memory per trial process (estimate; {where}: {limit_mb:,.0f} MB)")
    for name in ("trial", "r", "batch x len", "quant", "targets", "dropout", "GPU MB",
                 "CPU MB", "fits"):
        table.add_column(name)
    shape_of = functools.cache(model_shape)
    for name, values in rows_to_size(space, shape_of):
        config = space.train_config(values, output_dir="unused")
        gpu, cpu = (estimate(config, shape_of(config.model), device=d) for d in ("cuda", "cpu"))
        mine = gpu if here == "cuda" else cpu
        table.add_row(name, *_settings(config), f"{gpu.total_mb:,.0f}", f"{cpu.total_mb:,.0f}",
                      "yes" if mine.total_mb <= limit_mb else "[red]too big[/]")
    return table


def _settings(config: TrainConfig) -> list[str]:
    t, lora = config.training, config.lora
    ckpt = " ckpt" if t.gradient_checkpointing else ""
    targets = lora.target_modules if isinstance(lora.target_modules, str) else \
        ",".join(m.removesuffix("_proj") for m in lora.target_modules)
    return [str(lora.r), f"{t.micro_batch_size} x {config.data.cutoff_len}{ckpt}",
            config.quantization.mode, targets + (" dora" if lora.dora else ""),
            f"{lora.dropout:g}"]
