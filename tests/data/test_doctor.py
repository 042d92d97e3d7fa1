from __future__ import annotations

from pathlib import Path

from harness.config import DataConfig
from harness.data.doctor import check

ALPACA = '[{"instruction": "Say hi", "output": "hi"}, {"instruction": "Say hi", "output": "hi"},' \
         ' {"instruction": "Refuse", "output": "As an AI language model, I cannot."},' \
         ' {"instruction": "Count", "input": "1 2", "output": "3"}, {"question": "?"}]'


def test_report_counts_and_reasons(tmp_path: Path) -> None:
    data = tmp_path / "d.json"
    data.write_text(ALPACA)
    report = check(DataConfig(path=str(data), eval_fraction=0.0))
    assert (report["records"], report["usable"], report["duplicates"], report["refusals"],
            report["defects"]) == (5, 2, 1, 1, 1)
    assert report["skipped"] == {"no_template": 1, "refusal": 1, "duplicate": 1}
    assert {(p["reason"], p["record"]) for p in report["problems"]} == {
        ("no_template", 4), ("refusal", 2), ("duplicate", 1)}
    assert report["verdict"] == {"usable": False, "reasons": [
        "the eval split is empty: data.eval_fraction is 0, and trials are judged by their eval "
        "loss", "1 defective record(s) or file(s) (fix them, or set on_invalid: skip)"]}
    skipping = check(DataConfig(path=str(data), on_invalid="skip", eval_fraction=0.5))
    assert skipping["verdict"]["usable"], skipping["verdict"]


def test_examples_show_masked_and_trained_parts(tmp_path: Path) -> None:
    data = tmp_path / "d.json"
    data.write_text(ALPACA)
    report = check(DataConfig(path=str(data), eval_fraction=0.0), examples=1)
    (example,) = report["examples"]
    assert [s["trained"] for s in example["segments"]] == [False, True]
    assert example["segments"][1]["text"] == "hi"


def test_token_lengths_against_the_cutoff(tmp_path: Path, tiny_tokenizer) -> None:
    model_dir = tmp_path / "tiny"
    tiny_tokenizer.save_pretrained(model_dir)
    data = tmp_path / "d.jsonl"
    lines = [f'{{"instruction": "Say {"word " * n}", "output": "ok"}}' for n in (1, 5, 40)]
    data.write_text("\n".join(lines))
    fmt = tmp_path / "fmt.json"
    fmt.write_text('{"instruction,output": "%instruction%\\n=> %output%"}')
    # near_dup off: "Say word ..." 5 and 40 times over are the same set of 3-word shingles
    report = check(DataConfig(path=str(data), format_file=str(fmt), cutoff_len=32,
                              eval_fraction=0.0, near_dup="off"), model=str(model_dir))
    tokens = report["tokens"]
    assert tokens["count"] == report["usable"] == 2
    assert report["skipped"] == {"no_trainable_tokens": 1}
    assert tokens["truncated"] == 0 and tokens["max"] <= 32 < 40
    text = "".join(s["text"] for s in report["examples"][0]["segments"])
    assert text.startswith("<s>") and text.endswith("ok</s>")
