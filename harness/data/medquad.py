"""MedQuAD medical Q&A XML: a file or a directory tree of documents.

The expected shape is ``Document`` (id, source, url) → ``Focus``, ``QAPairs/QAPair`` →
``Question`` (qid, qtype) and ``Answer``. Variants are recognised by structure rather than by
exact names: names match case-insensitively, without namespaces, hyphens or underscores; a pair
is an element named like one (``QAPair``, ``pair``) or any element holding both a question and an
answer; its document is its nearest ancestor named like one (``Document``, ``doc``, the corpus'
``DiseaseFile`` with ``fid``), else the root; the focus is an element whose name ends in
``focus`` (``doctitle-focus``). A document whose pair list is empty is an empty document; one in
which question or answer elements exist but no pair can be made out is an unrecognised structure,
reported with its path, never called empty. Empty answers (removed from parts of the corpus for
copyright) are skipped and counted.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from harness.data.formatfile import FormatFile, fill
from harness.data.records import Message, Problem, Record
from harness.data.safexml import parse_xml_file

_COLLECTION = re.compile(r"^\d+_(.+?)(_QA)?$", re.IGNORECASE)
_BULLET = re.compile(r"[ \t]{2,}-[ \t]+")
_BLANKS = re.compile(r"\n{3,}")
_DOCUMENTS = frozenset({"document", "doc", "diseasefile"})
_PAIRS = frozenset({"qapair", "pair", "qa"})
DOCUMENT_FIELDS = ("document_id", "source", "url", "focus", "qid", "qtype")
"""What a format file can name besides question and answer: the pair's document and ids."""
_QUESTIONS = frozenset({"question", "q"})
_ANSWERS = frozenset({"answer", "a"})


@dataclass(frozen=True)
class MedquadOptions:
    sources: Collection[str] = ()
    """Keep only these sources (case-insensitive); empty keeps all."""
    qtypes: Collection[str] = ()
    """Keep only these question types (case-insensitive); empty keeps all."""
    formats: FormatFile | None = None
    """Render through this format file (keys question, answer); None makes a chat turn pair."""
    response_key: str = "answer"


def load_medquad(path: Path, options: MedquadOptions) -> tuple[list[Record], list[Problem]]:
    root = parse_xml_file(path)
    records: list[Record] = []
    problems: list[Problem] = []
    by_doc = _pairs_by_document(root)
    for doc_no, (doc, pairs) in enumerate(by_doc.items()):
        info = _document_info(path, doc, doc_no if len(by_doc) > 1 else None)
        for pair in pairs:
            result = _pair(path, len(records) + len(problems), pair, info, options)
            if isinstance(result, Problem):
                problems.append(result)
            else:
                records.append(result)
    if not by_doc:
        problems.append(_no_pairs(path, root))
    return records, problems


def _pairs_by_document(root: etree._Element) -> dict[etree._Element, list[etree._Element]]:
    """Each QA pair under its nearest document element (the root when it has none)."""
    by_doc: dict[etree._Element, list[etree._Element]] = {}
    for pair in _pairs(root):
        doc = next((a for a in pair.iterancestors() if _name(a) in _DOCUMENTS), root)
        by_doc.setdefault(doc, []).append(pair)
    return by_doc


def _pairs(el: etree._Element) -> list[etree._Element]:
    """The QA pairs at or under ``el``, in document order (a pair's own children are not
    searched for more pairs)."""
    found, stack = [], [el]
    while stack:  # not recursive: a deep tree must not exhaust the stack
        here = stack.pop()
        if _is_pair(here):
            found.append(here)
        else:
            stack.extend(reversed(list(here)))
    return found


def _is_pair(el: etree._Element) -> bool:
    if _name(el) in _PAIRS:
        return True
    names = {_name(c) for c in el}
    return bool(names & _QUESTIONS) and bool(names & _ANSWERS)


def _no_pairs(path: Path, root: etree._Element) -> Problem:
    names = {_name(el) for el in root.iter()}
    if names & (_QUESTIONS | _ANSWERS):
        found = sorted({el.tag for el in root.iter() if _name(el) in _QUESTIONS | _ANSWERS})
        return Problem("unrecognised_structure", str(path), f"has {', '.join(found)} elements "
                       "but no pair of a question and an answer could be made out (expected "
                       "Document > QAPairs > QAPair > Question, Answer): check the file's "
                       "structure")
    containers = [el for el in root.iter() if _name(el).endswith("pairs")]
    if containers and not any(len(c) for c in containers):
        return Problem("empty_document", str(path), "a MedQuAD document whose QAPairs list is "
                       "empty")
    return Problem("unrecognised_file", str(path), f"no QA pairs under the root "
                   f"<{root.tag}>: not a MedQuAD document")


def _name(el: etree._Element) -> str:
    """An element's name, compared loosely: no namespace, lower case, no - or _."""
    tag = el.tag
    if not isinstance(tag, str):  # comments, processing instructions
        return ""
    return tag.rpartition("}")[2].lower().replace("-", "").replace("_", "")


def _attr(el: etree._Element, *names: str) -> str:
    lowered = {k.rpartition("}")[2].lower(): v for k, v in el.attrib.items()}
    return next((lowered[n].strip() for n in names if lowered.get(n, "").strip()), "")


def _child_text(el: etree._Element, names: frozenset[str]) -> tuple[etree._Element | None, str]:
    child = next((c for c in el if _name(c) in names), None)
    return child, ("" if child is None else clean_text("".join(child.itertext())))


def _document_info(path: Path, doc: etree._Element, doc_no: int | None) -> dict[str, str]:
    doc_id = _attr(doc, "id", "fid", "docid") or path.stem
    if doc_no is not None and not _attr(doc, "id", "fid", "docid"):
        doc_id = f"{doc_id}#{doc_no}"
    match = _COLLECTION.match(path.parent.name)
    source = _attr(doc, "source") or (match.group(1) if match else path.parent.name)
    focus = next((clean_text("".join(f.itertext())) for f in doc.iter()
                  if _name(f).endswith("focus")), "")
    return {"document_id": doc_id, "source": source, "url": _attr(doc, "url"), "focus": focus}


def _pair(
    path: Path, index: int, pair: etree._Element, info: dict[str, str], options: MedquadOptions
) -> Record | Problem:
    question_el, question = _child_text(pair, _QUESTIONS)
    answer_el, answer = _child_text(pair, _ANSWERS)
    qid = _attr(question_el, "qid") if question_el is not None else ""
    qtype = (_attr(question_el, "qtype") if question_el is not None else "") or "unknown"
    label = f"QA pair {qid or index} ({info['document_id']})"

    def problem(reason: str, detail: str) -> Problem:
        return Problem(reason, str(path), f"{label}: {detail}", index)

    if options.sources and not _matches(info["source"], options.sources):
        return problem("filtered_source", f"source {info['source']} not selected")
    if options.qtypes and not _matches(qtype, options.qtypes):
        return problem("filtered_qtype", f"qtype {qtype} not selected")
    if not question:
        what = "no Question element" if question_el is None else "the question is empty"
        return problem("empty_question", what)
    if not answer:
        what = "no Answer element" if answer_el is None else "the answer is empty"
        return problem("empty_answer", what)
    meta = {**info, "qid": qid, "qtype": qtype}
    fields = {"question": question, "answer": answer}
    if options.formats is None:
        turns = (Message("user", question), Message("assistant", answer))
        return Record(str(path), index, _group(info), messages=turns, meta=meta)
    return _formatted(path, index, fields, meta, options, problem)


def _formatted(
    path: Path,
    index: int,
    fields: dict[str, str],
    meta: dict[str, str],
    options: MedquadOptions,
    problem: Callable[[str, str], Problem],
) -> Record | Problem:
    formats = options.formats
    assert formats is not None
    template = formats.template_for(frozenset(fields))
    if template is None:
        return problem("no_template", f"{formats.path} has no template for the key set "
                       f"answer,question (it has: {'; '.join(formats.key_sets())})")
    values: Mapping[str, str] = {**meta, **fields}
    return Record(str(path), index, _group(meta),
                  segments=fill(template, values, options.response_key), meta=meta,
                  content=(fields["question"], fields["answer"]))


def _group(info: Mapping[str, str]) -> str:
    # Document ids restart in each collection, so the source is part of the identity.
    return f"{info['source']}/{info['document_id']}"


def _matches(value: str, wanted: Collection[str]) -> bool:
    return value.lower() in {w.lower() for w in wanted}


def clean_text(text: str) -> str:
    """Undo the corpus' flattening: bullets back on their own lines, indentation removed."""
    lines: list[str] = []
    for line in text.split("\n"):
        line = line.strip()
        if "  -" in line or "\t-" in line:
            lines += [" ".join(part.split()) for part in _BULLET.sub("\n- ", line).split("\n")]
        else:
            lines.append(" ".join(line.split()))
    return _BLANKS.sub("\n\n", "\n".join(lines)).strip()
