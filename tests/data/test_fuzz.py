"""Property tests: whatever bytes a user points the data readers at, only HarnessError escapes.

Each property also checks what a successful read promises: every record of the input is either a
record or a problem (nothing dropped, nothing counted twice), and response text stays verbatim.
"""

from __future__ import annotations

import codecs
import json
import re
import string
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from lxml import etree

from harness.data.alpaca import load_alpaca
from harness.data.formatfile import FormatFile, fill, load_format_file
from harness.data.medquad import MedquadOptions, clean_text, load_medquad
from harness.data.messages import ROLE_NAMES, load_conversations
from harness.data.records import Problem, Record
from harness.data.textfile import JsonItem, read_json_records
from harness.errors import DataError, HarnessError

FUZZ = settings(max_examples=200, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])

T = TypeVar("T")

# ---------------------------------------------------------------------------------------------
# Helpers


def write(directory: Path, name: str, data: bytes | str) -> Path:
    path = directory / name
    # surrogatepass: generated text may hold lone surrogates; their bytes are invalid UTF-8,
    # which the readers must reject with a DataError like any other bad encoding.
    path.write_bytes(data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data)
    return path


def attempt(read: Callable[[], T]) -> T | HarnessError:
    """The result of ``read``, or the HarnessError it raised; anything else fails the test."""
    try:
        return read()
    except HarnessError as err:
        assert str(err)
        return err


def load_array(read: Callable[[], Any], items: list[Any]) -> Sequence[Record]:
    """Records of a loader given a JSON array: an error only for an empty array, and every
    item accounted for as a record or a problem."""
    result = attempt(read)
    if isinstance(result, HarnessError):
        assert items == []
        return []
    records, problems = result
    assert_accounted(records, problems, len(items))
    return records


def assert_indexes_contiguous(indexes: Sequence[int]) -> None:
    assert sorted(indexes) == list(range(len(indexes)))


def assert_accounted(records: Sequence[Record], problems: Sequence[Problem], items: int) -> None:
    """Every one of ``items`` input records became exactly one record or one problem."""
    indexes = [r.index for r in records] + [p.record for p in problems if p.record is not None]
    assert len(records) + sum(p.record is not None for p in problems) == items
    assert sorted(indexes) == list(range(items))


# ---------------------------------------------------------------------------------------------
# Strategies

FINITE_SCALARS = (st.none() | st.booleans() | st.integers()
                  | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20))
ANY_SCALARS = FINITE_SCALARS | st.floats()  # NaN and infinities: Python writes and reads them


def json_of(scalars: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.recursive(
        scalars,
        lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids,
                                                                   max_size=4),
        max_leaves=12)


FINITE_JSON = json_of(FINITE_SCALARS)
ANY_JSON = json_of(ANY_SCALARS)
OBJECTS = st.dictionaries(st.text(max_size=8), FINITE_JSON, max_size=5)

BOMS = [b"", codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_LE,
        codecs.BOM_UTF32_BE]
SOME_BYTES = st.builds(lambda bom, body: bom + body, st.sampled_from(BOMS), st.binary(max_size=300))

# Characters that matter to JSON and to line splitting, including the Unicode line breaks.
JSONISH = st.text(alphabet=st.sampled_from(list('{}[]",:\\\n\r 0-.eE\u2028\x85')) | st.characters(),
                  max_size=8)
Mutation = tuple[str, int, int, str]
MUTATIONS = st.lists(st.tuples(st.sampled_from(["delete", "insert", "duplicate", "replace"]),
                               st.integers(0, 10_000), st.integers(0, 20), JSONISH), max_size=4)


def mutate(text: str, mutations: Sequence[Mutation]) -> str:
    for kind, where, length, payload in mutations:
        at = where % (len(text) + 1)
        if kind == "delete":
            text = text[:at] + text[at + length:]
        elif kind == "insert":
            text = text[:at] + payload + text[at:]
        elif kind == "duplicate":
            text = text[:at] + text[at:at + length] + text[at:]
        else:
            text = text[:at] + payload + text[at + len(payload):]
    return text


def jsonl(values: Sequence[Any], *, ensure_ascii: bool = False) -> str:
    return "".join(json.dumps(v, ensure_ascii=ensure_ascii) + "\n" for v in values)


# ---------------------------------------------------------------------------------------------
# textfile.read_json_records


def check_json_records(path: Path) -> tuple[list[JsonItem], list[Problem]] | HarnessError:
    result = attempt(lambda: read_json_records(path))
    if isinstance(result, HarnessError):
        assert isinstance(result, DataError)
        assert result.path == str(path)
        return result
    items, problems = result
    assert items, "a successful read has at least one record"
    assert_indexes_contiguous([i.index for i in items] + [p.record for p in problems
                                                          if p.record is not None])
    assert all(p.reason == "invalid_json" and p.path == str(path) for p in problems)
    return items, problems


@FUZZ
@given(data=SOME_BYTES)
@example(data=b"")
@example(data=b"[" * 100_000)
@example(data=b"{}\n" + b"[" * 100_000 + b"\n")
@example(data=b"[" + b"9" * 5000 + b"]")
@example(data=b'{"a": 1}\n' + b"9" * 5000 + b"\n")
@example(data=codecs.BOM_UTF16_LE + b"{\x00")
@example(data=codecs.BOM_UTF32_LE + b"\x00\x00\x11\x00")
@example(data=codecs.BOM_UTF8 + b"\xff")
def test_read_json_records_on_arbitrary_bytes(tmp_path: Path, data: bytes) -> None:
    check_json_records(write(tmp_path, "data.jsonl", data))


@FUZZ
@given(prefix=st.text(max_size=30), bom=st.sampled_from([b"", codecs.BOM_UTF8]),
       bad=st.sampled_from([b"\xff", b"\xc0\x80", b"\xed\xa0\x80"]), rest=st.binary(max_size=10))
@example(prefix="", bom=codecs.BOM_UTF8, bad=b"\xff", rest=b"")
def test_decode_errors_point_at_the_bad_byte(
    tmp_path: Path, prefix: str, bom: bytes, bad: bytes, rest: bytes
) -> None:
    """The reported offset and line are those of the first invalid byte, BOM or no BOM."""
    head = bom + prefix.encode("utf-8")
    # \xff then \xfe is UTF-16's byte-order mark: that file is UTF-16 text, not a bad byte
    assume(not (head + bad + rest).startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)))
    result = attempt(lambda: read_json_records(write(tmp_path, "bad.json", head + bad + rest)))
    assert isinstance(result, DataError)
    match = re.search(r"byte 0x([0-9a-f]{2}) at offset (\d+) \(line (\d+)\)", result.what)
    assert match, result.what
    assert (int(match[1], 16), int(match[2]), int(match[3])) == (
        bad[0], len(head), prefix.count("\n") + 1), result.what


@FUZZ
@given(values=st.lists(FINITE_JSON, max_size=6), ensure_ascii=st.booleans(),
       indent=st.sampled_from([None, 1, "\t"]))
def test_json_array_round_trips(
    tmp_path: Path, values: list[Any], ensure_ascii: bool, indent: int | str | None
) -> None:
    text = json.dumps(values, ensure_ascii=ensure_ascii, indent=indent)
    result = check_json_records(write(tmp_path, "data.json", text))
    if not values:
        assert isinstance(result, DataError)
        return
    assert not isinstance(result, HarnessError)
    items, problems = result
    assert problems == []
    assert [(i.index, i.value, i.line) for i in items] == [(n, v, None)
                                                          for n, v in enumerate(values)]


@FUZZ
@given(value=ANY_JSON, as_array=st.booleans())
def test_any_json_value_is_records_or_a_data_error(
    tmp_path: Path, value: Any, as_array: bool
) -> None:
    text = json.dumps([value] if as_array else value, ensure_ascii=False)
    check_json_records(write(tmp_path, "data.json", text))


@FUZZ
@given(values=st.lists(ANY_JSON, max_size=6), ensure_ascii=st.booleans())
def test_any_json_values_as_jsonl_are_records_or_a_data_error(
    tmp_path: Path, values: list[Any], ensure_ascii: bool
) -> None:
    check_json_records(write(tmp_path, "data.jsonl", jsonl(values, ensure_ascii=ensure_ascii)))


@FUZZ
@given(values=st.lists(OBJECTS, min_size=1, max_size=6), crlf=st.booleans())
@example(values=[{"instruction": "a\u2028b", "output": "c"}, {"instruction": "x", "output": "y"}],
         crlf=False)
@example(values=[{"text": "next line\x85here"}], crlf=False)
def test_jsonl_round_trips(tmp_path: Path, values: list[dict[str, Any]], crlf: bool) -> None:
    """Valid JSONL, written as json.dumps(ensure_ascii=False) writes it, reads back unchanged.

    JSON strings may hold U+2028, U+2029 and U+0085 unescaped; they do not end a JSONL line.
    """
    text = jsonl(values)
    result = check_json_records(write(tmp_path, "data.jsonl",
                                      text.replace("\n", "\r\n") if crlf else text))
    assert not isinstance(result, HarnessError), result
    items, problems = result
    assert problems == []
    assert [(i.index, i.value, i.line) for i in items] == [(n, v, n + 1)
                                                          for n, v in enumerate(values)]


@FUZZ
@given(values=st.lists(OBJECTS, min_size=1, max_size=5), mutations=MUTATIONS)
def test_mutated_jsonl_is_records_problems_or_a_data_error(
    tmp_path: Path, values: list[dict[str, Any]], mutations: list[Mutation]
) -> None:
    text = mutate(jsonl(values, ensure_ascii=True), mutations)
    result = check_json_records(write(tmp_path, "data.jsonl", text))
    if not isinstance(result, HarnessError):
        items, problems = result
        assert all(i.line is not None for i in items)
        assert all(p.record is not None for p in problems)


# ---------------------------------------------------------------------------------------------
# formatfile


@FUZZ
@given(data=SOME_BYTES)
@example(data=b"{}")
@example(data=b'{",": "x"}')
@example(data=b'{"a": 1}')
@example(data=b'{"a,b": "x", "b, a": "y"}')
def test_load_format_file_on_arbitrary_bytes(tmp_path: Path, data: bytes) -> None:
    path = write(tmp_path, "format.json", data)
    result = attempt(lambda: load_format_file(path))
    assert isinstance(result, HarnessError | FormatFile)


@FUZZ
@given(value=ANY_JSON)
def test_load_format_file_on_arbitrary_json(tmp_path: Path, value: Any) -> None:
    path = write(tmp_path, "format.json", json.dumps(value))
    result = attempt(lambda: load_format_file(path))
    if isinstance(result, FormatFile):
        assert isinstance(value, dict)
        assert result.templates
        assert all(keys and isinstance(t, str) for keys, t in result.templates.items())


KEY = st.text(alphabet=string.ascii_lowercase + "_", min_size=1, max_size=6)
# Literal template text: no '%', and never exactly a key name (which, between two placeholders,
# would make a string such as "%a%key%b%" ambiguous; see the test after this one).
LITERAL = st.text(alphabet=st.characters(exclude_characters="%"), max_size=8).filter(
    lambda s: not s or not set(s) <= set(string.ascii_lowercase + "_"))
VALUE = st.text(min_size=1, max_size=12) | st.sampled_from(["%a%", "%%", "%output%", "% b %"])
Part = tuple[str, str]  # ("lit", text) or ("key", name)


@st.composite
def templates(draw: st.DrawFn, keys: frozenset[str]) -> list[Part]:
    key = st.sampled_from(sorted(keys)).map(lambda k: ("key", k))
    return draw(st.lists(LITERAL.map(lambda s: ("lit", s)) | key, max_size=8))


def render(parts: Sequence[Part], fields: dict[str, str]) -> str:
    return "".join(fields[x] if kind == "key" else x for kind, x in parts)


def template_text(parts: Sequence[Part]) -> str:
    return "".join(f"%{x}%" if kind == "key" else x for kind, x in parts)


@FUZZ
@given(data=st.data(), key_sets=st.lists(st.frozensets(KEY, min_size=1, max_size=4),
                                         min_size=1, max_size=4, unique=True))
def test_valid_format_files_load_and_fill_keeps_the_response_verbatim(
    tmp_path: Path, data: st.DataObject, key_sets: list[frozenset[str]]
) -> None:
    parts_of: dict[frozenset[str], list[Part]] = {}
    spec: dict[str, str] = {}
    for keys in key_sets:
        parts_of[keys] = data.draw(templates(keys))
        order = data.draw(st.permutations(sorted(keys)))
        sep = data.draw(st.sampled_from([",", ", ", " , "]))
        spec[sep.join(order)] = template_text(parts_of[keys])
    path = write(tmp_path, "format.json", json.dumps(spec))
    formats = load_format_file(path)
    assert set(formats.templates) == set(key_sets)

    for keys, parts in parts_of.items():
        template = formats.template_for(keys)
        assert template == template_text(parts)
        fields = {k: data.draw(VALUE) for k in sorted(keys)}
        response_key = data.draw(st.sampled_from(sorted(keys)))
        segments = fill(template, fields, response_key)
        cut = next((n for n, p in enumerate(parts) if p == ("key", response_key)), None)
        if cut is None:
            assert [(s.text, s.trainable) for s in segments] == [(render(parts, fields), False)]
            continue
        prompt, rest = render(parts[:cut], fields), render(parts[cut + 1:], fields)
        expected = [(prompt, False), (fields[response_key] + rest, True)]
        assert [(s.text, s.trainable) for s in segments] == [e for e in expected if e[0]]
        trained = [s for s in segments if s.trainable]
        assert len(trained) == 1
        assert trained[0].text.startswith(fields[response_key])


def test_fill_cuts_at_the_response_placeholder_not_inside_another() -> None:
    """In "%b%a%a%", read left to right as fill's one-pass substitution does, the response
    placeholder %a% starts at offset 4; the text "%a%" at offset 2 straddles %b% and a literal."""
    segments = fill("%b%a%a%", {"a": "RESPONSE", "b": "PROMPT"}, "a")
    assert [(s.text, s.trainable) for s in segments] == [("PROMPTa", False), ("RESPONSE", True)]


# ---------------------------------------------------------------------------------------------
# alpaca and conversations

ALPACA_FORMATS = {
    "instruction,output": "### Instruction:\n%instruction%\n\n### Response:\n%output%",
    "input,instruction,output": ("### Instruction:\n%instruction%\n\n### Input:\n%input%\n\n"
                                 "### Response:\n%output%"),
}
FIELD = st.text(max_size=12) | st.none() | FINITE_JSON
ALPACA_LIKE = st.fixed_dictionaries({}, optional={
    "instruction": FIELD, "input": FIELD, "output": FIELD, "id": FIELD, "": FIELD})
ITEMS_ALPACA = st.lists(ALPACA_LIKE | OBJECTS | FINITE_JSON, max_size=8)


@FUZZ
@given(items=ITEMS_ALPACA)
@example(items=[])
@example(items=[{"instruction": "Say hi", "output": "hi %input%"}])
def test_load_alpaca_on_arbitrary_arrays(tmp_path: Path, items: list[Any]) -> None:
    formats = load_format_file(write(tmp_path, "alpaca_format.json", json.dumps(ALPACA_FORMATS)))
    path = write(tmp_path, "data.json", json.dumps(items))
    for record in load_array(lambda: load_alpaca(path, formats), items):
        source = items[record.index]
        assert record.response_text == source["output"]
        assert source["instruction"] in record.segments[0].text


ROLE = st.sampled_from([*sorted(ROLE_NAMES), "Human", "GPT", "robot", ""]) | FINITE_SCALARS
CONTENT = (st.text(max_size=12)
           | st.lists(st.fixed_dictionaries({"type": st.just("text"), "text": st.text(max_size=6)}),
                      max_size=3)
           | FINITE_JSON)
TURN = st.fixed_dictionaries({}, optional={"from": ROLE, "value": CONTENT, "role": ROLE,
                                           "content": CONTENT}) | FINITE_JSON
CONVERSATION = st.fixed_dictionaries({}, optional={
    "conversations": st.lists(TURN, max_size=4) | FINITE_JSON,
    "messages": st.lists(TURN, max_size=4) | FINITE_JSON,
    "system": st.text(max_size=8) | FINITE_JSON,
    "id": st.text(max_size=8) | st.integers() | FINITE_JSON,
})


@FUZZ
@given(items=st.lists(CONVERSATION | OBJECTS | FINITE_JSON, max_size=8))
@example(items=[])
@example(items=[{"messages": [{"role": "user", "content": "hi"},
                              {"role": "assistant", "content": [{"type": "text", "text": "yo"}]}],
                 "id": True}])
def test_load_conversations_on_arbitrary_arrays(tmp_path: Path, items: list[Any]) -> None:
    path = write(tmp_path, "chat.json", json.dumps(items))
    for record in load_array(lambda: load_conversations(path), items):
        assert record.messages
        assert {m.role for m in record.messages} <= {"system", "user", "assistant"}
        assert any(m.role == "assistant" and m.content.strip() for m in record.messages)


# ---------------------------------------------------------------------------------------------
# MedQuAD

MEDQUAD_REASONS = {"empty_question", "empty_answer", "unrecognised_file", "empty_document",
                   "unrecognised_structure"}
VALID_DOC = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<Document id="0000001" source="GARD" url="u">'
    "<Focus>F</Focus><QAPairs><QAPair pid=\"1\"><Question qid=\"1\" qtype=\"information\">"
    "What is F?</Question><Answer>F is   a thing  - one  - two</Answer></QAPair>"
    "<QAPair pid=\"2\"><Question qid=\"2\" qtype=\"symptoms\">Symptoms?</Question><Answer/>"
    "</QAPair></QAPairs></Document>\n")


def check_medquad(path: Path) -> tuple[list[Record], list[Problem]] | HarnessError:
    result = attempt(lambda: load_medquad(path, MedquadOptions()))
    if isinstance(result, HarnessError):
        assert isinstance(result, DataError)
        assert result.path == str(path)
        return result
    records, problems = result
    assert records or problems, "a file gives records or is reported"
    assert {p.reason for p in problems} <= MEDQUAD_REASONS
    assert_indexes_contiguous([r.index for r in records]
                              + [p.record for p in problems if p.record is not None])
    return records, problems


@FUZZ
@given(data=SOME_BYTES | st.builds(lambda m: mutate(VALID_DOC, m).encode("utf-8", "surrogatepass"),
                                   MUTATIONS))
@example(data=b"")
@example(data=b"<a/>")
@example(data=VALID_DOC.encode("utf-8"))
@example(data=VALID_DOC.encode("utf-16"))
@example(data=b'<?xml version="1.0" encoding="no-such-encoding"?><a/>')
@example(data=b'<?xml version="1.0" encoding="UTF-7"?><a>+ADw-</a>')
@example(data=b"<a>&undefined;</a>")
@example(data=b"<a>&#0;</a>")
@example(data=b"<a>" * 300 + b"</a>" * 300)
def test_load_medquad_on_arbitrary_bytes(tmp_path: Path, data: bytes) -> None:
    check_medquad(write(tmp_path, "doc.xml", data))


XML_CHARS = st.characters(exclude_categories=("Cs", "Cc", "Co", "Cn"), include_characters="\n\t")
XML_TEXT = st.text(alphabet=XML_CHARS, max_size=10) | st.sampled_from(
    ["", " ", "\n\t\n", "a  - b  - c", "<&>]]>", "  padded   text  "])
NAMES = st.sampled_from(["Document", "document", "DiseaseFile", "QAPairs", "QAPair", "qapair",
                         "Question", "Answer", "Focus", "{urn:x}QAPair", "Other"])
ATTRS = st.dictionaries(st.sampled_from(["id", "fid", "docid", "source", "url", "qid", "qtype",
                                         "{urn:x}id"]), XML_TEXT, max_size=3)


@st.composite
def xml_trees(draw: st.DrawFn, depth: int = 0) -> etree._Element:
    el = etree.Element(draw(NAMES), draw(ATTRS))
    el.text = draw(XML_TEXT)
    if depth < 3:
        for child in draw(st.lists(xml_trees(depth + 1), max_size=3)):
            child.tail = draw(XML_TEXT)
            el.append(child)
    return el


@FUZZ
@given(tree=xml_trees(), encoding=st.sampled_from(["UTF-8", "UTF-16", "ISO-8859-1", "ASCII"]))
def test_load_medquad_on_arbitrary_trees(tmp_path: Path, tree: etree._Element,
                                         encoding: str) -> None:
    data = etree.tostring(tree, encoding=encoding, xml_declaration=True)
    check_medquad(write(tmp_path, "doc.xml", data))


Pair = tuple[str | None, str | None]  # question and answer text; None: the element is absent


@st.composite
def medquad_documents(draw: st.DrawFn) -> tuple[bytes, list[Pair]]:
    """A wrapper of one or more well-formed MedQuAD documents, in the corpus' schema or a
    variant of it (other names), names in any case or namespace."""
    def name(*bases: str) -> str:
        base = draw(st.sampled_from(bases))
        spelled = draw(st.sampled_from([base, base.lower(), base.upper()]))
        return draw(st.sampled_from([spelled, "{urn:medquad}" + spelled]))

    wrapper = etree.Element("Documents")
    pairs: list[Pair] = []
    for _ in range(draw(st.integers(1, 3))):
        doc = etree.SubElement(wrapper, name("Document", "DiseaseFile", "doc"), draw(ATTRS))
        etree.SubElement(doc, name("Focus", "doctitle-focus")).text = draw(XML_TEXT)
        qapairs = etree.SubElement(doc, name("QAPairs", "qaPairs"))
        for question, answer in draw(st.lists(st.tuples(st.none() | XML_TEXT,
                                                        st.none() | XML_TEXT), max_size=4)):
            pair = etree.SubElement(qapairs, name("QAPair", "pair"))
            if question is not None:
                etree.SubElement(pair, name("Question"), draw(ATTRS)).text = question
            if answer is not None:
                etree.SubElement(pair, name("Answer")).text = answer
            pairs.append((question, answer))
    root = wrapper if len(wrapper) > 1 else wrapper[0]
    return etree.tostring(root, encoding="UTF-8", xml_declaration=True), pairs


@FUZZ
@given(document=medquad_documents())
def test_every_medquad_pair_is_a_record_or_a_problem(
    tmp_path: Path, document: tuple[bytes, list[Pair]]
) -> None:
    data, pairs = document
    result = check_medquad(write(tmp_path, "doc.xml", data))
    assert not isinstance(result, HarnessError), result
    records, problems = result
    if not pairs:
        assert [(p.reason, p.record) for p in problems] == [("empty_document", None)]
        return
    assert_accounted(records, problems, len(pairs))
    outcome: dict[int, Record | Problem] = {r.index: r for r in records}
    outcome.update((p.record, p) for p in problems if p.record is not None)
    for index, (question, answer) in enumerate(pairs):
        got = outcome[index]
        if not clean_text(question or ""):
            assert isinstance(got, Problem) and got.reason == "empty_question"
        elif not clean_text(answer or ""):
            assert isinstance(got, Problem) and got.reason == "empty_answer"
        else:
            assert isinstance(got, Record)
            assert [m.content for m in got.messages] == [clean_text(question or ""),
                                                         clean_text(answer or "")]
