"""The comparison of scored models: intervals, paired differences against the first, verdicts
in words, JSON, and the per-example table."""

from __future__ import annotations

import json
import math
import random

from harness.assess.command import answer_table
from harness.assess.report import as_json, compare, table, verdicts
from harness.assess.scoring import Scored
from harness.assess.subjects import Subject
from harness.config import QuantConfig


def scored(label: str, *, nll: float, right: int, n: int = 60, seed: int = 0) -> Scored:
    rng = random.Random(seed)
    keys = [f"d.json#{i}" for i in range(n)]
    out = Scored(Subject(label, "adapter", "m", QuantConfig()))
    out.losses = {k: (nll * 10 + rng.uniform(-1, 1), 10) for k in keys}
    out.scores = {"exact_match": {k: float(i < right) for i, k in enumerate(keys)}}
    out.answers = {k: f"answer {i}" for i, k in enumerate(keys)}
    out.asked = {k: (f"question {i}", f"reference {i}") for i, k in enumerate(keys)}
    return out


def test_a_clearly_better_model_is_told_apart_and_a_close_one_is_not() -> None:
    base = scored("base", nll=2.0, right=10)
    better = scored("tuned", nll=1.5, right=40, seed=1)
    close = scored("other", nll=2.0, right=11, seed=2)
    rows = compare([base, better, close], seed=0)
    assert math.isclose(rows[0].figures["exact_match"].mean, 10 / 60)
    assert rows[0].versus_first == {}
    diff = rows[1].versus_first["exact_match"]
    assert math.isclose(diff.mean, 30 / 60) and diff.excludes_zero
    assert rows[1].versus_first["loss"].mean < -0.4 and rows[1].versus_first["loss"].high < 0
    lines = verdicts(rows)
    assert any(line.startswith("tuned is better than base on exact_match: +0.5000")
               for line in lines)
    assert any(line.startswith("other and base cannot be told apart on exact_match with 60 "
                               "examples") for line in lines)
    assert rows == compare([base, better, close], seed=0)  # seeded: the same every time


def test_only_examples_both_models_scored_are_paired() -> None:
    base, other = scored("base", nll=2.0, right=30), scored("other", nll=2.0, right=30)
    del other.losses["d.json#0"]
    other.scores["exact_match"] = {k: v for k, v in list(other.scores["exact_match"].items())[5:]}
    rows = compare([base, other])
    assert rows[1].versus_first["loss"].n == 59
    assert rows[1].versus_first["exact_match"].n == 55


def test_json_and_table_carry_the_same_figures() -> None:
    rows = compare([scored("base", nll=2.0, right=10), scored("tuned", nll=1.5, right=40)])
    got = json.loads(json.dumps(as_json(rows, data={"name": "d.json"})))
    tuned = got["models"][1]
    assert tuned["figures"]["exact_match"]["mean"] == rows[1].figures["exact_match"].mean
    assert tuned["versus_first"]["exact_match"]["low"] > 0
    assert got["models"][0]["versus_first"] == {} and got["verdicts"]
    from rich.console import Console

    console = Console(width=80, record=True)
    console.print(table(rows, title="t"))
    text = console.export_text()
    assert "Δ+0.500*" in text and "0.667" in text


def test_the_answer_table_has_a_row_per_question_and_columns_per_model() -> None:
    table_ = answer_table([scored("base", nll=2.0, right=1, n=3),
                           scored("tuned", nll=1.5, right=2, n=3)])
    assert list(table_) == ["record", "question", "reference", "answer: base",
                            "exact_match: base", "answer: tuned", "exact_match: tuned"]
    assert table_["exact_match: tuned"] == [1.0, 1.0, 0.0] and len(table_["record"]) == 3


def test_a_metric_no_example_could_be_scored_is_named_not_shown() -> None:
    from rich.console import Console

    models = [scored("base", nll=2.0, right=10), scored("tuned", nll=1.5, right=40)]
    for model in models:
        model.scores["number_match"] = {}  # e.g. no reference holds a number
    rows = compare(models)
    console = Console(width=100, record=True)
    console.print(table(rows, title="t"))
    text = " ".join(console.export_text().split())  # the caption wraps at the table's width
    assert "number_match" not in text.split("not shown")[0]
    assert "not shown: number_match (no example could be scored)" in text
    assert "exact_match" in text
