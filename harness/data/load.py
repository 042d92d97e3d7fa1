"""From a data config to a checked dataset: find the files, detect the format, read every file
with its format's reader, filter, deduplicate, fingerprint and split."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.config import DataConfig
from harness.data.alpaca import load_alpaca
from harness.data.clean import Cleaning, settings_of
from harness.data.cleaned_cache import cached_clean
from harness.data.formatfile import load_format_file
from harness.data.medquad import DOCUMENT_FIELDS, MedquadOptions, load_medquad
from harness.data.messages import is_conversation, load_conversations
from harness.data.rawtext import (
    Chunking,
    TokenOffsets,
    load_rawtext,
    tokenizer_offsets,
    word_offsets,
)
from harness.data.records import (
    Problem,
    Record,
    Split,
    drop_duplicates,
    drop_refusals,
    fingerprint,
)
from harness.data.textfile import read_json_records
from harness.errors import DataError

SUFFIXES = {
    "medquad": (".xml",),
    "rawtext": (".txt",),
    "alpaca": (".json", ".jsonl"),
    "chat": (".json", ".jsonl"),
}

Reader = Callable[[Path], tuple[list[Record], list[Problem]]]


@dataclass
class Dataset:
    """Usable records, everything left out with its reason, the fingerprint and the split."""

    format: str
    path: str
    files: list[str]
    records: list[Record]
    problems: list[Problem]
    fingerprint: str
    split: Split
    notes: list[str]
    cleaning: Cleaning = field(default_factory=Cleaning)
    """Near-duplicates and contamination found, for the report and lineage."""

    @property
    def read(self) -> int:
        """Records met in the files, usable or not."""
        return len(self.records) + sum(p.record is not None for p in self.problems)

    @property
    def defects(self) -> list[Problem]:
        return [p for p in self.problems if p.is_defect]

    def skipped(self) -> dict[str, int]:
        return dict(Counter(p.reason for p in self.problems))

    def require_usable(self, *, allow_defects: bool) -> None:
        """Raise a DataError when training on this data would be wrong or impossible."""
        defects = self.defects
        if defects and not allow_defects:
            shown = "\n    ".join(p.describe() for p in defects[:5])
            more = f"\n    ... and {len(defects) - 5} more" if len(defects) > 5 else ""
            raise DataError(self.path, f"{len(defects)} record(s) or file(s) cannot be used:\n"
                            f"    {shown}{more}", hint="fix them (`harness data check` lists all),"
                            " or set data.on_invalid: skip to train without them")
        if not self.records:
            raise DataError(self.path, "no usable records remain after filtering",
                            hint="run `harness data check` to see why each was left out")


def load_dataset(config: DataConfig, *, tokenizer: Any = None,
                 held_out: Sequence[tuple[str, list[Record]]] = (),
                 cache: Path | None = None) -> Dataset:
    """Read and check the data of ``config``; a tokenizer is used to cut raw text by tokens.
    Training records are checked for contamination against the test split, the evaluation
    sets the config names, and ``held_out`` (named record sets, e.g. the general text). With
    ``cache`` (a HARNESS_HOME) the checks' outcome is kept there and reused."""
    root = Path(config.path)
    if not root.exists():
        raise DataError(root, "no such file or directory",
                        hint="check the path (it is relative to where you run the command)")
    fmt = config.format if config.format != "auto" else detect_format(root)
    files, ignored = _files(root, fmt)
    notes: list[str] = []
    reader = _reader(config, fmt, tokenizer, notes)
    records, problems = _read_all(root, files, reader)
    problems = ignored + problems
    if config.refusal_phrases:
        records, dropped = drop_refusals(records, config.refusal_phrases)
        problems += dropped
    if config.dedupe:
        records, dropped = drop_duplicates(records)
        problems += dropped
    evaluation_sets = [*held_out, *((p, _evaluation_set(p, tokenizer))
                                    for p in config.decontaminate.against)]
    cleaned = cached_clean(cache, records, config, evaluation_sets)
    return Dataset(fmt, str(root), [str(f) for f in files], cleaned.records,
                   problems + cleaned.problems, fingerprint(cleaned.records,
                                                           settings=_settings(config)),
                   cleaned.split, notes + cleaned.notes, cleaned.cleaning)


def _settings(config: DataConfig) -> str:
    """The checks' settings and evaluation sets: part of the fingerprint, so a changed
    threshold or benchmark is a different dataset."""
    return json.dumps({**settings_of(config), "against": sorted(config.decontaminate.against)},
                      sort_keys=True)


def _evaluation_set(path: str, tokenizer: Any) -> list[Record]:
    """An evaluation set named in data.decontaminate.against, read whole: one that cannot be
    read, or holds a defect, is an error naming it (never silently skipped)."""
    config = DataConfig(path=path, eval_fraction=0.0, test_fraction=0.0, dedupe=False,
                        near_dup="off", refusal_phrases=[])
    try:
        data = load_dataset(config, tokenizer=tokenizer)
        data.require_usable(allow_defects=False)
    except DataError as err:
        raise DataError(err.path, f"evaluation set to decontaminate against: {err.what}",
                        record=err.record, hint=err.hint or "fix it, or leave it out of "
                        "data.decontaminate.against (--against)") from err
    return data.records


def detect_format(root: Path) -> str:
    """Decide the format from file suffixes and, for JSON, from the first record."""
    files = [root] if root.is_file() else _listing(root)
    suffixes = Counter(p.suffix.lower() for p in files)
    has_json = suffixes[".json"] + suffixes[".jsonl"] > 0
    if suffixes[".xml"] and has_json:
        raise DataError(root, "holds both XML and JSON files, so the format is ambiguous",
                        hint="pass --format (medquad, alpaca or chat) or separate the files")
    if suffixes[".xml"]:
        return "medquad"
    if has_json:
        first = next((p for p in files if p.suffix.lower() in (".json", ".jsonl")
                      and p.stat().st_size > 0), None)
        if first is None:
            return "alpaca"  # every JSON file is empty: each is reported as such
        items, _ = read_json_records(first)
        return "chat" if items and is_conversation(items[0].value) else "alpaca"
    if suffixes[".txt"]:
        return "rawtext"
    raise DataError(root, "cannot tell the data format: no .xml, .json, .jsonl or .txt files",
                    hint="pass --format alpaca|chat|rawtext|medquad")


def _listing(root: Path) -> list[Path]:
    """The regular files under ``root`` (what else is there, `_odd_entries` reports)."""
    return sorted(p for p in root.rglob("*") if p.is_file())


def _odd_entries(root: Path) -> list[Problem]:
    """Entries under ``root`` that are neither directories nor regular files: a broken link,
    a FIFO, a socket, a device. Reported, never opened (reading a FIFO would wait forever)."""
    problems = []
    for p in sorted(root.rglob("*")):
        if p.is_symlink() and not p.exists():
            problems.append(Problem("broken_link", str(p), f"a symbolic link to "
                                    f"{os.readlink(p)}, which does not exist: not read"))
        elif p.exists() and not p.is_dir() and not p.is_file():
            problems.append(Problem("not_a_file", str(p), "a FIFO, socket or device, not a "
                                    "regular file: not read"))
    return problems


def _files(root: Path, fmt: str) -> tuple[list[Path], list[Problem]]:
    if root.is_file():
        if root.stat().st_size == 0:
            raise DataError(root, "the file is empty", hint="point the harness at a file with "
                            "records")
        return [root], []
    wanted = SUFFIXES[fmt]
    files: list[Path] = []
    ignored: list[Problem] = _odd_entries(root)
    for p in _listing(root):
        if p.suffix.lower() not in wanted:
            ignored.append(Problem("ignored_file", str(p),
                                   f"not a {'/'.join(wanted)} file, so not {fmt} data"))
        elif p.stat().st_size == 0:
            ignored.append(Problem("empty_file", str(p), "the file is empty: nothing to read"))
        else:
            files.append(p)
    if not files:
        raise DataError(root, f"no {' or '.join(wanted)} files for format {fmt}",
                        hint="check the path, or pass the right --format")
    return files, ignored


def _reader(config: DataConfig, fmt: str, tokenizer: Any, notes: list[str]) -> Reader:
    if fmt == "chat" and config.format_file:
        raise DataError(config.format_file, "format files apply to alpaca and medquad data; "
                        "conversations are rendered with the model's chat template",
                        hint="drop format_file, or use --format alpaca")
    if fmt == "alpaca":
        formats = load_format_file(config.format_file or "alpaca")
        key = config.response_key or "output"
        return lambda p: load_alpaca(p, formats, response_key=key,
                                     ignore_keys=config.ignore_keys)
    if fmt == "chat":
        return load_conversations
    if fmt == "medquad":
        options = MedquadOptions(
            sources=config.sources, qtypes=config.qtypes,
            formats=(load_format_file(config.format_file, extra_fields=DOCUMENT_FIELDS)
                     if config.format_file else None),
            response_key=config.response_key or "answer")
        return lambda p: load_medquad(p, options)
    chunking = Chunking(config.cutoff_len, config.overlap_len, config.hard_cut,
                        config.newline_window, config.min_chunk_tokens)
    offsets: TokenOffsets = word_offsets
    if tokenizer is None:
        notes.append("raw text was cut by words, a stand-in for tokens: give a model to cut "
                     "by its tokenizer")
    else:
        offsets = tokenizer_offsets(tokenizer)
    return lambda p: load_rawtext(p, chunking, offsets)


def _read_all(root: Path, files: list[Path], reader: Reader) -> tuple[list[Record], list[Problem]]:
    """Every file read; in a directory, a file that cannot be read is reported, not fatal."""
    records: list[Record] = []
    problems: list[Problem] = []
    for path in files:
        try:
            got, bad = reader(path)
        except DataError as err:
            if root.is_file():
                raise
            problems.append(Problem("unreadable_file", str(path), _short(err)))
            continue
        records += [_placed(r, path=path, root=root) for r in got]
        problems += bad
    return records, problems


def _placed(record: Record, *, path: Path, root: Path) -> Record:
    """``record`` with a group named from its file's place under ``root`` rather than its full
    path, so that the same data copied or moved elsewhere splits the same way."""
    prefix = str(path)
    if not record.group.startswith(prefix):
        return record  # a group named by the document (MedQuAD, conversation ids)
    place = path.name if root.is_file() else path.relative_to(root).as_posix()
    return replace(record, group=place + record.group[len(prefix):])


def _short(err: DataError) -> str:
    return err.what + (f" ({err.hint})" if err.hint else "")
