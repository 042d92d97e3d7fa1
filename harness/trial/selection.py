"""Epochs as a fidelity: a trial is evaluated at every epoch's end, and the adapter it keeps is
its best epoch's, not its last.

A LoRA run often overfits a small dataset in its later epochs: its last eval is then worse than
an earlier one, and a sweep that takes the last value both misjudges the trial and promotes the
worse adapter. Here the best epoch-end adapter's weights are kept on disk in the trial
directory (``best-epoch/``, only the adapter's weights), so a resumed trial still knows it, and
are loaded back before the test eval, the samples and the saved adapter. They stay there after
the trial: a later `--resume` of it starts from its last checkpoint and must still know the best
epoch end before that.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness.config import maximised
from harness.trialdir import BEST_DIR, put_in_place, scratch

WEIGHTS = "adapter_weights.safetensors"
CHOICE = "selection.json"


def epoch_ends(*, total_steps: int, steps_per_epoch: float) -> dict[int, float]:
    """Optimizer step -> the epoch count reached there, for every whole epoch's end within the
    run and for its last step (a fractional epoch, or ``max_steps``)."""
    ends: dict[int, float] = {}
    epoch = 1
    while math.ceil(epoch * steps_per_epoch - 1e-9) < total_steps:
        ends[math.ceil(epoch * steps_per_epoch - 1e-9)] = float(epoch)
        epoch += 1
    ends[total_steps] = round(total_steps / steps_per_epoch, 4)
    return ends


@dataclass(frozen=True)
class Choice:
    """The epoch end whose adapter a trial keeps."""

    step: int
    """The optimizer step of that epoch's end."""
    epoch: float
    """Epochs trained there."""
    loss: float
    """Its eval loss."""
    answers: dict[str, float] | None = None
    """Its task metrics on the eval prompts (when the trial measures them)."""


def ranking_value(objective: str, *, loss: float, answers: dict[str, float] | None) -> float:
    """An epoch end's value for ``objective``, lower better: the eval loss (which orders
    perplexity alike), or a task metric negated (nan when not measured there)."""
    if not maximised(objective):
        return loss
    return -(answers or {}).get(objective.removeprefix("eval/"), math.nan)


class EpochSelection:
    """The best epoch end so far, its adapter weights under ``out/best-epoch``."""

    def __init__(self, out: Path, *, ends: dict[int, float],
                 objective: str = "eval_loss") -> None:
        self.out = out
        self.ends = ends
        """Step -> epochs reached, where the trial's epochs end (see `epoch_ends`)."""
        self.objective = objective
        """What an epoch end is judged by: eval_loss, perplexity, or eval/METRIC."""
        self.best: Choice | None = None

    def resume(self, step: int) -> None:
        """Take up the choice an earlier run of this trial made up to ``step`` (where it goes
        on from); one made after it belongs to steps that will be trained again."""
        try:
            found = Choice(**json.loads((self.out / BEST_DIR / CHOICE).read_text()))
        except (OSError, ValueError, TypeError):
            return
        if found.step <= step and (self.out / BEST_DIR / WEIGHTS).is_file():
            self.best = found

    def consider(self, model: Any, *, step: int, loss: float, main: bool,
                 answers: dict[str, float] | None = None) -> bool:
        """Keep the adapter as the best if ``step`` ends an epoch and its value for the
        objective beats the best so far; whether it did. Only the main process (``main``)
        writes."""
        value = ranking_value(self.objective, loss=loss, answers=answers)
        if step not in self.ends or not math.isfinite(value):
            return False
        if self.best is not None and value >= ranking_value(
                self.objective, loss=self.best.loss, answers=self.best.answers):
            return False
        self.best = Choice(step=step, epoch=self.ends[step], loss=loss, answers=answers)
        if main:
            self._save(model, self.best)
        return True

    def _save(self, model: Any, choice: Choice) -> None:
        from peft import get_peft_model_state_dict
        from safetensors.torch import save_file

        tmp = scratch(self.out, BEST_DIR)
        weights = {k: v.detach().cpu().contiguous()
                   for k, v in get_peft_model_state_dict(model).items()}
        save_file(weights, str(tmp / WEIGHTS))
        (tmp / CHOICE).write_text(json.dumps(asdict(choice)))
        put_in_place(self.out, tmp, entry=BEST_DIR)

    def restore(self, model: Any, *, last_step: int) -> Choice | None:
        """Load the best epoch's weights into ``model`` unless the last step is the best;
        the choice made (None when no epoch end had a finite loss)."""
        if self.best is not None and self.best.step != last_step:
            from peft import set_peft_model_state_dict
            from safetensors.torch import load_file

            set_peft_model_state_dict(model, load_file(str(self.out / BEST_DIR / WEIGHTS)))
        return self.best

