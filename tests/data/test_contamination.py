"""Decontamination: training records that overlap an evaluation set, in any format, found by
file and record with the shared words; stock phrases and template text are not contamination;
an evaluation set that cannot be read is an error naming it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from harness.config import DataConfig, Decontamination
from harness.data.contamination import NgramIndex
from harness.data.load import Dataset, load_dataset
from harness.data.records import Message, Record
from harness.errors import DataError

QUESTION = "Which gas do plants take in from the air to make sugar in their leaves during the day?"
ANSWER = "Plants take in carbon dioxide and use the energy of sunlight to turn it into sugar."


def _train(tmp_path: Path, extra: list[dict[str, str]]) -> str:
    rows = [{"instruction": f"Topic number {i}: say something only about item {i} here.",
             "output": f"Item {i} is item {i}, and nothing else {i}."} for i in range(30)]
    path = tmp_path / "train.json"
    path.write_text(json.dumps(rows + extra))
    return str(path)


def _medquad(tmp_path: Path) -> str:
    xml = (f'<Document id="1" source="GARD" url="u"><Focus>Plants</Focus><QAPairs>'
           f'<QAPair pid="1"><Question qid="1_1" qtype="information">{QUESTION}</Question>'
           f'<Answer>{ANSWER}</Answer></QAPair></QAPairs></Document>')
    path = tmp_path / "bench" / "q.xml"
    path.parent.mkdir()
    path.write_text(xml)
    return str(path.parent)


def _load(train: str, *against: str, **settings: Any) -> Dataset:
    return load_dataset(DataConfig(path=train, eval_fraction=0.0, test_fraction=0.0,
                                   decontaminate=Decontamination(against=list(against),
                                                                 **settings)))


def test_an_alpaca_record_holding_a_medquad_question_is_found(tmp_path: Path) -> None:
    leaked = {"instruction": "Answer the biology question.", "input": QUESTION.upper(),
              "output": ANSWER}
    data = _load(_train(tmp_path, [leaked]), _medquad(tmp_path))
    (problem,) = [p for p in data.problems if p.reason == "contaminated"]
    assert problem.record == 30 and problem.path.endswith("train.json")
    assert "q.xml record 0" in problem.detail
    assert "which gas do plants take in from the air" in problem.detail  # the shared words
    assert len(data.records) == 30
    assert data.cleaning.contaminated == {_medquad_name(tmp_path): 1}


def _medquad_name(tmp_path: Path) -> str:
    return str(tmp_path / "bench")


def test_a_chat_benchmark_matches_alpaca_training_text(tmp_path: Path) -> None:
    bench = tmp_path / "bench.jsonl"
    bench.write_text(json.dumps({"messages": [{"role": "user", "content": QUESTION},
                                              {"role": "assistant", "content": ANSWER}]}))
    leaked = {"instruction": QUESTION, "output": "Carbon dioxide."}
    data = _load(_train(tmp_path, [leaked]), str(bench))
    assert [p.record for p in data.problems if p.reason == "contaminated"] == [30]


def test_warn_keeps_the_record_and_error_refuses(tmp_path: Path) -> None:
    train = _train(tmp_path, [{"instruction": QUESTION, "output": ANSWER}])
    bench = tmp_path / "b.json"
    bench.write_text(json.dumps([{"instruction": QUESTION, "output": ANSWER}]))
    warned = _load(train, str(bench), action="warn")
    assert len(warned.records) == 31 and len(warned.cleaning.flagged) == 1
    assert any("warn" in note for note in warned.notes)
    with pytest.raises(DataError, match="share a run of 8 or more words"):
        _load(train, str(bench), action="error")


def _record(text: str, index: int = 0) -> Record:
    return Record("t.json", index, f"g{index}", messages=(Message("user", text),))


def test_a_stock_phrase_alone_is_not_contamination() -> None:
    phrase = "check with your doctor if you have any of the following signs"
    bench = [_record(f"{phrase}. Rash, fever and a stiff neck after a long walk in the hills "
                     "near the old river crossing are the usual first signs of this disease.")]
    index = NgramIndex(8, bench, common=0.01, overlap=0.5)
    train = _record(f"Knee pain after running is common and mostly harmless; {phrase}: "
                    "swelling, warmth, a knee that gives way, or pain at night that wakes you.")
    assert index.overlap_of(train) is None
    strict = NgramIndex(8, bench, common=0.01, overlap=0.0)
    hit = strict.overlap_of(train)
    assert hit is not None and " ".join(hit.span) == phrase


def test_template_text_common_to_the_evaluation_set_never_counts() -> None:
    tool = "toolformer enabled toolformer access weather useful when you want weather data"
    bench = [_record(f"{tool} city number {i} in the list", i) for i in range(20)]
    index = NgramIndex(8, bench, common=0.01, overlap=0.5)
    assert index.overlap_of(_record(f"{tool} and something else entirely")) is None
    assert index.overlap_of(_record(f"{tool} city number 7 in the list")) is not None


def test_the_test_split_is_always_checked(tmp_path: Path) -> None:
    rows = [{"instruction": f"Tell me fact {i} about the subject {i} today.",
             "output": f"Fact {i}: the subject {i} has property {i}."} for i in range(40)]
    path = tmp_path / "d.json"
    path.write_text(json.dumps(rows))
    data = load_dataset(DataConfig(path=str(path), near_dup="off", test_fraction=0.2))
    assert data.cleaning.contaminated == {"the test split": 0}
    # a training record that repeats a test record's text, but is no exact duplicate of it
    test_row = rows[data.split.test[0].index]
    rows.append({"instruction": test_row["instruction"],
                 "output": test_row["output"] + " Thanks."})
    path.write_text(json.dumps(rows))
    data = load_dataset(DataConfig(path=str(path), near_dup="off", test_fraction=0.2))
    assert data.cleaning.contaminated["the test split"] >= 1


@pytest.mark.parametrize("content", [None, "[{broken json", '[{"instruction": 3}]'])
def test_an_unreadable_evaluation_set_is_an_error_naming_it(
        tmp_path: Path, content: str | None, capsys: pytest.CaptureFixture[str]) -> None:
    train = _train(tmp_path, [])
    bench = tmp_path / "bench.json"
    if content is not None:
        bench.write_text(content)
    with pytest.raises(DataError, match="evaluation set to decontaminate against") as err:
        _load(train, str(bench))
    assert str(bench) in str(err.value)
    code = main(["data", "check", train, "--against", str(bench)])
    assert code == 2 and str(bench) in capsys.readouterr().err


def test_the_general_text_is_checked_like_an_evaluation_set(tmp_path: Path) -> None:
    from harness.config import RetentionSettings
    from harness.data.retention import retention_records

    general = retention_records(RetentionSettings(), tokenizer=None)
    copied = general[3]
    train = _train(tmp_path, [{"instruction": copied.messages[0].content,
                               "output": copied.messages[-1].content}]
                   if copied.messages else [{"instruction": "x", "output": copied.plain_text}])
    data = load_dataset(DataConfig(path=train, eval_fraction=0.0, test_fraction=0.0),
                        held_out=[("the general text", general)])
    assert [p.record for p in data.problems if p.reason == "contaminated"] == [30]
    assert data.cleaning.contaminated == {"the general text": 1}
