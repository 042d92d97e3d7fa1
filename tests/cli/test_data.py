"""`harness data check` from the command line: the report, its verdict and exit code, and its
flags."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "datasets" / "samples"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("sample, fmt", [
    ("medquad", "medquad"),
    ("alpaca.json", "alpaca"),
    ("conversations.jsonl", "chat"),
    ("rawtext", "rawtext"),
])
def test_bundled_samples_are_usable(capsys: pytest.CaptureFixture[str], sample: str,
                                    fmt: str) -> None:
    code, out, _ = run(capsys, "data", "check", str(SAMPLES / sample), "--json")
    report = json.loads(out)
    assert code == 0, report["verdict"]
    assert report["format"] == fmt
    assert report["usable"] > 0 and len(report["fingerprint"]) == 64
    for key in ("records", "usable", "skipped", "fingerprint", "split", "examples"):
        assert key in report


def test_human_report_names_what_matters(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "data", "check", str(SAMPLES / "medquad"))
    assert code == 0
    for fragment in ("records read", "usable", "fingerprint", "empty_answer", "Usable for "
                     "training"):
        assert fragment in out


def test_unusable_data_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "d.json"
    data.write_text('[{"prompt": "a", "completion": "b"}]')
    code, out, _ = run(capsys, "data", "check", str(data))
    assert code == 1 and "no_template" in out and "Not usable" in out


def test_errors_exit_2_and_name_the_file(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "broken.json"
    data.write_text('[{"instruction": "a", "output": "b"},\n {"instruction": }]')
    code, _, err = run(capsys, "data", "check", str(data))
    assert code == 2 and str(data) in err and "line 2" in err and "Traceback" not in err
    code, _, err = run(capsys, "data", "check", str(tmp_path / "missing"))
    assert code == 2 and "no such file or directory" in err
    code, _, err = run(capsys, "data", "check", str(data), "--cutoff-len", "16",
                       "--overlap-len", "16")
    assert code == 2 and "overlap_len" in err


def test_embedded_model_measures_tokens(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path))
    args = ["data", "check", str(SAMPLES / "medquad"), "--model", "smollm2-135m-instruct",
            "--json", "--cutoff-len", "64"]
    code, out, _ = run(capsys, *args)
    report = json.loads(out)
    assert code == 0
    assert report["rendering"] == "the model's chat template"
    assert report["tokens"]["count"] == report["usable"] and report["tokens"]["truncated"] > 0
    first = "".join(s["text"] for s in report["examples"][0]["segments"])
    assert first.startswith("<|im_start|>system")
    assert (tmp_path / "models" / "smollm2-135m-instruct" / "tokenizer").is_dir()
    code, again, _ = run(capsys, *args)  # now from the cache
    assert json.loads(again)["tokens"] == report["tokens"]


def test_unknown_model_lists_what_is_available(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code, _, err = run(capsys, "data", "check", str(SAMPLES / "alpaca.json"), "--model",
                       "nobody/no-such-model")
    assert code == 2 and "smollm2-135m-instruct" in err


def test_refusal_phrases_and_ignored_keys_from_the_command_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "d.json"
    data.write_text('[{"id": 1, "instruction": "a", "output": "As an AI language model, no"},'
                    ' {"id": 2, "instruction": "b", "output": "banana split"},'
                    + ",".join(f'{{"id": {i}, "instruction": "q{i}", "output": "r{i}"}}'
                               for i in range(3, 12)) + "]")
    code, out, _ = run(capsys, "data", "check", str(data), "--json", "--ignore-key", "id")
    assert code == 0 and json.loads(out)["skipped"] == {"refusal": 1}
    code, out, _ = run(capsys, "data", "check", str(data), "--json", "--ignore-key", "id",
                       "--refusal-phrase", "BANANA")
    assert code == 0 and json.loads(out)["problems"][0]["record"] == 1
    code, out, _ = run(capsys, "data", "check", str(data), "--json")
    assert code == 1 and json.loads(out)["skipped"] == {"non_string_value": 11}


def test_data_check_says_why_data_that_cannot_train_is_not_usable(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    one = tmp_path / "one.json"
    one.write_text(json.dumps([{"instruction": "Say hi.", "output": "Hi."}]))
    code, out, _ = run(capsys, "data", "check", str(one))
    assert code == 1 and "Not usable" in out and "the eval split is empty" in out

    fmt = tmp_path / "no-response.json"
    fmt.write_text(json.dumps({"instruction,output": "Q: %instruction%\n"}))
    data = tmp_path / "two.json"
    data.write_text(json.dumps([{"instruction": f"Q{i}", "output": f"A{i}"} for i in range(20)]))
    code, out, _ = run(capsys, "data", "check", str(data), "--format-file", str(fmt), "--json")
    reasons = json.loads(out)["verdict"]["reasons"]
    assert code == 1 and any("no record has a response to learn from" in r for r in reasons)


def test_data_check_shows_a_bounded_part_of_a_huge_example(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "huge.json"
    huge = "word " * 1_000_000
    data.write_text(json.dumps([{"instruction": f"Q{i}", "output": huge if i == 0 else "A"}
                                for i in range(10)]))
    code, out, _ = run(capsys, "data", "check", str(data), "--examples", "10")
    assert code == 0 and len(out) < 40_000
    assert "more characters]" in " ".join(out.split())  # the console wraps lines


