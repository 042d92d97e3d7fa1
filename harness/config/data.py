"""Where a fine-tune's data is and how it becomes token sequences: the `data:` section of a
train config (and `retention.format`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from harness.config.coerce import choice_problems, raise_problems

DataFormat = Literal["auto", "alpaca", "chat", "rawtext", "medquad"]
TrainOn = Literal["response", "all"]
OnInvalid = Literal["error", "skip"]
Batching = Literal["grouped", "packed", "padded"]
NearDup = float | Literal["off"]
OnContaminated = Literal["drop", "warn", "error"]

DEFAULT_REFUSAL_PHRASES = (
    "as an ai language model",
    "as a language model, i",
    "as an ai assistant, i cannot",
    "i'm sorry, but i cannot",
    "i cannot fulfill that request",
    "i am unable to comply",
    "openai's use case policy",
)


@dataclass
class Decontamination:
    """Training records checked for runs of words they share with evaluation sets."""

    against: list[str] = field(default_factory=list)
    """Evaluation sets (files or directories, in any format the harness reads) that training
    must not contain. The study's own test split is checked as well, always."""
    ngram: int = 8
    """Words a shared run needs to count: 8 as in Tulu 3's decontamination, 13 as in GPT-3's."""
    overlap: float = 0.5
    """Share of the shorter record's n-grams a training record and an evaluation record must
    have in common to count as contaminated; 0 counts a single shared n-gram (strict, and on
    real data it also catches stock phrases)."""
    common: float = 0.01
    """N-grams found in more than this share of an evaluation set's records (and in more than
    one) are its template text, a tool description or a system prompt repeated in every item,
    not any one item's words, and are not matched."""
    action: OnContaminated = "drop"
    """`drop` the contaminated training records, `warn` and train on them, or `error`: refuse
    to train until the data is fixed."""

    def __post_init__(self) -> None:
        raise_problems(self.problems())

    def problems(self) -> list[str]:
        out = choice_problems(self)
        if not 0.0 <= self.overlap <= 1.0:
            out.append(f"overlap: {self.overlap} must be a share in [0, 1]")
        if not 0.0 <= self.common < 1.0:
            out.append(f"common: {self.common} must be a share in [0, 1)")
        if self.ngram < 3:
            out.append(f"ngram: {self.ngram} words would match common phrases; use 3 or more "
                       "(8 is usual)")
        return out


@dataclass
class DataConfig:
    """Where the training data is and how it becomes token sequences."""

    path: str
    """A file or a directory of files in one format."""
    format: DataFormat = "auto"
    """The files' format; `auto` decides from the files."""
    format_file: str | None = None
    """Format file (text-generation-webui convention) for alpaca data, or for MedQuAD records
    rendered as text; None uses datasets/formats/alpaca.json for alpaca and the chat template
    for MedQuAD."""
    response_key: str | None = None
    """The record key holding the response; None means `output` (alpaca) or `answer` (MedQuAD)."""
    train_on: TrainOn = "response"
    """`response`: loss on response tokens only (prompt masked); `all`: on the whole text."""
    system_prompt: str = "default"
    """The system prompt of conversations (chat data, MedQuAD) that have none of their own, in
    training, evaluation and samples alike: `default` leaves it to the chat template (SmolLM2's
    inserts its own, most templates none), `none` sends no system text (a template that inserts
    a default when there is no system turn gets an empty one), anything else is the text."""
    cutoff_len: int = 256
    """Longest training sequence in tokens; longer examples are truncated."""
    batching: Batching = "grouped"
    """How examples share a micro-batch: `grouped` (examples of similar length together, in
    a still random order), `packed` (laid end to end in rows of cutoff_len tokens, attention
    kept within each example) or `padded` (random, each padded to the longest)."""
    overlap_len: int = 0
    """Raw text: tokens shared by consecutive chunks; must be below cutoff_len."""
    hard_cut: str = "\n\n\n"
    """Raw text: a string that always ends a chunk; empty for none."""
    newline_window: int = 16
    """Raw text: end a chunk at the last newline if one lies within this many tokens of the cut."""
    min_chunk_tokens: int = 8
    """Raw text: shorter chunks (leftovers at the end of a part) are dropped."""
    eval_fraction: float = 0.1
    """Share of records held out for evaluation, split by source document: trials are
    judged, pruned and chosen by it."""
    test_fraction: float = 0.1
    """Share held out (by source document, like eval) for the final figures only: a sweep
    never decides by it, so the best trial's test loss is not flattered by the choice."""
    seed: int = 42
    """Seed of the train/eval/test split."""
    dedupe: bool = True
    """Leave out exact duplicates (after normalising whitespace and Unicode) and
    near-duplicates (near_dup): of records alike, one is kept. False keeps them all, and
    near-duplicates still stay on one side of the split."""
    near_dup: NearDup = 0.8
    """Jaccard similarity of two records' 3-word shingles (prompt and response,
    normalised) at which they are near-duplicates; `off` looks for exact duplicates only."""
    decontaminate: Decontamination = field(default_factory=Decontamination)
    """Training records sharing a run of words with an evaluation set."""
    refusal_phrases: list[str] = field(default_factory=lambda: list(DEFAULT_REFUSAL_PHRASES))
    """Records whose response contains one of these (case-insensitive) are left out."""
    sources: list[str] = field(default_factory=list)
    """MedQuAD: keep only these sources (e.g. CancerGov, GARD); empty keeps all."""
    qtypes: list[str] = field(default_factory=list)
    """MedQuAD: keep only these question types (e.g. treatment, symptoms); empty keeps all."""
    ignore_keys: list[str] = field(default_factory=list)
    """Alpaca: record keys to leave out entirely (ids, scores, other metadata)."""
    on_invalid: OnInvalid = "error"
    """`error`: defective records stop training with a report; `skip`: leave them out."""

    def __post_init__(self) -> None:
        self.near_dup = _near_dup(self.near_dup)
        raise_problems(self.problems())

    def problems(self) -> list[str]:
        out: list[str] = []
        if isinstance(self.near_dup, float) and not 0.0 < self.near_dup <= 1.0:
            out.append(f"near_dup: {self.near_dup} must be a similarity in (0, 1] (e.g. 0.8), "
                       "or off")
        if not str(self.path).strip():
            out.append("path: must name a file or directory")
        out.extend(choice_problems(self))
        if self.cutoff_len < 8:
            out.append(f"cutoff_len: {self.cutoff_len} is too short; use at least 8 tokens")
        if self.overlap_len < 0:
            out.append("overlap_len: must be 0 or more")
        elif self.overlap_len >= self.cutoff_len:
            out.append(f"overlap_len: {self.overlap_len} must be smaller than cutoff_len "
                       f"({self.cutoff_len}), or chunks would never advance")
        if not 0 <= self.newline_window < self.cutoff_len:
            out.append("newline_window: must be between 0 and cutoff_len - 1")
        if self.min_chunk_tokens < 1:
            out.append("min_chunk_tokens: must be at least 1")
        if not 0.0 <= self.eval_fraction < 1.0:
            out.append(f"eval_fraction: {self.eval_fraction} must be in [0, 1)")
        if not 0.0 <= self.test_fraction < 1.0 - self.eval_fraction:
            out.append(f"test_fraction: {self.test_fraction} must be at least 0, and with "
                       f"eval_fraction ({self.eval_fraction}) leave some data to train on")
        return out


def _near_dup(value: Any) -> Any:
    """`off` however it is written (YAML 1.1 reads a bare off as false), a number from text."""
    if value is False or (isinstance(value, str) and value.strip().lower() == "off"):
        return "off"
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value
