"""The general text a trial's adapter is checked against for forgetting: loaded like any data,
all of it held out, encoded with the trial's tokenizer and chat template."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.config import DataConfig, RetentionSettings
from harness.data.encode import Encoded, encode_all
from harness.data.load import load_dataset
from harness.data.records import Record, fingerprint
from harness.data.render import ChatRenderer
from harness.errors import DataError

SHIPPED = Path(__file__).parent / "general" / "general_text.json"
"""General instructions on everyday topics, none of them from any shipped training sample."""


def retention_records(settings: RetentionSettings, *, tokenizer: Any) -> list[Record]:
    """The general-text records the forgetting check scores (none when it is off): usable as
    they stand, or a DataError naming the defect. Training is checked against them, so that
    the general-text figure is not flattered by training on the same text."""
    if not settings.enabled:
        return []
    config = DataConfig(path=str(settings.path or SHIPPED), format=settings.format,
                        eval_fraction=0.0, test_fraction=0.0, refusal_phrases=[],
                        cutoff_len=settings.cutoff_len, train_on="response", newline_window=0,
                        near_dup="off")
    data = load_dataset(config, tokenizer=tokenizer)
    data.require_usable(allow_defects=False)
    return data.records[:settings.max_records]


def retention_data(settings: RetentionSettings, *, tokenizer: Any, renderer: ChatRenderer,
                   records: Sequence[Record] | None = None) -> tuple[list[Encoded], str]:
    """The encoded general-text examples and their fingerprint; none when retention is off.
    The data must be usable as it stands: defects are reported, as for training data.
    ``records`` are the general text when the caller has read it already
    (`retention_records`)."""
    if not settings.enabled:
        return [], ""
    path = str(settings.path or SHIPPED)
    if records is None:
        records = retention_records(settings, tokenizer=tokenizer)
    kept, _ = encode_all(records, tokenizer, renderer, cutoff_len=settings.cutoff_len,
                         train_on="response")
    if not kept:
        raise DataError(path, f"no general-text record has a response within "
                        f"retention.cutoff_len ({settings.cutoff_len} tokens)",
                        hint="raise retention.cutoff_len, or set retention.enabled: false")
    return [enc for _, enc in kept], fingerprint(records)
