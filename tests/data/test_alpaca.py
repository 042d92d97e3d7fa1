from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.data.alpaca import load_alpaca
from harness.data.formatfile import FORMATS_DIR, fill, load_format_file
from harness.data.medquad import DOCUMENT_FIELDS
from harness.data.records import Segment
from harness.errors import DataError

# A format file in text-generation-webui's convention, as users have them.
WEBUI_STYLE = {
    "instruction,output": "User: %instruction%\nAssistant: %output%",
    "instruction,input,output": "User: %instruction%\n%input%\nAssistant: %output%",
}


def write(tmp_path: Path, name: str, content: object) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_text(json.dumps(content), encoding="utf-8")
    return path


@pytest.fixture
def formats(tmp_path: Path):
    return load_format_file(write(tmp_path, "fmt.json", WEBUI_STYLE))


def test_record_keys_pick_the_template_and_the_prompt_is_masked(tmp_path: Path, formats) -> None:
    data = write(tmp_path, "d.json", [
        {"instruction": "Add 2 and 2", "input": "", "output": "4"},
        {"instruction": "Translate", "input": "chat", "output": "cat"},
    ])
    records, problems = load_alpaca(data, formats)
    assert problems == []
    assert records[0].segments == (Segment("User: Add 2 and 2\nAssistant: ", False),
                                   Segment("4", True))
    assert records[1].segments == (Segment("User: Translate\nchat\nAssistant: ", False),
                                   Segment("cat", True))


def test_no_matching_template_names_file_record_keys_and_key_sets(tmp_path: Path,
                                                                   formats) -> None:
    data = write(tmp_path, "d.json", [{"instruction": "a", "output": "b"},
                                      {"question": "q", "output": "o"}])
    records, problems = load_alpaca(data, formats)
    assert len(records) == 1
    (p,) = problems
    assert (p.reason, p.record, p.path) == ("no_template", 1, str(data))
    assert "output,question" in p.detail
    assert "instruction,output" in p.detail and "input,instruction,output" in p.detail


@pytest.mark.parametrize("value, kind", [(3, "int"), (["x"], "list"), ({"a": 1}, "dict"),
                                         (True, "bool")])
def test_non_string_values_are_named(tmp_path: Path, formats, value: object, kind: str) -> None:
    data = write(tmp_path, "d.jsonl", json.dumps({"instruction": "i", "output": value}) + "\n")
    _, (p,) = load_alpaca(data, formats)
    assert p.reason == "non_string_value" and p.record == 0
    assert f"'output' holds a {kind}" in p.detail and "line 1" in p.detail


def test_ignored_keys_and_nulls_do_not_count(tmp_path: Path, formats) -> None:
    data = write(tmp_path, "d.json", [{"id": 7, "instruction": "i", "input": None,
                                       "output": "o"}])
    records, problems = load_alpaca(data, formats, ignore_keys={"id"})
    assert problems == [] and records[0].response_text == "o"


def test_jsonl_with_a_broken_line_keeps_the_rest(tmp_path: Path, formats) -> None:
    lines = ['{"instruction": "a", "output": "b"}', "{broken", '{"instruction": "c", '
             '"output": "d"}', "[1]"]
    data = write(tmp_path, "d.jsonl", "\n".join(lines) + "\n")
    records, problems = load_alpaca(data, formats)
    assert [r.index for r in records] == [0, 2]
    assert [(p.reason, p.record) for p in problems] == [("invalid_json", 1),
                                                        ("not_an_object", 3)]
    assert "line 2" in problems[0].detail


@pytest.mark.parametrize("content, message", [
    (b"", "file is empty"),
    (b"   \n", "file is empty"),
    (b"[]", "holds no records"),
    (b'[{"instruction": "a",', "malformed JSON at line 1"),
    (b'{"instruction": "a",\n "output": "b"}', "single JSON dict"),
    (b"instruction,output\n", "does not look like JSON"),
    ('[{"instruction": "caf\u00e9"}]'.encode("latin-1"), "not valid UTF-8 text: byte 0xe9"),
])
def test_file_level_errors_name_the_file(tmp_path: Path, formats, content: bytes,
                                         message: str) -> None:
    data = write(tmp_path, "bad.json", content)
    with pytest.raises(DataError) as info:
        load_alpaca(data, formats)
    assert str(data) in str(info.value) and message in str(info.value)


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16"])
def test_byte_order_marked_files_are_read(tmp_path: Path, formats, encoding: str) -> None:
    text = json.dumps([{"instruction": "caf\u00e9", "output": "\u2713"}], ensure_ascii=False)
    data = write(tmp_path, "d.json", text.encode(encoding))
    records, _ = load_alpaca(data, formats)
    assert records[0].response_text == "\u2713"


def test_fill_substitutes_once_and_keeps_unknown_placeholders() -> None:
    segs = fill("%a% %missing% -> %out%!", {"a": "%out%", "out": "X"}, "out")
    assert segs == (Segment("%out% %missing% -> ", False), Segment("X!", True))


def test_template_without_response_placeholder_has_nothing_to_train() -> None:
    (seg,) = fill("Q: %q%", {"q": "hi", "output": "o"}, "output")
    assert seg == Segment("Q: hi", False)


@pytest.mark.parametrize("content, message", [
    ("[1]", "non-empty JSON object"),
    ("{}", "non-empty JSON object"),
    ('{"a,b": 3}', "not a string"),
    ('{" , ": "x"}', "names no keys"),
    ('{"a,b": "x", "b, a": "y"}', "appears twice"),
])
def test_bad_format_files(tmp_path: Path, content: str, message: str) -> None:
    with pytest.raises(DataError, match=message):
        load_format_file(write(tmp_path, "f.json", content))


def test_unknown_format_name_lists_the_shipped_ones() -> None:
    with pytest.raises(DataError, match="alpaca"):
        load_format_file("no-such-format")


def test_every_shipped_format_file_loads_and_marks_a_response() -> None:
    shipped = sorted(FORMATS_DIR.glob("*.json"))
    assert len(shipped) >= 3
    for path in shipped:
        fmt = load_format_file(path, extra_fields=DOCUMENT_FIELDS)
        for keys, template in fmt.templates.items():
            response = "answer" if "answer" in keys else "output"
            assert f"%{response}%" in template, (path, keys)


def test_a_directory_does_not_shadow_a_shipped_format_name(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "chat").mkdir()
    assert load_format_file("chat").path == str(FORMATS_DIR / "chat.json")


def test_a_placeholder_that_names_no_key_is_refused_with_where_it_is(tmp_path: Path) -> None:
    path = write(tmp_path, "typo.json", {"instruction,output": "Q: %instrution%\nA: %output%",
                                         "input,output": "%input% is 100% done: %output%"})
    with pytest.raises(DataError) as info:
        load_format_file(path)
    message = str(info.value)
    assert str(path) in message and "'instruction,output'" in message
    assert "%instrution%" in message and "instruction, output" in message
    # The reader's own fields count as known, and a lone percent sign is text.
    fmt = load_format_file(write(tmp_path, "m.json", {"question,answer": "%focus%: 5% %question%"
                                                      "\n%answer%"}), extra_fields=["focus"])
    assert fmt.template_for(frozenset({"question", "answer"}))
