"""Where a study lives, as a URL: sqlite:///, postgresql://, mysql:// for Optuna's RDB storage,
anything else a journal file path (the default, mlruns/optuna.journal)."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_STORAGE = Path("mlruns") / "optuna.journal"
RDB_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql")


def storage_url(given: str | None) -> str:
    """The storage a command uses: ``given``, else HARNESS_STORAGE, else the default journal."""
    return given or os.environ.get("HARNESS_STORAGE") or str(DEFAULT_STORAGE.resolve())


def scheme_of(url: str) -> str:
    """The URL's scheme without its driver (`postgresql+psycopg` -> `postgresql`); '' for a path."""
    return url.split("://", 1)[0].split("+", 1)[0] if "://" in url else ""
