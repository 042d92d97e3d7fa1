"""Task metrics on generated answers: one score per example, higher is better.

- ``exact_match``: the answer equals the reference once both are normalised (case, spaces,
  and a trailing full stop are not counted): for rule-following tasks with one right output.
- ``number_match``: the last number in the answer equals the last number in the reference
  (``1,200`` is 1200, ``3.50`` is 3.5): for word problems, whatever the words around it.
  An example whose reference holds no number has no score (nan) and is left out of the mean.
- ``rougeL``: ROUGE-L F-measure (Lin, 2004) by Google's `rouge-score` package: how much of
  the reference, in order, the answer covers.
- A user's own: ``module:function`` or ``path/to/file.py:function`` (called with the lists
  of predictions and references, it returns one score per example), or the directory of a
  local `evaluate` module (scored one example at a time).
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError

Scorer = Callable[[Sequence[str], Sequence[str]], list[float]]
BUILT_IN = ("exact_match", "number_match", "rougeL")
"""The metrics named by a word; anything else names a user's own."""

_SPACES = re.compile(r"\s+")
_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|[-+]?\.\d+")


def normalise(text: str) -> str:
    """``text`` as exact_match compares it: NFKC, lowercase, runs of white space as one
    space, no surrounding space and no trailing full stop."""
    text = _SPACES.sub(" ", unicodedata.normalize("NFKC", text).lower()).strip()
    return text[:-1].rstrip() if text.endswith(".") else text


def exact_match(predictions: Sequence[str], references: Sequence[str]) -> list[float]:
    return [float(normalise(p) == normalise(r))
            for p, r in zip(predictions, references, strict=True)]


def last_number(text: str) -> float | None:
    """The value of the last number written in ``text``, or None."""
    found = _NUMBER.findall(text)
    if not found:
        return None
    return float(found[-1].replace(",", ""))


def number_match(predictions: Sequence[str], references: Sequence[str]) -> list[float]:
    out = []
    for prediction, reference in zip(predictions, references, strict=True):
        want, got = last_number(reference), last_number(prediction)
        out.append(math.nan if want is None else float(
            got is not None and math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-9)))
    return out


def rouge_l(predictions: Sequence[str], references: Sequence[str]) -> list[float]:
    from rouge_score.rouge_scorer import RougeScorer

    scorer = RougeScorer(["rougeL"])
    return [scorer.score(r, p)["rougeL"].fmeasure
            for p, r in zip(predictions, references, strict=True)]


@dataclass(frozen=True)
class Metric:
    """A metric the harness can score answers with."""

    name: str
    """How it is logged (`eval/NAME`, `test/NAME`) and named in an objective."""
    spec: str
    """What the user wrote: a built-in name, module:function, or an evaluate directory."""
    score: Scorer
    """Predictions and references to one score per example (nan: not scorable)."""


def metric_name(spec: str) -> str:
    """The name a metric spec is logged under: the built-in's, the function's, or the
    evaluate module directory's."""
    if spec in BUILT_IN:
        return spec
    if ":" in spec and not Path(spec).is_dir():
        return spec.rsplit(":", 1)[1]
    return Path(spec.rstrip("/")).name


def spec_problem(spec: str) -> str | None:
    """Why ``spec`` cannot name a metric, judged without importing anything; None if it can."""
    if spec in BUILT_IN:
        return None
    if ":" in spec and not Path(spec).is_dir():
        module, _, function = spec.rpartition(":")
        if module and function.isidentifier():
            return None
        return f"{spec!r} is not MODULE:FUNCTION (e.g. mymetrics:score)"
    if Path(spec).is_dir():
        return None
    return (f"{spec!r} is not a metric: use {', '.join(BUILT_IN)}, MODULE:FUNCTION or the "
            "directory of a local evaluate module")


def load_metric(spec: str) -> Metric:
    """The metric ``spec`` names; a HarnessError saying what is wrong with it otherwise."""
    problem = spec_problem(spec)
    if problem:
        raise HarnessError(f"metric {problem}")
    built_in: dict[str, Scorer] = {"exact_match": exact_match, "number_match": number_match,
                                   "rougeL": rouge_l}
    if spec in built_in:
        return Metric(spec, spec, built_in[spec])
    if ":" in spec and not Path(spec).is_dir():
        return Metric(metric_name(spec), spec, _checked(spec, _function(spec)))
    return Metric(metric_name(spec), spec, _checked(spec, _evaluate_module(spec)))


def _function(spec: str) -> Callable[..., object]:
    where, _, name = spec.rpartition(":")
    try:
        if where.endswith(".py"):
            loader = importlib.util.spec_from_file_location(Path(where).stem, where)
            if loader is None or loader.loader is None or not Path(where).is_file():
                raise ImportError(f"no file {where}")
            module = importlib.util.module_from_spec(loader)
            loader.loader.exec_module(module)
        else:
            module = importlib.import_module(where)
    except Exception as err:  # the user's module: any error it raises on import is theirs
        raise HarnessError(f"metric {spec!r}: cannot import {where}: {err}") from None
    function = getattr(module, name, None)
    if not callable(function):
        raise HarnessError(f"metric {spec!r}: {where} has no function {name}")
    return function


def _evaluate_module(spec: str) -> Callable[..., object]:
    import evaluate

    try:
        module = evaluate.load(str(Path(spec).resolve()))
    except Exception as err:  # evaluate raises many kinds for a broken module
        raise HarnessError(f"metric {spec!r}: cannot load it as an evaluate module: "
                           f"{err}") from None
    key = metric_name(spec)

    def per_example(predictions: Sequence[str], references: Sequence[str]) -> list[float]:
        return [_one_value(module.compute(predictions=[p], references=[r]), key, spec)
                for p, r in zip(predictions, references, strict=True)]

    return per_example


def _one_value(result: object, key: str, spec: str) -> float:
    if isinstance(result, dict):
        numbers = {k: v for k, v in result.items() if isinstance(v, int | float)}
        if key in numbers or len(numbers) == 1:
            return float(numbers.get(key, next(iter(numbers.values()), math.nan)))
    raise HarnessError(f"metric {spec!r}: its compute() gave {result!r}; it must give one "
                       f"number, or a dict with one number or with the key {key!r}")


def _checked(spec: str, function: Callable[..., object]) -> Scorer:
    def score(predictions: Sequence[str], references: Sequence[str]) -> list[float]:
        got = function(list(predictions), list(references))
        try:
            values = [float(v) for v in got]  # type: ignore[attr-defined]
        except (TypeError, ValueError):
            raise HarnessError(f"metric {spec!r} returned {type(got).__name__}: it must "
                               "return one number per example") from None
        if len(values) != len(predictions):
            raise HarnessError(f"metric {spec!r} returned {len(values)} scores for "
                               f"{len(predictions)} examples: give one per example")
        return values

    return score
