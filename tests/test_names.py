"""Names from user input are checked before they reach MLflow or the disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import ConfigError, HarnessError
from harness.names import check_name, name_problem
from harness.space.load import load_space


@pytest.mark.parametrize("bad", [
    "../escape", "a/../../b", "/abs/path", "~/home", "C:\\\\win", "run#frag", "a;drop",
    "a%2e%2e%2fb", "%2E%2E", "a%00b", "a/b", "a\\\\b", "quote'd", "new\nline", "", "-lead",
    "x" * 300,
])
def test_unsafe_names_are_refused(bad: str) -> None:
    assert name_problem(bad) is not None
    with pytest.raises(HarnessError, match="study name"):
        check_name(bad, "study name")


@pytest.mark.parametrize("good", ["medquad", "medquad-r16", "demo_2026.11", "Qwen2.5-7B-qlora"])
def test_ordinary_names_pass(good: str) -> None:
    assert check_name(good, "study name") == good


def test_a_space_file_with_unsafe_names_reports_both_with_key_paths(tmp_path: Path) -> None:
    space = tmp_path / "bad.yaml"
    space.write_text("data: {path: x.json}\nstudy: {name: '../../etc'}\n"
                     "registry: {model_name: 'm#1'}\nsearch: {lora.r: [4, 8]}\n")
    with pytest.raises(ConfigError) as err:
        load_space(space)
    text = str(err.value)
    assert "study.name: '../../etc' contains '..'" in text
    assert "registry.model_name: 'm#1' contains '#'" in text


def test_a_sweep_refuses_an_unsafe_study_name_before_any_work(tmp_path: Path) -> None:
    from harness.cli import main

    space = Path(__file__).resolve().parents[1] / "search_spaces" / "demo.yaml"
    with pytest.raises(SystemExit) as refused:  # by the argument parser, before anything
        main(["sweep", str(space), "--study", "../up", "--storage",
              str(tmp_path / "j.journal"), "--tracking-uri", f"sqlite:///{tmp_path}/m.db"])
    assert refused.value.code == 2
    assert not (tmp_path / "j.journal").exists()
