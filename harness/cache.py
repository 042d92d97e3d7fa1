"""Results that do not change within a study, kept in `HARNESS_HOME` and shared by its trials: the
base model's eval loss and sample outputs, and the tokenized data.

Each entry is one file named by a hash of everything its value depends on, written to a
temporary name and renamed into place, so concurrent trials (several workers on one machine)
never read a half-written entry: at worst two of them compute the same value once each.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pickle
from dataclasses import asdict
from pathlib import Path
from typing import Any

from harness.config import TrainConfig
from harness.models import harness_home


def entry(home: Path, kind: str, key: dict[str, Any], *, suffix: str = ".json") -> Path:
    """The file holding the ``kind`` value for ``key`` (a JSON-able description of all it
    depends on)."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]
    return home / kind / f"{digest}{suffix}"


def base_model_entry(kind: str, config: TrainConfig, **depends: Any) -> Path:
    """The ``kind`` entry of a result of the base model alone (no adapter): it depends on the
    model and its quantization, plus ``depends``."""
    return entry(harness_home(), kind, {"model": config.model,
                                        "quantization": asdict(config.quantization),
                                        **depends})


def read_json(path: Path) -> Any | None:
    """The value stored at ``path``, or None when there is none (or it cannot be read)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def write_json(path: Path, value: Any) -> None:
    _put(path, json.dumps(value).encode())


def read_pickle(path: Path) -> Any | None:
    """A value this harness pickled at ``path`` itself, or None."""
    try:
        with path.open("rb") as f:
            return pickle.load(f)
    except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError,
            ValueError, TypeError):
        return None


def write_pickle(path: Path, value: Any) -> None:
    _put(path, pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))


def _put(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # concurrent trials write apart
    try:
        tmp.write_bytes(data)
        tmp.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
