"""What every trial would trip over, found once before any trial starts: a search space edited
in a way the study cannot follow, and data that cannot train."""

from __future__ import annotations

import json
from dataclasses import asdict

from harness.errors import ConfigError, DataError, HarnessError
from harness.space.checks import space_changes
from harness.study.record import DATA_CLEANING
from harness.sweep.context import SweepContext


def preflight(ctx: SweepContext, *, data: bool = True) -> None:
    """Refuse a space the study cannot follow; with ``data`` (a machine that only creates the
    study may not hold the data), check the data too."""
    if not ctx.joining:
        changed = space_changes(ctx.space, ctx.study.get_trials(deepcopy=False))
        if changed:
            raise ConfigError([*changed, f"Optuna cannot change a parameter's choices, kind "
                               f"or log scale within one study: run this space as a new "
                               f"study (--study {ctx.name}-2), or restore the file"],
                              source=ctx.space.path)
    if data:
        check_data(ctx)


def check_data(ctx: SweepContext) -> None:
    """The data of every distinct data setting the space can give (searched data keys at each
    edge), checked as a trial checks it; a problem is named by file and record, and by the
    searched values that lead to it."""
    from harness.data.preflight import check_trial_data

    seen: set[str] = set()
    for values in ctx.space.edge_values():
        config = ctx.space.train_config(values, output_dir="unused")
        key = json.dumps([config.model, asdict(config.data), asdict(config.retention)],
                         sort_keys=True)
        if key in seen:
            continue
        seen.add(key)
        try:
            checked = check_trial_data(config)
        except DataError as err:
            searched = {k: v for k, v in values.items() if k.startswith("data.")}
            if not searched:
                raise
            raise HarnessError(f"with {', '.join(f'{k}={v}' for k, v in searched.items())}"
                               f" (searched): {err}") from None
        ctx.console.print(checked.line(), markup=False)
        if checked.cleaning and DATA_CLEANING not in ctx.study.user_attrs:
            ctx.study.set_user_attr(DATA_CLEANING, checked.cleaning)
