"""A trial's task metrics: the adapter's greedy answers scored at each epoch end on the eval
prompts and once on the test prompts, beside the base model's (its answers cached per study,
as its loss is). Only the main process generates; the others receive its scores, so every
process takes the same epoch-selection decision."""

from __future__ import annotations

from collections.abc import Sequence

from harness.cache import base_model_entry
from harness.metrics.answers import Metric, load_metric
from harness.trial.answers import (
    Answered,
    answer,
    answer_prompts,
    cache_answers,
    decoding_key,
    read_cached_answers,
    score,
)
from harness.trial.loop import TrainState
from harness.trial.parallel import same_everywhere
from harness.trial.prompts import Prompt
from harness.trial.setup import Prepared


class TaskMetrics:
    """The metrics a trial's config lists, and the prompts of its eval and test splits."""

    def __init__(self, state: TrainState, data: Prepared) -> None:
        settings = state.config.evaluation
        self.state = state
        self.tokenizer = data.tokenizer
        self.metrics: list[Metric] = [load_metric(m) for m in settings.metrics]
        special = data.tokenizer.all_special_tokens
        cap = settings.max_answer_examples
        self.eval_prompts = answer_prompts(data.eval_records, data.renderer, cap=cap,
                                           special=special) if self.metrics else []
        self.test_prompts = answer_prompts(data.test_records, data.renderer, cap=cap,
                                           special=special) if self.metrics else []
        self.chat = bool(data.eval_records and data.eval_records[0].messages)

    def on_eval(self) -> Answered | None:
        """The adapter's scored answers to the eval prompts (None: no metrics)."""
        return self._scored(self.eval_prompts, base=False)

    def base_on_eval(self) -> Answered | None:
        return self._scored(self.eval_prompts, base=True)

    def on_test(self) -> tuple[Answered | None, Answered | None]:
        """The adapter's and the base model's scored answers to the test prompts."""
        return (self._scored(self.test_prompts, base=False),
                self._scored(self.test_prompts, base=True))

    def _scored(self, prompts: Sequence[Prompt], *, base: bool) -> Answered | None:
        if not prompts:
            return None
        accelerator = self.state.accelerator
        got = None
        if accelerator.is_main_process:
            got = self._base_answers(prompts) if base else self._answers(prompts)
            got.scores = score(got.answers, prompts, self.metrics)
        shared: Answered | None = same_everywhere(accelerator, got)
        return shared

    def _answers(self, prompts: Sequence[Prompt]) -> Answered:
        model = self.state.accelerator.unwrap_model(self.state.model)
        return answer(model, self.tokenizer, prompts, settings=self.state.config.evaluation,
                      chat=self.chat, device=self.state.accelerator.device)

    def _base_answers(self, prompts: Sequence[Prompt]) -> Answered:
        """The base model's answers: from the study's cache, else generated and cached."""
        config = self.state.config
        path = base_model_entry("base_answers", config, **decoding_key(
            config.evaluation, prompts=prompts, chat=self.chat))
        stored = read_cached_answers(path, len(prompts))
        if stored is not None:
            return Answered(stored)
        with self.state.accelerator.unwrap_model(self.state.model).disable_adapter():
            got = self._answers(prompts)
        cache_answers(path, got.answers)
        return got

