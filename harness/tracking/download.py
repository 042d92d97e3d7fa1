"""Files from the tracking store into a directory of the user's: downloaded into a scratch
directory beside it first (nothing is written there when the download fails or its check
does), then moved in, replacing only files of the same names."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from harness.errors import HarnessError
from harness.urls import redact


@contextlib.contextmanager
def staging(out: str | Path, *, force: bool, purpose: str) -> Iterator[tuple[Path, Path]]:
    """The checked target ``out`` and a scratch directory beside it (removed after): what
    is made there goes into the target with `deliver`."""
    target = Path(out)
    check_target(target, force=force)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{target.name}.{purpose}-",
                                     dir=target.parent) as tmp:
        yield target, Path(tmp)


def download(locate: Callable[[], str], *, store: str, into: Path, ref: str) -> Path:
    """The files of what the user named ``ref``, at the location ``locate()`` finds in the
    store, downloaded into ``into``; where they are. The store not knowing ``ref`` is an error
    naming it, as is a failed download."""
    import mlflow

    try:
        return Path(mlflow.artifacts.download_artifacts(
            artifact_uri=locate(), dst_path=str(into), tracking_uri=store))
    except mlflow.exceptions.MlflowException as err:
        raise HarnessError(f"cannot download {ref} from {redact(store)}: "
                           f"{err.message}") from None


def deliver(source: Path, target: Path) -> None:
    """Move what is in ``source`` into ``target`` (see `merge_into`)."""
    target.mkdir(exist_ok=True)
    merge_into(source, target)


def check_target(target: Path, *, force: bool) -> None:
    """``target`` may receive the files: a directory that is empty, missing, or ``force``."""
    if target.exists() and not target.is_dir():
        raise HarnessError(f"--out {target} is a file: give a directory for the adapter's files")
    found = sorted(p.name for p in target.iterdir()) if target.is_dir() else []
    if found and not force:
        shown = ", ".join(found[:4]) + (", ..." if len(found) > 4 else "")
        raise HarnessError(f"--out {target} is not empty ({shown}): choose an empty directory, "
                           "or pass --force to write the adapter's files into it (files of the "
                           "same names are replaced, everything else is kept)")


def merge_into(source: Path, target: Path) -> None:
    """Move the tree ``source`` into ``target``, replacing files of the same names only (a
    file where a directory goes, or the other way round, stops it before anything moves)."""
    clash = _clash(source, target)
    if clash is not None:
        raise HarnessError(f"{clash} is in the way of the adapter's files (a file where a "
                           "directory goes, or a directory where a file goes): move it away, "
                           "or choose another --out")
    for item in source.iterdir():
        there = target / item.name
        if _is_dir(item):
            there.mkdir(exist_ok=True)
            merge_into(item, there)
        else:
            os.replace(item, there)


def _is_dir(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink()


def _clash(source: Path, target: Path) -> Path | None:
    for item in source.iterdir():
        there = target / item.name
        if not there.exists() and not there.is_symlink():
            continue
        if _is_dir(item) != _is_dir(there):
            return there
        if _is_dir(item):
            inner = _clash(item, there)
            if inner is not None:
                return inner
    return None
