"""Epochs as a fidelity: where epochs end, and the best epoch end's adapter kept, resumed and
loaded back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from harness.trial.selection import EpochSelection, epoch_ends
from harness.trialdir import BEST_DIR, recorded


@pytest.mark.parametrize(("total", "per_epoch", "ends"), [
    (12, 4.0, {4: 1.0, 8: 2.0, 12: 3.0}),
    (10, 4.0, {4: 1.0, 8: 2.0, 10: 2.5}),       # a fractional last epoch
    (7, 2.5, {3: 1.0, 5: 2.0, 7: 2.8}),         # epochs that end inside a step
    (3, 13.0, {3: 0.2308}),                     # max_steps short of one epoch
    (13, 13.0, {13: 1.0}),
])
def test_epoch_ends(total: int, per_epoch: float, ends: dict[int, float]) -> None:
    assert epoch_ends(total_steps=total, steps_per_epoch=per_epoch) == ends


@pytest.fixture
def model(tiny_model_dir: Path) -> Any:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    return get_peft_model(base, LoraConfig(r=2, lora_alpha=4, target_modules="all-linear",
                                           init_lora_weights="gaussian"))


def lora_weights(model: Any) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" in n}


def shift(model: Any, by: float) -> None:
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_" in name:
                p.add_(by)


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_the_best_epoch_is_kept_and_loaded_back(tmp_path: Path, model: Any) -> None:
    selection = EpochSelection(tmp_path, ends={4: 1.0, 8: 2.0, 12: 3.0})
    assert not selection.consider(model, step=2, loss=0.1, main=True)  # not an epoch end
    assert selection.consider(model, step=4, loss=2.0, main=True)
    shift(model, 0.5)
    assert selection.consider(model, step=8, loss=1.5, main=True)
    best = lora_weights(model)
    shift(model, 0.5)
    assert not selection.consider(model, step=12, loss=1.9, main=True)  # overfitting
    assert not selection.consider(model, step=12, loss=float("nan"), main=True)
    choice = selection.restore(model, last_step=12)
    assert (choice.step, choice.epoch, choice.loss) == (8, 2.0, 1.5)
    assert same(lora_weights(model), best)
    assert BEST_DIR in recorded(tmp_path)  # the harness's own, so it may replace it


def test_the_last_epoch_when_best_is_left_as_trained(tmp_path: Path, model: Any) -> None:
    selection = EpochSelection(tmp_path, ends={4: 1.0, 8: 2.0})
    selection.consider(model, step=4, loss=2.0, main=True)
    shift(model, 0.5)
    selection.consider(model, step=8, loss=1.0, main=True)
    trained = lora_weights(model)
    assert selection.restore(model, last_step=8).step == 8
    assert same(lora_weights(model), trained)


def test_a_resumed_trial_keeps_the_choice_made_before_its_checkpoint_only(
        tmp_path: Path, model: Any) -> None:
    first = EpochSelection(tmp_path, ends={4: 1.0, 8: 2.0, 12: 3.0})
    first.consider(model, step=4, loss=2.0, main=True)
    kept = lora_weights(model)
    again = EpochSelection(tmp_path, ends=first.ends)
    again.resume(6)  # the checkpoint it goes on from is past step 4
    assert again.best == first.best
    shift(model, 0.5)
    assert again.restore(model, last_step=12).step == 4
    assert same(lora_weights(model), kept)
    (tmp_path / BEST_DIR / "selection.json").write_text(json.dumps(
        {"step": 8, "epoch": 2.0, "loss": 1.0}))
    later = EpochSelection(tmp_path, ends=first.ends)
    later.resume(6)  # a choice made after the checkpoint is for steps trained again
    assert later.best is None


def test_other_processes_choose_alike_but_write_nothing(tmp_path: Path, model: Any) -> None:
    selection = EpochSelection(tmp_path, ends={4: 1.0})
    assert selection.consider(model, step=4, loss=2.0, main=False)
    assert selection.best.step == 4 and not (tmp_path / BEST_DIR).exists()


def test_a_metric_objective_keeps_the_highest_score_whatever_the_loss(tmp_path: Path,
                                                                      model: Any) -> None:
    selection = EpochSelection(tmp_path, ends={4: 1.0, 8: 2.0, 12: 3.0},
                               objective="eval/exact_match")
    assert selection.consider(model, step=4, loss=2.0, main=True, answers={"exact_match": 0.2})
    shift(model, 0.5)
    assert selection.consider(model, step=8, loss=2.5, main=True, answers={"exact_match": 0.4})
    assert not selection.consider(model, step=12, loss=1.0, main=True,
                                  answers={"exact_match": 0.4})  # a tie keeps the earlier
    assert not selection.consider(model, step=12, loss=0.5, main=True)  # no score measured
    again = EpochSelection(tmp_path, ends=selection.ends, objective="eval/exact_match")
    again.resume(12)  # a resumed trial knows the choice and its score
    assert again.best is not None and again.best.answers == {"exact_match": 0.4}
    assert (again.best.step, again.best.loss) == (8, 2.5)
