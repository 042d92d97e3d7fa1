"""Search-space files: every shipped file loads; every problem is reported with its key path."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from harness.config import StudySettings
from harness.errors import ConfigError
from harness.space.load import load_space
from harness.space.params import ALPHA_PER_RANK

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "search_spaces").glob("*.yaml"))


def test_the_shipped_files_are_there() -> None:
    assert {p.name for p in SHIPPED} >= {"demo.yaml", "medquad.yaml", "qlora-7b.yaml"}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_file_loads_samples_and_opens_with_its_command(path: Path) -> None:
    space = load_space(path)
    assert path.read_text().startswith(f"# harness sweep search_spaces/{path.name}\n")
    study = optuna.create_study(directions=["minimize"] * len(space.study.objectives))
    for _ in range(5):
        values = space.suggest(study.ask())
        config = space.train_config(values, output_dir="out")
        assert config.tracking.experiment == space.study_name
    for given in space.enqueue:
        study.enqueue_trial(space.as_params(given))
        values = space.suggest(study.ask())
        config = space.train_config(values, output_dir="out")
        if "lora.alpha" in given:
            assert config.lora.alpha == given["lora.alpha"]
        assert config.lora.r == given.get("lora.r", config.lora.r)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "space.yaml"
    path.write_text(text)
    return path


BASE = """
model: smollm2-135m-instruct
data: {path: datasets/samples/medquad}
"""


def test_every_problem_is_reported_at_once_with_its_key_path(tmp_path: Path) -> None:
    path = write(tmp_path, BASE + """
training: {micro_batch_size: 0}
study: {sampler: grid, trials: 0, objective: [eval_loss, speed], warmup_fraction: 1}
registry: {margin: 2}
search:
  lora.rank: [4, 8]
  training.learning_rate: {low: 0, high: 1.0e-3, log: true}
  lora.dropout: {low: 0.2, high: 0.1}
  quantization.quant_type: {choices: [nf4], when: {quantization.mode: 4bit}}
  lora.r: {choices: []}
enqueue:
  - {training.epochs: 3}
""")
    with pytest.raises(ConfigError) as err:
        load_space(path)
    text = str(err.value)
    for expected in ("study.sampler: 'grid'", "study.objective[1]: 'speed'",
                     "study.trials: must be at least 1", "registry.margin",
                     "study.warmup_fraction: must be at least 0 and below 1",
                     "search.lora.r.choices: expected a non-empty list",
                     "search.training.learning_rate: a log range needs low > 0",
                     "search.lora.dropout: low (0.2) must be below high (0.1)"):
        assert expected in text, expected
    assert str(path) in text


def test_keys_conditions_enqueue_and_configs_are_checked(tmp_path: Path) -> None:
    path = write(tmp_path, BASE + """
search:
  lora.rank: [4, 8]
  quantization.quant_type: {choices: [nf4], when: {quantization.mode: 4bit}}
  training.micro_batch_size: [0, 2]
  training.num_processes: [1, 2]
enqueue:
  - {training.epochs: 3}
""")
    with pytest.raises(ConfigError) as err:
        load_space(path)
    text = str(err.value)
    assert "search.lora.rank: not a train-config key" in text
    assert "search.quantization.quant_type.when: quantization.mode is not a parameter" in text
    assert "enqueue[0].training.epochs: not a searched parameter" in text
    assert "search.training.num_processes: cannot be searched" in text


def test_config_problems_at_the_edges_of_a_range(tmp_path: Path) -> None:
    path = write(tmp_path, BASE + """
search:
  training.micro_batch_size: [0, 2]
""")
    with pytest.raises(ConfigError, match=r"training\.micro_batch_size: must be at least 1"):
        load_space(path)


def test_alpha_as_a_multiple_of_rank_and_list_choices(tmp_path: Path) -> None:
    path = write(tmp_path, BASE + """
search:
  lora.r: [4, 16]
  lora.alpha: {per_rank: [2]}
  lora.target_modules: [all-linear, [q_proj, v_proj]]
enqueue:
  - {lora.r: 16, lora.alpha: 32, lora.target_modules: [q_proj, v_proj]}
""")
    space = load_space(path)
    assert space.as_params(space.enqueue[0])[ALPHA_PER_RANK] == 2
    study = optuna.create_study()
    study.enqueue_trial(space.as_params(space.enqueue[0]))
    config = space.train_config(space.suggest(study.ask()), output_dir="o")
    assert (config.lora.r, config.lora.alpha) == (16, 32.0)
    assert config.lora.target_modules == ["q_proj", "v_proj"]


def test_conditional_parameters_are_sampled_only_when_their_condition_holds(
        tmp_path: Path) -> None:
    path = write(tmp_path, BASE + """
search:
  quantization.mode: [8bit, 4bit]
  quantization.quant_type: {choices: [nf4, fp4], when: {quantization.mode: 4bit}}
""")
    space = load_space(path)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    seen = [space.suggest(study.ask()) for _ in range(20)]
    assert all(("quantization.quant_type" in v) == (v["quantization.mode"] == "4bit")
               for v in seen)
    assert {v["quantization.mode"] for v in seen} == {"8bit", "4bit"}


def test_an_enqueued_value_outside_the_space_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, BASE + """
search:
  lora.r: [4, 8]
enqueue:
  - {lora.r: 32}
""")
    with pytest.raises(ConfigError, match=r"enqueue\[0\].lora.r: 32 is outside"):
        load_space(path)


def test_multi_objective_with_a_pruner_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, BASE + """
study: {objective: [eval_loss, peak_memory], pruner: median}
""")
    with pytest.raises(ConfigError, match="cannot prune multi-objective"):
        load_space(path)


def test_the_warmup_is_the_later_of_its_steps_and_its_share_of_the_trial() -> None:
    share = StudySettings(warmup_fraction=0.25)
    assert not share.may_prune(5, 24) and share.may_prune(6, 24)
    assert share.may_prune(6, 24) and not share.may_prune(6, 48)  # longer trials wait longer
    both = StudySettings(warmup_steps=10, warmup_fraction=0.25)
    assert not both.may_prune(8, 24) and both.may_prune(10, 24)
    assert not both.may_prune(10, 48) and both.may_prune(12, 48)
    assert StudySettings(warmup_fraction=0).may_prune(1, 24)


@pytest.mark.parametrize("search, expected", [
    ("lora.r: [4, 0, 8]", "lora.r: 0 must be at least 1"),
    ("quantization.mode: [none, bogus, 8bit]", "quantization.mode: 'bogus' is not one of"),
])
def test_a_bad_value_anywhere_in_a_choices_list_is_refused_at_load(
        tmp_path: Path, search: str, expected: str) -> None:
    path = write(tmp_path, BASE + f"search:\n  {search}\n")
    with pytest.raises(ConfigError, match=expected):
        load_space(path)


@pytest.mark.parametrize("section", ["study: []", "registry: [1]", "enqueue: {}",
                                     "study: 3", "search: []"])
def test_a_section_that_is_not_what_it_should_be_is_refused(
        tmp_path: Path, section: str) -> None:
    path = write(tmp_path, BASE + section + "\n")
    key = section.split(":")[0]
    with pytest.raises(ConfigError, match=f"{key}: expected a "):
        load_space(path)


def test_empty_sections_mean_their_defaults(tmp_path: Path) -> None:
    space = load_space(write(tmp_path, BASE + "study:\nregistry:\nsearch:\nenqueue:\n"))
    assert space.study.sampler == "tpe" and space.params == [] and space.enqueue == []


def test_a_bound_or_choice_that_is_not_finite_is_refused_at_load(tmp_path: Path) -> None:
    path = write(tmp_path, BASE + """
search:
  training.learning_rate: {low: 1.0e-5, high: .inf, log: true}
  lora.dropout: {low: .nan, high: 0.1}
  training.epochs: {low: 1, high: 3, step: .inf}
  lora.alpha: [8, .nan]
  training.max_grad_norm: [.inf, 1.0]
""")
    with pytest.raises(ConfigError) as info:
        load_space(str(path))
    problems = [p for p in info.value.problems if "not a finite number" in p]
    assert [p.split(":")[0] for p in problems] == [
        "search.training.learning_rate.high", "search.lora.dropout.low",
        "search.training.epochs.step", "search.lora.alpha.choices[1]",
        "search.training.max_grad_norm.choices[0]"]


def test_a_non_finite_fixed_setting_of_a_space_is_refused_at_load(tmp_path: Path) -> None:
    path = write(tmp_path, BASE + "lora: {alpha: .inf}\nsamples: {temperature: .nan}\n"
                 "search:\n  lora.r: [4, 8]\n")
    with pytest.raises(ConfigError) as info:
        load_space(str(path))
    assert {p.split(":")[0] for p in info.value.problems} >= {"lora.alpha",
                                                               "samples.temperature"}
