"""Trials of the search-quality bench (bench/search_quality.py): trained with the harness's own
loop in this process, on one base model loaded once per dataset, each trial a fresh LoRA
adapter taken off again after it; a trial another method already trained to its end is
replayed, not trained again."""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.config import TrainConfig, from_mapping
from harness.protocol import Event

if TYPE_CHECKING:
    from harness.trial.loop import TrainState
    from harness.trial.selection import EpochSelection

# The searched space, as every method sees it.
RANKS = [4, 8, 16, 32]
PER_RANK = [0.25, 1.0, 2.0]
LR = (3e-5, 3e-3)  # the grid's range
EPOCHS = (1, 3)
GRID_LR = [3e-5, 1e-4, 3e-4, 1e-3, 3e-3]
# the harness's names, so that its start knows them
R, PER, LRATE, EP = ("lora.r", "lora.alpha_per_rank", "training.learning_rate",
                     "training.epochs")
WEBUI = {R: 32, PER: 2.0, LRATE: 3e-4, EP: 3}


@dataclass
class Outcome:
    """One trial as the bench saw it."""

    params: dict[str, Any]
    steps: int
    """Optimizer steps trained (all of them, or up to the prune)."""
    pruned: bool
    value: float
    """What the method judges it by: the eval loss it chose (best epoch's or last)."""
    evals: dict[int, float] = field(default_factory=dict)
    test: float = math.nan
    """Test loss of the adapter it kept (a complete trial's)."""


@dataclass
class Trained:
    """A trial trained to its end, kept so that another method asking for the same trial
    replays it instead of training it again (training is deterministic on the CPU: same
    seed, same data order, same result)."""

    steps: int
    evals: dict[int, float]
    last_test: float
    """Test loss of the adapter at the trial's end."""
    best: tuple[float, float] | None
    """Eval and test loss of the best epoch end's adapter."""

    def replay(self, params: dict[str, Any], *, on_eval: Callable[[int, float, int], None],
               keep_best: bool) -> Outcome:
        """The outcome the asking method would have seen, its pruner consulted at each eval."""
        for step, loss in sorted(self.evals.items()):
            try:
                on_eval(step, loss, self.steps)
            except Pruned:
                return Outcome(params, step, True, math.nan,
                               {s: v for s, v in self.evals.items() if s <= step})
        if keep_best and self.best:
            value, test = self.best
        else:
            value, test = self.evals[max(self.evals)], self.last_test
        return Outcome(params, self.steps, False, value, dict(self.evals), test)


class Pruned(Exception):
    """Raised from an eval to stop a trial its method prunes."""


class Collector:
    """The trial's events, kept in memory (the trial's `Events`)."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        self.events.append(event)

    def close(self) -> None:
        """Nothing to close."""


class Bench:
    """One dataset: its encoded splits, the base model loaded once, and trials on it."""

    def __init__(self, config: TrainConfig, *, scratch: Path) -> None:
        import torch
        from accelerate import Accelerator

        from harness.models import load_model
        from harness.trial.setup import prepare_data

        self.config = config
        self.scratch = scratch
        self.data = prepare_data(config)
        if not self.data.tests:
            raise SystemExit(f"{config.data.path}: no test split (too few documents); give "
                             "more data")
        self.base = load_model(config.model, config.quantization)
        self.accelerator = Accelerator(cpu=not torch.cuda.is_available())
        self.trained: dict[str, Trained] = {}
        """Complete trials by their params and seed."""
        self.base_loss = self.loss(self.base, self.data.evals)
        """The base model's eval loss."""
        self.base_test = self.loss(self.base, self.data.tests)
        """And its test loss."""

    def run(self, params: dict[str, Any], *, seed: int,
            on_eval: Callable[[int, float, int], None], keep_best: bool) -> Outcome:
        """One trial of ``params``: ``on_eval(step, loss, total)`` may raise Pruned; trained,
        or replayed when an earlier method trained the same trial to its end."""
        key = json.dumps([params, seed], sort_keys=True)
        if key not in self.trained:
            trained = self.train(params, seed=seed, on_eval=on_eval)
            if isinstance(trained, Outcome):
                return trained  # pruned or diverged: nothing to replay
            self.trained[key] = trained
        return self.trained[key].replay(params, on_eval=on_eval, keep_best=keep_best)

    def train(self, params: dict[str, Any], *, seed: int,
              on_eval: Callable[[int, float, int], None]) -> Outcome | Trained:
        """Train a trial: its outcome if pruned or diverged, else what a replay needs."""
        from harness.trial.evaluation import evaluate
        from harness.trial.loop import train_loop
        from harness.trial.selection import EpochSelection
        from harness.trial.stopping import Stop
        from harness.trial.task_metrics import TaskMetrics

        state = self.state(trial_config(self.config, params, seed=seed), seed=seed)
        model, total = state.model, state.total_steps
        selection = EpochSelection(state.out, ends=state.epoch_ends)
        metrics = TaskMetrics(state, self.data)
        evals: dict[int, float] = {}

        def evaluate_now(step: int) -> None:
            loss = evaluate(state, self.data, step=step, base_loss=self.base_loss,
                            metrics=metrics).loss
            evals[step] = loss
            selection.consider(model, step=step, loss=loss, main=True)
            on_eval(step, loss, total)

        try:
            train_loop(state, evaluate_now=evaluate_now)
            evaluate_now(total)
        except (Pruned, Stop) as stopped:  # Stop: the loss became NaN, a failed trial
            self.release(model)
            return Outcome(params, state.step, isinstance(stopped, Pruned), math.nan, evals)
        return self.finished(state, selection, evals)

    def state(self, config: TrainConfig, *, seed: int) -> TrainState:
        """A fresh adapter on the base model, its optimizer, and where it stands."""
        from harness.trial.loop import TrainState
        from harness.trial.selection import epoch_ends
        from harness.trial.setup import add_lora, build_optimizer, seed_everything, steps_per_epoch
        from harness.trial.stopping import StopRequest

        seed_everything(seed)
        model = add_lora(self.base, config)
        optimizer, scheduler, total = build_optimizer(model, config, len(self.data.train))
        model, optimizer = self.accelerator.prepare(model, optimizer)
        ends = epoch_ends(total_steps=total,
                          steps_per_epoch=steps_per_epoch(config, len(self.data.train)))
        return TrainState(config=config, accelerator=self.accelerator, model=model,
                          optimizer=optimizer, scheduler=scheduler, train=self.data.train,
                          pad=self.data.tokenizer.pad_token_id, events=Collector(),
                          out=Path(tempfile.mkdtemp(dir=self.scratch)), total_steps=total,
                          stop=StopRequest(), epoch_ends=ends)

    def finished(self, state: TrainState, selection: EpochSelection,
                 evals: dict[int, float]) -> Trained:
        """A trial trained to its end: its last adapter's test loss, and its best epoch's."""
        from harness.trial.recipe import keep_best_epoch

        last_test = self.loss(state.model, self.data.tests)
        best = None
        if selection.best:
            keep_best_epoch(state, selection)
            best = (selection.best.loss, self.loss(state.model, self.data.tests))
        self.release(state.model)
        return Trained(state.step, evals, last_test, best)

    def loss(self, model: Any, examples: list[Any]) -> float:
        from harness.trial.evaluation import eval_loss

        return eval_loss(model, examples, batch_size=self.config.training.micro_batch_size,
                         pad_id=self.data.tokenizer.pad_token_id,
                         device=self.accelerator.device)

    def release(self, model: Any) -> None:
        """Take a trial's adapter off the base model, and let the accelerator forget the
        trial's model and optimizer (it keeps what it prepared)."""
        self.base = self.accelerator.unwrap_model(model).unload()
        self.accelerator.free_memory()


def trial_config(base: TrainConfig, params: dict[str, Any], *, seed: int) -> TrainConfig:
    raw = asdict(base)
    raw["lora"].update(r=params[R], alpha=params[R] * params[PER])
    raw["training"].update(learning_rate=params[LRATE], epochs=params[EP], seed=seed)
    return from_mapping(TrainConfig, raw)
