"""YAML the harness reads: alias bombs refused before they are built, bounded messages, files
that are not UTF-8 named with the byte and what to do."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.config import load_train_config
from harness.errors import ConfigError, HarnessError
from harness.space.load import load_space
from harness.yamlfile import MAX_VALUES, load_yaml, short


def alias_bomb(levels: int = 9) -> str:
    """Each level a list of ten aliases of the one before: 10**levels values in ~800 bytes."""
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for n in range(1, levels):
        lines.append(f"l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * 10)}]")
    lines.append(f"lora: {{r: *l{levels - 1}}}")
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_at_a_typed_key_is_refused_before_it_is_built(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text("data: {path: x}\n" + alias_bomb())
    assert path.stat().st_size < 1000
    with pytest.raises(HarnessError, match=f"expanded it holds more than {MAX_VALUES:,} values"):
        load_train_config(str(path))
    with pytest.raises(HarnessError, match="aliases"):
        load_space(path)


def test_aliases_of_ordinary_size_still_work() -> None:
    text = ("base: &lr {low: 1.0e-5, high: 1.0e-3, log: true}\n"
            "search: {training.learning_rate: *lr}\n")
    assert load_yaml(text, "t.yaml")["search"]["training.learning_rate"]["log"] is True


def test_a_recursive_alias_is_refused() -> None:
    with pytest.raises(HarnessError, match="cannot be recursive"):
        load_yaml("a: &a [1, *a]\n", "r.yaml")


def test_a_wrong_type_of_any_size_gives_a_short_message(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("data: {path: x}\nlora: {r: " + str([list(range(100))] * 50) + "}\n")
    with pytest.raises(ConfigError) as info:
        load_train_config(str(path))
    (problem,) = info.value.problems
    assert problem.startswith("lora.r: expected int, got list") and len(problem) < 200
    assert len(short("x" * 10**6)) < 60


@pytest.mark.parametrize("loader, what", [(load_train_config, "config file"),
                                          (load_space, "search-space file")])
def test_a_file_that_is_not_utf8_is_named_with_its_byte(tmp_path: Path, loader: object,
                                                       what: str) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("data: {path: caf\u00e9}\n".encode("latin-1"))
    with pytest.raises(HarnessError) as info:
        loader(str(path))  # type: ignore[operator]
    message = str(info.value)
    assert str(path) in message and what in message and "0xe9" in message
    assert "iconv" in message
