"""Promotion on a real SQLite MLflow registry: a promotion cut short between registering the
version and settling its gate is settled by the next promotion, wherever it was cut."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import seeded_store
from mlflow import MlflowClient

from harness.tracking.gate import CHAMPION, GATE
from harness.tracking.promotion import Candidate, promote_run


@pytest.fixture
def client(tmp_path: Path) -> MlflowClient:
    uri = seeded_store(tmp_path / "mlflow.db")
    return MlflowClient(uri, registry_uri=uri)


def finished_run(client: MlflowClient, tmp_path: Path, loss: float,
                 **metrics: float) -> Any:
    """A finished trial's run with eval loss ``loss`` and ``metrics`` (`test_loss` for
    test/loss, ...), on the same eval and test splits as every other."""
    exp = (client.get_experiment_by_name("promote")
           or client.get_experiment(client.create_experiment(
               "promote", artifact_location=(tmp_path / "artifacts").as_uri())))
    adapter = tmp_path / "adapter"
    adapter.mkdir(exist_ok=True)
    (adapter / "adapter_config.json").write_text("{}")
    run = client.create_run(exp.experiment_id, tags={"dataset.eval_fingerprint": "same",
                                                     "dataset.test_fingerprint": "held"})
    client.log_metric(run.info.run_id, "eval/loss", loss)
    for name, value in metrics.items():
        client.log_metric(run.info.run_id, name.replace("_", "/", 1), value)
    client.log_artifacts(run.info.run_id, str(adapter), "adapter")
    client.set_terminated(run.info.run_id, "FINISHED")
    return client.get_run(run.info.run_id)


class CutShort(MlflowClient):
    """The real client, with Ctrl-C landing at the ``nth`` call of ``method``."""

    def __init__(self, uri: str, method: str, nth: int = 1) -> None:
        super().__init__(uri, registry_uri=uri)
        self.method, self.calls_left = method, nth

    def __getattribute__(self, name: str) -> Any:
        attr = super().__getattribute__(name)
        if name != super().__getattribute__("method"):
            return attr

        def cut(*args: Any, **kwargs: Any) -> Any:
            self.calls_left -= 1
            if self.calls_left == 0:
                raise KeyboardInterrupt
            return attr(*args, **kwargs)

        return cut


def promote(client: MlflowClient, run: Any, *, trial: int = 0,
            max_forgetting: float | None = 0.05) -> Any:
    return promote_run(client, run, Candidate("s", trial, "eval_loss",
                                              run.data.metrics["eval/loss"]),
                       model="m", margin=0.01, max_forgetting=max_forgetting)


@pytest.mark.parametrize("cut_at", [
    ("set_model_version_tag", 1),        # registered, no verdict
    ("set_model_version_tag", 2),        # verdict, no alias tag
    ("set_registered_model_alias", 1),   # verdict and tag, no alias
])
def test_a_promotion_cut_short_is_settled_by_the_next_one(
        client: MlflowClient, tmp_path: Path, cut_at: tuple[str, int]) -> None:
    run = finished_run(client, tmp_path, 1.0)
    with pytest.raises(KeyboardInterrupt):
        promote(CutShort(client.tracking_uri, *cut_at), run)
    (version,) = client.search_model_versions("name = 'm'")
    assert not client.get_registered_model("m").aliases

    again = promote(client, run)
    assert again.version == version.version and again.alias == CHAMPION
    assert "settled now" in again.why
    assert client.get_model_version_by_alias("m", CHAMPION).version == version.version
    assert client.get_model_version("m", version.version).tags[GATE] == "passed"
    assert promote(client, run).why == "no change"
    assert len(client.search_model_versions("name = 'm'")) == 1


def test_a_better_version_cut_short_before_its_alias_moved_takes_champion_next_time(
        client: MlflowClient, tmp_path: Path) -> None:
    promote(client, finished_run(client, tmp_path, 1.5), trial=0)
    better = finished_run(client, tmp_path, 1.0)
    with pytest.raises(KeyboardInterrupt):  # verdict and tags written, alias not moved
        promote(CutShort(client.tracking_uri, "set_registered_model_alias"), better, trial=1)
    assert client.get_model_version_by_alias("m", CHAMPION).tags["trial"] == "0"
    promote(client, better, trial=1)
    assert client.get_model_version_by_alias("m", CHAMPION).tags["trial"] == "1"


def test_a_settled_later_version_still_faces_the_champion(
        client: MlflowClient, tmp_path: Path) -> None:
    promote(client, finished_run(client, tmp_path, 1.0), trial=0)
    worse = finished_run(client, tmp_path, 1.5)
    with pytest.raises(KeyboardInterrupt):
        promote(CutShort(client.tracking_uri, "set_model_version_tag"), worse, trial=1)
    settled = promote(client, worse, trial=1)
    assert settled.alias == "challenger"
    assert client.get_model_version_by_alias("m", CHAMPION).tags["trial"] == "0"


def test_versions_are_compared_on_the_test_split_the_sweep_never_chose_by(
        client: MlflowClient, tmp_path: Path) -> None:
    promote(client, finished_run(client, tmp_path, 1.5, test_loss=1.2), trial=0)
    # Better on eval (which picked it), worse on test: the eval figure flatters it.
    flattered = promote(client, finished_run(client, tmp_path, 1.0, test_loss=1.3), trial=1)
    assert flattered.alias == "challenger" and "test loss 1.3000" in flattered.why
    better = promote(client, finished_run(client, tmp_path, 1.6, test_loss=1.0), trial=2)
    assert better.alias == CHAMPION
    assert client.get_model_version_by_alias("m", CHAMPION).tags["trial"] == "2"


def test_without_test_figures_on_both_sides_versions_are_compared_on_eval(
        client: MlflowClient, tmp_path: Path) -> None:
    promote(client, finished_run(client, tmp_path, 1.5), trial=0)  # a champion from before
    newer = promote(client, finished_run(client, tmp_path, 1.2, test_loss=1.9), trial=1)
    assert newer.alias == CHAMPION and "eval loss 1.2000 beats" in newer.why
    later = promote(client, finished_run(client, tmp_path, 1.0, test_loss=2.0), trial=2)
    assert later.alias == "challenger" and "test loss 2.0000" in later.why  # both have test


def test_versions_on_different_data_are_not_ranked(client: MlflowClient, tmp_path: Path) -> None:
    promote(client, finished_run(client, tmp_path, 1.5, test_loss=1.2), trial=0)
    other = finished_run(client, tmp_path, 0.5, test_loss=0.5)
    client.set_tag(other.info.run_id, "dataset.eval_fingerprint", "another")
    client.set_tag(other.info.run_id, "dataset.test_fingerprint", "another")
    promotion = promote(client, client.get_run(other.info.run_id), trial=1)
    assert promotion.alias == "challenger" and "different eval and test data" in promotion.why


def test_the_best_epochs_eval_loss_is_what_a_version_records(
        client: MlflowClient, tmp_path: Path) -> None:
    run = finished_run(client, tmp_path, 1.5, selected_eval_loss=1.1)
    promote(client, run)
    assert client.get_model_version("m", "1").tags["eval_loss"] == "1.1"


@pytest.mark.parametrize(("retained", "limit", "alias", "verdict"), [
    (2.04, 0.05, CHAMPION, "passed"),      # 2 % above the base model's: allowed
    (2.20, 0.05, "challenger", "forgets"),  # 10 % above: never champion
    (2.20, None, CHAMPION, "no limit"),
])
def test_an_adapter_that_forgets_general_text_never_becomes_champion(
        client: MlflowClient, tmp_path: Path, retained: float, limit: float | None,
        alias: str, verdict: str) -> None:
    run = finished_run(client, tmp_path, 1.0, test_loss=1.0, retention_loss=retained,
                       base_retention_loss=2.0)
    promotion = promote(client, run, max_forgetting=limit)
    assert promotion.alias == alias
    tags = client.get_model_version("m", promotion.version).tags
    assert verdict in tags["retention_verdict"]
    assert (tags["retention_loss"], tags["base_retention_loss"]) == (repr(retained), "2.0")
    if alias != CHAMPION:
        assert "forgets" in promotion.why and not client.get_registered_model("m").aliases.get(
            CHAMPION)


def test_a_forgetting_version_does_not_unseat_the_champion(
        client: MlflowClient, tmp_path: Path) -> None:
    promote(client, finished_run(client, tmp_path, 1.5, test_loss=1.5))
    forgets = finished_run(client, tmp_path, 1.0, test_loss=1.0, retention_loss=3.0,
                           base_retention_loss=2.0)
    assert promote(client, forgets, trial=1).alias == "challenger"
    assert client.get_model_version_by_alias("m", CHAMPION).tags["trial"] == "0"


def test_a_metric_study_registers_its_metric_and_promotes_by_it(client: MlflowClient,
                                                                 tmp_path: Path) -> None:
    def by_metric(run: Any, trial: int) -> Any:
        return promote_run(client, run, Candidate("s", trial, "eval/exact_match",
                                                  run.data.metrics["selected/exact_match"]),
                           model="m", margin=0.0, max_forgetting=None)

    first = finished_run(client, tmp_path, 1.0, test_loss=1.0, selected_exact_match=0.5,
                         test_exact_match=0.4)
    promotion = by_metric(first, 0)
    tags = client.get_model_version("m", promotion.version).tags
    assert tags["eval_exact_match"] == "0.5" and tags["test_exact_match"] == "0.4"
    assert tags["objective"] == "eval/exact_match"
    # a higher test score takes champion even with a higher test loss
    better = finished_run(client, tmp_path, 1.2, test_loss=1.3, selected_exact_match=0.6,
                          test_exact_match=0.55)
    assert by_metric(better, 1).alias == CHAMPION
    description = client.get_model_version("m", "2").description
    assert "test exact_match 0.5500" in description
    assert f"runs/{better.info.run_id}?workflowType=machine_learning" in description
