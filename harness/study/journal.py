"""The study journal file: Optuna's journal format and lock, with appends that never tear.

Optuna's JournalFileBackend appends each record with one write. When that write fails halfway
(a full disk, a quota, a process killed mid-write), the file ends in a record cut short, and the
next append is glued to it: from then on Optuna cannot read the file at all, and every study in
it is lost to every command. Here:

- an append that fails takes back what it wrote (the file is cut to its old length) and raises
  `DiskFullError` for a full disk, so a failed write leaves the journal as it was;
- an append that finds the file ending mid-record (a writer that died mid-write) sets the torn
  bytes aside first;
- opening a journal repairs what older writers left behind: a torn last record, or a torn record
  glued to the next one, is cut out and kept in ``JOURNAL.torn`` with where it was. A record cut
  short was never acknowledged to the process that wrote it, so nothing that process believed
  written is dropped. A line that is neither is not guessed at: it is named, with what to do.

Readers go through Optuna's own backend; both use Optuna's lock file, so plain Optuna processes
on the same journal stay safe.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from optuna.storages.journal import (
    BaseJournalBackend,
    JournalFileBackend,
    JournalFileSymlinkLock,
)

from harness.errors import HarnessError, disk_full, is_disk_full

RECORD_START = b'{"op_code":'
"""How every record Optuna writes begins (`JournalStorage._write_log`)."""


class JournalFile(BaseJournalBackend):
    """A journal file shared by the processes of one machine (or an NFS mount)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = JournalFileSymlinkLock(str(self.path))
        self.repairs: list[str] = []
        """What opening the file had to repair, for the user."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._locked():
                if not self.path.exists():
                    self.path.touch()
                self.repairs = repair(self.path)
        except OSError as err:
            if is_disk_full(err):
                raise disk_full(err, self.path) from err
            raise HarnessError(f"cannot open the study journal {self.path}: "
                               f"{err.strerror or err}") from None
        self._reader = JournalFileBackend(str(self.path), lock_obj=self._lock)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self._lock.acquire()
        try:
            yield
        finally:
            self._lock.release()

    def read_logs(self, log_number_from: int) -> Iterable[dict[str, Any]]:
        return self._reader.read_logs(log_number_from)

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        data = "".join(json.dumps(log, separators=(",", ":")) + "\n" for log in logs).encode()
        try:
            with self._locked():
                size = self.path.stat().st_size
                if size and _last_byte(self.path, size) != b"\n":
                    size = _set_aside_tail(self.path, size, why="a writer died mid-record")
                _append(self.path, data, size=size)
        except OSError as err:
            if is_disk_full(err):
                raise disk_full(err, self.path) from err
            raise


def _last_byte(path: Path, size: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(size - 1)
        return f.read(1)


def _append(path: Path, data: bytes, *, size: int) -> None:
    """Write ``data`` at the end and make it durable; on failure cut the file back to ``size``
    (the failed record was never acknowledged, so it must not stay half-written)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        written = 0
        while written < len(data):
            written += os.write(fd, data[written:])
        os.fsync(fd)
    except OSError:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, size)
            os.fsync(fd)
        raise
    finally:
        os.close(fd)


def torn_path(path: Path) -> Path:
    return path.with_name(path.name + ".torn")


def _keep_torn(path: Path, pieces: list[tuple[int, int, bytes]], *, why: str) -> None:
    """Append the torn ``pieces`` (line number, byte offset, bytes) to JOURNAL.torn."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    with open(torn_path(path), "ab") as f:
        for line, offset, piece in pieces:
            f.write(f"# {stamp}: {why}; line {line}, byte {offset}, {len(piece)} bytes:\n"
                    .encode())
            f.write(piece + b"\n")
        f.flush()
        os.fsync(f.fileno())


def _set_aside_tail(path: Path, size: int, *, why: str) -> int:
    """Move the bytes after the last newline to JOURNAL.torn; the new size."""
    with open(path, "rb") as f:
        data = f.read(size)
    keep = data.rfind(b"\n") + 1
    _keep_torn(path, [(data.count(b"\n") + 1, keep, data[keep:])], why=why)
    os.truncate(path, keep)
    return keep


def repair(path: Path) -> list[str]:
    """Cut torn records out of the journal at ``path`` (kept in JOURNAL.torn); what was done.
    Raises HarnessError for a line that is not a torn record, changing nothing."""
    data = path.read_bytes()
    lines = data.split(b"\n")
    tail = lines.pop()  # b"" when the file ends with a newline
    kept: list[bytes] = []
    torn: list[tuple[int, int, bytes]] = []
    offset = 0
    for number, line in enumerate(lines, start=1):
        if _parses(line):
            kept.append(line)
        elif line.strip():
            cut = _glued_record(line)
            if cut is None:
                raise _damaged(path, number, offset)
            torn.append((number, offset, line[:cut]))
            kept.append(line[cut:])
        # a blank line is no record, and Optuna's reader stops at one: it goes
        offset += len(line) + 1
    inside = bool(torn) or len(kept) < len(lines)  # damage before the last line
    if tail:
        torn.append((len(lines) + 1, offset, tail))
    if not torn and not inside:
        return []
    why = "a record cut short (a full disk, or a writer killed mid-write)"
    if inside:
        _rewrite(path, b"".join(line + b"\n" for line in kept), torn=torn, why=why)
    else:
        _set_aside_tail(path, len(data), why=why)  # in place: no second copy on a full disk
    if not torn:
        return [f"the study journal {path} held blank lines, which Optuna cannot read past: "
                "removed"]
    return [f"the study journal {path} held {len(torn)} record(s) cut short (a write that did "
            f"not finish, e.g. on a full disk): removed and kept in {torn_path(path)}; every "
            "complete record is kept"]


def _parses(line: bytes) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def _glued_record(line: bytes) -> int | None:
    """Where a complete record starts in ``line`` after a torn one, or None."""
    start = line.find(RECORD_START, 1)
    while start != -1:
        if _parses(line[start:]):
            return start
        start = line.find(RECORD_START, start + 1)
    return None


def _rewrite(path: Path, data: bytes, *, torn: list[tuple[int, int, bytes]], why: str) -> None:
    """Replace the journal by ``data`` atomically, the ``torn`` pieces kept first; a failure
    (a full disk) leaves the journal and no scratch file behind."""
    tmp = path.with_name(f".{path.name}.repair.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if torn:
            _keep_torn(path, torn, why=why)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _damaged(path: Path, line: int, offset: int) -> HarnessError:
    return HarnessError(
        f"the study journal {path} is damaged at line {line} (byte {offset}): that line is not "
        "an Optuna journal record, nor a record cut short by a failed write. Restore the file "
        "from a backup; or, if you know what wrote that line, remove it by hand (records after "
        "it may refer to it). Nothing was changed.")
