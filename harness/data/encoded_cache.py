"""The encoded (tokenized) splits, cached in `HARNESS_HOME` so that the sweep's data check and
every trial of a study tokenize a dataset once between them, not once each.

An entry is keyed by what encoding reads: each record's text as it reaches the renderer, the
tokenizer (vocabulary, special tokens, chat template), `cutoff_len` and `train_on`; so an edited
file, another tokenizer or another cutoff can never be served a stale entry.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from harness.cache import entry, read_pickle, write_pickle
from harness.data.encode import Encoded
from harness.data.records import Record

Indexed = list[tuple[int, Encoded]]
"""Encoded examples with their record's position in the split (records that leave no
trainable token are left out)."""

FORMAT = 2
"""Raise when what an entry holds changes shape."""


def records_key(records: Sequence[Record]) -> str:
    """A digest of exactly what encoding reads from each record."""
    digest = hashlib.sha256()
    for rec in records:
        digest.update(repr((rec.segments, rec.messages, rec.ends_text)).encode("utf-8"))
        digest.update(b"\x00")
    return digest.hexdigest()


def tokenizer_key(tokenizer: Any) -> str:
    """A digest of the tokenizer: its full definition where it has one (fast tokenizers), else
    its vocabulary; plus its special tokens and chat template."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    body = backend.to_str() if backend is not None else repr(sorted(tokenizer.get_vocab().items()))
    extra = repr((tokenizer.special_tokens_map, getattr(tokenizer, "chat_template", None),
                  tokenizer.pad_token_id, tokenizer.eos_token_id))
    return hashlib.sha256((body + extra).encode("utf-8")).hexdigest()


def cached_encoding(home: Path | None, *, key: Callable[[], dict[str, Any]],
                    encode: Callable[[], dict[str, Indexed]]) -> dict[str, Indexed]:
    """``encode()``'s result, from the cache under ``home`` when it holds one for ``key()``
    (stored there otherwise); no cache at all, and no key computed (hashing the tokenizer and
    every record), when ``home`` is None."""
    if home is None:
        return encode()
    path = entry(home, "encoded", {**key(), "format": FORMAT}, suffix=".pickle")
    stored = read_pickle(path)
    if isinstance(stored, dict) and set(stored) == {"train", "eval", "test"}:
        return stored
    encoded = encode()
    write_pickle(path, encoded)
    return encoded
