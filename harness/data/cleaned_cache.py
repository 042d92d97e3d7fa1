"""The near-duplicate and contamination checks' outcome, cached in `HARNESS_HOME`, so that the
sweep's data check runs them once and every trial of the study reuses it (on 100,000 records
they take most of a minute; the trial's start should not).

An entry is keyed by what the checks read: each record's place, group and content, the
evaluation sets' records, and the settings that decide the outcome. It stores positions into
the records, not the records, which the caller has read anyway.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from harness.cache import entry, read_pickle, write_pickle
from harness.config import DataConfig
from harness.data.clean import Cleaned, clean, settings_of
from harness.data.records import Record, Split

FORMAT = 1
"""Raise when what an entry holds changes shape."""


def records_digest(records: Sequence[Record]) -> str:
    """A digest of everything the checks read from each record."""
    digest = hashlib.sha256()
    for rec in records:
        digest.update(repr((rec.path, rec.index, rec.group, rec.content_key, rec.content))
                      .encode("utf-8"))
        digest.update(b"\x00")
    return digest.hexdigest()


def cached_clean(home: Path | None, records: list[Record], config: DataConfig,
                 evaluation_sets: Sequence[tuple[str, list[Record]]]) -> Cleaned:
    """`clean`'s outcome, from the cache under ``home`` when it holds one (stored otherwise);
    computed afresh when ``home`` is None."""
    if home is None:
        return clean(records, config, evaluation_sets)
    settings = {**settings_of(config), "seed": config.seed,
                "eval_fraction": config.eval_fraction, "test_fraction": config.test_fraction}
    key = {"records": records_digest(records), "settings": settings, "format": FORMAT,
           "evaluation_sets": [[name, records_digest(recs)] for name, recs in evaluation_sets]}
    path = entry(home, "cleaned", key, suffix=".pickle")
    stored = read_pickle(path)
    if isinstance(stored, dict) and stored.get("format") == FORMAT:
        return _rebuilt(stored, records)
    cleaned = clean(records, config, evaluation_sets)
    write_pickle(path, _positions(cleaned, records))
    return cleaned


def _positions(cleaned: Cleaned, records: Sequence[Record]) -> dict[str, object]:
    at = {id(r): i for i, r in enumerate(records)}
    split = cleaned.split
    return {"format": FORMAT, "kept": [at[id(r)] for r in cleaned.records],
            **{side: [at[id(r)] for r in recs] for side, recs in
               (("train", split.train), ("eval", split.eval), ("test", split.test))},
            "note": split.note, "problems": cleaned.problems, "notes": cleaned.notes,
            "cleaning": cleaned.cleaning}


def _rebuilt(stored: dict, records: Sequence[Record]) -> Cleaned:
    def pick(side: str) -> list[Record]:
        return [records[i] for i in stored[side]]

    split = Split(pick("train"), pick("eval"), pick("test"), stored["note"])
    return Cleaned(pick("kept"), stored["problems"], split, stored["notes"], stored["cleaning"])
