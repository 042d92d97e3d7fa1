"""The LoRA-informed start: a learning-rate sweep at sound settings, then the model."""

from __future__ import annotations

import math
from typing import Any

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from harness.config import StudySettings
from harness.study.samplers import make_sampler
from harness.study.start import at_fraction, nearest, spread

LOW, HIGH = 1e-5, 1e-2


def _lora_trial(study: optuna.Study, *, loss: float | None = None) -> dict[str, Any]:
    """One trial over a LoRA space as a space file names it; told ``loss`` (else one that
    favours lr 3e-4)."""
    trial = study.ask()
    params = {"lora.r": trial.suggest_categorical("lora.r", [4, 8, 16, 32]),
              "lora.alpha_per_rank": trial.suggest_categorical("lora.alpha_per_rank",
                                                               [0.25, 1, 2]),
              "training.learning_rate": trial.suggest_float("training.learning_rate", LOW,
                                                            HIGH, log=True),
              "training.epochs": trial.suggest_int("training.epochs", 1, 3),
              "quantization.mode": trial.suggest_categorical("quantization.mode",
                                                             ["8bit", "4bit"])}
    lr = params["training.learning_rate"]
    study.tell(trial, (math.log10(lr) + 3.5) ** 2 if loss is None else loss)
    return params


def _study(**settings: Any) -> optuna.Study:
    return optuna.create_study(sampler=make_sampler(StudySettings(seed=0, **settings)))


def _decades(fraction: float) -> float:
    return 10 ** (math.log10(LOW) + fraction * (math.log10(HIGH) - math.log10(LOW)))


def test_the_sweep_order_halves_the_largest_gap_each_time_upper_side_first() -> None:
    assert [spread(i) for i in range(7)] == [0.5, 0.75, 0.25, 0.875, 0.375, 0.625, 0.125]


def test_values_part_of_the_way_through_a_range() -> None:
    assert at_fraction(FloatDistribution(1e-4, 1e-2, log=True), 0.5) == pytest.approx(1e-3)
    assert at_fraction(FloatDistribution(0.0, 0.2), 0.25) == pytest.approx(0.05)
    assert at_fraction(IntDistribution(1, 5), 0.5) == 3
    assert at_fraction(CategoricalDistribution([8, 16, 32, 64]), 0.5) == 32
    assert nearest(CategoricalDistribution([0.25, 1, 4]), 2.0) == 1
    assert nearest(CategoricalDistribution(["nf4", "fp4"]), 2.0) is None
    assert nearest(FloatDistribution(1.0, 16.0), 64.0) == 16.0


def test_the_start_sweeps_the_learning_rate_at_sound_settings() -> None:
    study = _study(start_trials=3)
    start = [_lora_trial(study) for _ in range(3)]
    assert [p["training.learning_rate"] for p in start] == pytest.approx(
        [_decades(0.5), _decades(0.75), _decades(0.25)])
    for params in start:
        assert params["lora.r"] == 16  # the middle rank
        assert params["lora.alpha_per_rank"] == 2  # alpha = 2 x rank
        assert params["training.epochs"] == 3  # the best epoch is kept: the most costs nothing
    # what the prior knows nothing of is drawn from each trial's seed, within its choices
    assert {p["quantization.mode"] for p in start} <= {"8bit", "4bit"}


def test_alpha_searched_as_a_value_follows_the_rank() -> None:
    study = _study(start_trials=1)
    trial = study.ask()
    rank = trial.suggest_categorical("lora.r", [8, 16, 32, 64])
    alpha = trial.suggest_float("lora.alpha", 4.0, 256.0)
    assert (rank, alpha) == (32, 64.0)


def test_enqueued_baselines_count_towards_the_start_but_take_no_sweep_point() -> None:
    study = _study(start_trials=3)
    study.enqueue_trial({"lora.r": 32, "lora.alpha_per_rank": 2,
                         "training.learning_rate": 3e-4, "training.epochs": 3,
                         "quantization.mode": "4bit"})
    baseline, first, second = (_lora_trial(study) for _ in range(3))
    assert baseline["training.learning_rate"] == 3e-4
    assert [first["training.learning_rate"], second["training.learning_rate"]] == (
        pytest.approx([_decades(0.5), _decades(0.75)]))


@pytest.mark.parametrize("sampler", ["tpe", "gp"])
def test_the_model_takes_over_after_the_start(sampler: str) -> None:
    study = _study(sampler=sampler, start_trials=3)
    for _ in range(3):
        _lora_trial(study)
    sweep = {_decades(spread(i)) for i in range(16)}
    later = _lora_trial(study)["training.learning_rate"]
    assert all(later != pytest.approx(point) for point in sweep)


def test_the_same_seed_proposes_the_same_start_and_random_start_stays_random() -> None:
    def learning_rates(**settings: Any) -> list[float]:
        study = _study(start_trials=3, **settings)
        return [_lora_trial(study)["training.learning_rate"] for _ in range(3)]

    assert learning_rates() == learning_rates()
    at_random = learning_rates(start="random")
    assert at_random != pytest.approx([_decades(0.5), _decades(0.75), _decades(0.25)])


def test_learning_rates_and_epochs_given_as_lists_are_swept_in_ascending_order() -> None:
    study = _study(start_trials=3)
    picked = []
    for _ in range(3):
        trial = study.ask()
        picked.append((trial.suggest_categorical("training.learning_rate", [1e-3, 1e-4, 3e-4]),
                       trial.suggest_categorical("training.epochs", [2, 5, 3])))
        study.tell(trial, 1.0)
    assert picked == [(3e-4, 5), (1e-3, 5), (1e-4, 5)]
