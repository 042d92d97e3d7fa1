"""Argument types of the command line: values checked as argparse reads them, so a bad one is
an error naming the flag before anything starts."""

from __future__ import annotations

import argparse

from harness.names import name_problem


def at_least_one(text: str) -> int:
    """A whole number of 1 or more."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1 or str(value) != text.strip():
        raise argparse.ArgumentTypeError(f"give a whole number of 1 or more, not {text!r}")
    return value


def seconds(text: str) -> float:
    """A positive number of seconds."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"give a positive number of seconds, not {text!r}")
    return value


def port(text: str) -> int:
    """A TCP port, 1 to 65535."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"give a port from 1 to 65535, not {text!r}")
    return value


def study_name(text: str) -> str:
    """A name a study can have (letters, digits and ._-)."""
    problem = name_problem(text)
    if problem:
        raise argparse.ArgumentTypeError(f"{text!r} {problem}; use letters, digits and ._-")
    return text


def store_args(p: argparse.ArgumentParser) -> None:
    """--storage and --tracking-uri: where the study and its runs are."""
    p.add_argument("--storage", help="Optuna storage: a journal file path, sqlite:///, "
                   "postgresql:// or mysql:// URL (default: mlruns/optuna.journal, or "
                   "HARNESS_STORAGE)")
    p.add_argument("--tracking-uri", help="MLflow tracking URI (default: MLFLOW_TRACKING_URI, "
                   "else the local store in mlruns/)")
