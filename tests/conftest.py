"""Shared fixtures: paths to the real MedQuAD collections and a tiny, locally built tokenizer."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import seeded_store
from hypothesis import settings
from servers import Postgres, running_postgres

from bench.random_llama import build_tiny_model, build_tiny_tokenizer

# CI explores the same examples every run (a red CI blocks landing); elsewhere each run explores
# new ones, and hypothesis keeps any failure it finds in .hypothesis/ to replay.
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")

ROOT = Path(__file__).resolve().parents[1]
MEDQUAD = ROOT.parent / "shared" / "data" / "medquad"

@pytest.fixture(scope="session")
def tiny_tokenizer() -> Any:
    return build_tiny_tokenizer()


@pytest.fixture(scope="session")
def medquad_dir() -> Path:
    if not MEDQUAD.is_dir():
        pytest.fail(f"the shared MedQuAD collections are missing at {MEDQUAD}")
    return MEDQUAD


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def harness_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One HARNESS_HOME for the session, so the embedded model is converted once."""
    home = tmp_path_factory.mktemp("harness-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HARNESS_HOME", str(home))
        yield home


@pytest.fixture
def stores(tmp_path: Path, harness_home: Path) -> dict[str, str]:
    """A study journal and an MLflow SQLite store of the test's own."""
    return {"storage": str(tmp_path / "optuna.journal"),
            "uri": seeded_store(tmp_path / "mlflow.db")}


class SmallDisk:
    """A size-limited tmpfs mounted for one test: a disk that really fills up."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.filler = path / "filler.bin"

    def fill(self) -> None:
        """Write until the disk says ENOSPC: nothing more fits after this."""
        import errno

        with open(self.filler, "ab", buffering=0) as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError as err:
                assert err.errno == errno.ENOSPC, err
        # a last tail smaller than a chunk may still fit
        with open(self.filler, "ab", buffering=0) as f, contextlib.suppress(OSError):
            while True:
                f.write(b"\0" * 512)
                f.flush()

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Callable[[str], SmallDisk]]:
    """Mounts a tmpfs of the given size (`small_disk("64m")`); unmounted after the test. Needs
    the right to mount, which root has on the project's machines and CI."""
    import subprocess

    mounted: list[Path] = []

    def mount(size: str) -> SmallDisk:
        where = tmp_path / f"disk-{len(mounted)}"
        where.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs",
                               str(where)], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        mounted.append(where)
        return SmallDisk(where)

    yield mount
    for where in mounted:
        subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """One throw-away PostgreSQL server for the session; each test makes its own database."""
    with running_postgres() as server:
        yield server
