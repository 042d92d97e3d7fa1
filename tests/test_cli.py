from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli import main

ROOT = Path(__file__).resolve().parents[1]
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


def test_python_dash_m_harness_runs(tmp_path: Path) -> None:
    env = {**os.environ, "HARNESS_HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "harness", "data", "check",
                           str(SAMPLES / "alpaca.json"), "--json"],
                          capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["format"] == "alpaca"


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
                    ' {"id": 2, "instruction": "b", "output": "banana split"}]')
    code, out, _ = run(capsys, "data", "check", str(data), "--json", "--ignore-key", "id")
    assert code == 0 and json.loads(out)["skipped"] == {"refusal": 1}
    code, out, _ = run(capsys, "data", "check", str(data), "--json", "--ignore-key", "id",
                       "--refusal-phrase", "BANANA")
    assert code == 0 and json.loads(out)["problems"][0]["record"] == 1
    code, out, _ = run(capsys, "data", "check", str(data), "--json")
    assert code == 1 and json.loads(out)["skipped"] == {"non_string_value": 2}
