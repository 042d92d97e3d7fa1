"""What `harness eval` scores the models on: a data file the user gives (read as `harness data
check` reads it: every usable record), or a study's eval or test split (split as its trials
split it). Records are kept unencoded: each model's tokenizer encodes them."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from harness.config import DataConfig, EvaluationSettings, TrainConfig
from harness.data.load import load_dataset
from harness.data.records import Record, fingerprint
from harness.errors import DataError

Split = Literal["eval", "test"]


@dataclass
class EvalData:
    """The records scored, and what names them in MLflow."""

    name: str
    """The dataset's name (`PATH`, or `STUDY test`)."""
    config: DataConfig
    """How its records are read and encoded (format, template, cutoff, train_on)."""
    records: list[Record]
    """The records scored for loss, in order (at most the cap, a seeded sample)."""
    digest: str
    """Their fingerprint (short): the dataset's digest in MLflow."""
    source: str
    """Where they came from (the file, or the study and split)."""
    raw_files: list[str] = field(default_factory=list)
    """For raw text: the text files, scored by sliding-window perplexity as wholes."""
    settings: EvaluationSettings = field(default_factory=EvaluationSettings)
    """The metrics and answer settings (a study's own, else the defaults)."""
    batch_size: int = 8
    """Records a loss pass takes at once: a study's micro-batch, as its trials scored them (an
    8-bit model's figures depend on the batch: LLM.int8 picks its outlier columns per batch)."""

    @property
    def is_raw(self) -> bool:
        return bool(self.raw_files)


def capped(records: list[Record], cap: int, *, seed: int) -> list[Record]:
    """At most ``cap`` records (0: all), a seeded sample kept in order."""
    if not cap or len(records) <= cap:
        return records
    return [records[i] for i in sorted(random.Random(seed).sample(range(len(records)), cap))]


def from_file(config: DataConfig, *, tokenizer: object, cap: int,
              settings: EvaluationSettings) -> EvalData:
    """Every usable record of ``config.path`` (split off nothing), at most ``cap``: a set to
    score as it stands, so near-duplicates are not thinned (exact duplicates still are)."""
    whole = DataConfig(**{**config.__dict__, "eval_fraction": 0.0, "test_fraction": 0.0,
                          "near_dup": "off"})
    data = load_dataset(whole, tokenizer=tokenizer)
    data.require_usable(allow_defects=whole.on_invalid == "skip")
    records = capped(data.records, cap, seed=whole.seed)
    return EvalData(name=config.path, config=whole, records=records,
                    digest=fingerprint(records)[:32], source=config.path,
                    raw_files=data.files if data.format == "rawtext" else [], settings=settings)


def _encodable(records: list[Record], config: DataConfig, tokenizer: object) -> list[Record]:
    """The records a trial keeps: those with a response token within the cutoff (the sample
    of a large split is then drawn from the same records a trial draws it from)."""
    from harness.data.encode import encode_all
    from harness.data.render import ChatRenderer

    kept, _ = encode_all(records, tokenizer, ChatRenderer(tokenizer,
                                                          system_prompt=config.system_prompt),
                         cutoff_len=config.cutoff_len, train_on=config.train_on)
    return [r for r, _ in kept]


def from_study(config: TrainConfig, *, study: str, split: Split, tokenizer: object,
               cap: int | None) -> EvalData:
    """A study's ``split`` as its trials drew it from ``config`` (its space's fixed settings);
    by default the sample of the test split the trials scored."""
    data = load_dataset(config.data, tokenizer=tokenizer)
    data.require_usable(allow_defects=config.data.on_invalid == "skip")
    records = data.split.eval if split == "eval" else data.split.test
    if not records:
        raise DataError(config.data.path, f"study {study!r} has no {split} split (too few "
                        "source documents)", hint="evaluate on a file with --data instead")
    limit = config.evaluation.max_test_examples if cap is None else cap
    kept = _encodable(records, config.data, tokenizer)
    sample = capped(kept, limit, seed=config.data.seed)
    # named as the trials name their split (its dataset input's digest): the whole split's
    # fingerprint, or the sample's when one was drawn
    digest = fingerprint(records if sample is kept else sample)[:32]
    # the trials' name for the split too: one dataset in MLflow, not two
    return EvalData(name=f"{Path(config.data.path).name} {split}", config=config.data,
                    records=sample, digest=digest, source=config.data.path,
                    settings=config.evaluation, batch_size=config.training.micro_batch_size)
