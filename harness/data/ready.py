"""Data ready for training: read, checked, split and encoded, or a clear reason why not.

The same checks run where they cost least and where they matter: `harness sweep` and `harness
worker` run them once before any trial starts (no GPU time is spent on data that cannot train),
every trial runs them on the data it is given, and `harness data check` states them as its
verdict.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.config import DataConfig
from harness.data.encode import Encoded, encode_all, token_stats
from harness.data.encoded_cache import Indexed, cached_encoding, records_key, tokenizer_key
from harness.data.load import Dataset, load_dataset
from harness.data.records import Record
from harness.data.render import ChatRenderer, render
from harness.errors import DataError

Pairs = list[tuple[Record, Encoded]]


@dataclass
class Ready:
    """The dataset, its encoded train, eval and test sides, and the renderer that made them."""

    dataset: Dataset
    train: Pairs
    evals: Pairs
    tests: Pairs
    renderer: ChatRenderer

    def profile(self, cutoff_len: int) -> dict[str, Any]:
        """What `harness data check` would say in brief: records read and usable, skipped by
        reason, examples per split, and token lengths against the cutoff."""
        encoded = [e for _, e in self.train + self.evals + self.tests]
        return {"records": self.dataset.read, "usable": len(self.dataset.records),
                "skipped": self.dataset.skipped(), "train": len(self.train),
                "eval": len(self.evals), "test": len(self.tests),
                "tokens": token_stats(encoded, cutoff_len),
                "cleaning": self.dataset.cleaning.summary()}


def ready_for_training(config: DataConfig, tokenizer: Any, *, cache: Path | None = None,
                       general: Sequence[Record] = ()) -> Ready:
    """Load, check, split and encode; a DataError (file, what, what to do) when training on
    this data would be impossible or meaningless. With ``cache`` (a HARNESS_HOME) the
    encoded splits are kept there and reused. Training records overlapping the ``general``
    text (the forgetting check's) are contaminated, as those overlapping the test split are."""
    held_out = [("the general text", list(general))] if general else []
    data = load_dataset(config, tokenizer=tokenizer, held_out=held_out, cache=cache)
    data.require_usable(allow_defects=config.on_invalid == "skip")
    renderer = ChatRenderer(tokenizer, system_prompt=config.system_prompt)
    split = {"train": data.split.train, "eval": data.split.eval, "test": data.split.test}

    def encode() -> dict[str, Indexed]:
        return {side: _encode_indexed(records, tokenizer, renderer,
                                      cutoff_len=config.cutoff_len, train_on=config.train_on)
                for side, records in split.items()}

    def key() -> dict[str, str | int]:
        return {"tokenizer": tokenizer_key(tokenizer), "cutoff_len": config.cutoff_len,
                "train_on": config.train_on, "system_prompt": config.system_prompt,
                **{side: records_key(records) for side, records in split.items()}}

    encoded = cached_encoding(cache, key=key, encode=encode)
    train, evals, tests = ([(split[side][i], enc) for i, enc in encoded[side]]
                           for side in ("train", "eval", "test"))
    problems = split_problems(data, config, train=len(train), evals=len(evals),
                              renderer=renderer)
    if problems:
        what, hint = problems[0]
        raise DataError(config.path, what, hint=hint)
    return Ready(data, train, evals, tests, renderer)


def _encode_indexed(records: Sequence[Record], tokenizer: Any, renderer: ChatRenderer, *,
                    cutoff_len: int, train_on: str) -> Indexed:
    kept, _ = encode_all(records, tokenizer, renderer, cutoff_len=cutoff_len, train_on=train_on)
    position = {id(rec): i for i, rec in enumerate(records)}
    return [(position[id(rec)], enc) for rec, enc in kept]


def split_problems(data: Dataset, config: DataConfig, *, train: int, evals: int,
                   renderer: ChatRenderer) -> list[tuple[str, str]]:
    """Why training on these splits cannot work, as (what, what to do) pairs; none when it
    can. ``train`` and ``evals`` count the examples of each side that can be trained on."""
    if not data.records:
        return [("no usable records remain after filtering",
                 "run `harness data check` to see why each was left out")]
    out: list[tuple[str, str]] = []
    if config.train_on == "response" and not _any_response(data.records, renderer):
        out.append(("no record has a response to learn from: the rendered text holds no "
                    "response part (a format file without the response placeholder, e.g. "
                    "%output%?)", "put the response key's placeholder in the format file, or "
                    "set data.train_on: all"))
    if not data.split.eval:
        out.append(_empty_eval(data, config))
    elif evals == 0:
        out.append(("the eval split is empty after encoding: every eval record's prompt fills "
                    f"the {config.cutoff_len} tokens of data.cutoff_len",
                    "raise data.cutoff_len"))
    if not data.split.train:
        out.append((f"the train split is empty: all {len(data.records)} usable record(s) went "
                    "to the eval split", "add records or documents, or lower "
                    "data.eval_fraction"))
    elif train == 0 and not out:
        out.append(("no training examples remain after encoding: every train record's prompt "
                    f"fills the {config.cutoff_len} tokens of data.cutoff_len",
                    "raise data.cutoff_len (`harness data check --model M` shows the lengths)"))
    return out


def _empty_eval(data: Dataset, config: DataConfig) -> tuple[str, str]:
    if config.eval_fraction <= 0:
        return ("the eval split is empty: data.eval_fraction is 0, and trials are judged by "
                "their eval loss", "set data.eval_fraction above 0 (e.g. 0.1)")
    why = data.split.note or f"{len(data.records)} usable record(s) are too few to hold out"
    return (f"the eval split is empty: {why}", "add records or documents (the split keeps "
            "each source document on one side)")


def _any_response(records: Sequence[Record], renderer: ChatRenderer) -> bool:
    """Whether at least one record has a trainable (response) part once rendered."""
    return any(record.messages or any(s.trainable for s in render(record, renderer))
               for record in records)
