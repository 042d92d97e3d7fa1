"""Seeded arithmetic word problems for the benches, each answer ending in its number ("... so the
answer is 42."), in Alpaca format: data with checkable answers (`number_match`), written by this
project, nothing downloaded. One- and two-step problems on small numbers, in everyday settings.

    python bench/word_problems.py OUT.json [--count 160] [--seed 0]
"""

from __future__ import annotations

import random
from collections.abc import Callable

from instruction_set import distinct, main

PEOPLE = ["Ana", "Ben", "Chloe", "Dev", "Ema", "Farid", "Grace", "Hugo", "Ines", "Jonas",
          "Kira", "Liam", "Maya", "Noor", "Omar", "Pia"]
THINGS = ["apples", "stickers", "marbles", "books", "pencils", "shells", "cards", "coins",
          "buttons", "stamps", "cookies", "beads"]

Problem = Callable[[random.Random], tuple[str, str, int]]
"""A generator of (question, worked answer without its last sentence, the number)."""


def record(problem: Problem) -> Callable[[random.Random], dict[str, str]]:
    """``problem`` as an Alpaca record whose answer ends in its number."""
    def make(rng: random.Random) -> dict[str, str]:
        question, worked, number = problem(rng)
        return {"instruction": question, "input": "",
                "output": f"{worked}, so the answer is {number}."}

    return make


def gains(rng: random.Random) -> tuple[str, str, int]:
    who, what = rng.choice(PEOPLE), rng.choice(THINGS)
    a, b = rng.randint(2, 40), rng.randint(2, 40)
    return (f"{who} has {a} {what} and gets {b} more. How many {what} does {who} have now?",
            f"{a} + {b} = {a + b}", a + b)


def loses(rng: random.Random) -> tuple[str, str, int]:
    who, what = rng.choice(PEOPLE), rng.choice(THINGS)
    a = rng.randint(10, 60)
    b = rng.randint(1, a - 1)
    return (f"{who} had {a} {what} and gave away {b}. How many {what} are left?",
            f"{a} - {b} = {a - b}", a - b)


def groups(rng: random.Random) -> tuple[str, str, int]:
    what = rng.choice(THINGS)
    a, b = rng.randint(2, 12), rng.randint(2, 12)
    return (f"There are {a} boxes with {b} {what} in each box. How many {what} are there in "
            "all?", f"{a} x {b} = {a * b}", a * b)


def shares(rng: random.Random) -> tuple[str, str, int]:
    what = rng.choice(THINGS)
    n, each = rng.randint(2, 9), rng.randint(2, 12)
    total = n * each
    return (f"{total} {what} are shared equally among {n} friends. How many does each friend "
            "get?", f"{total} / {n} = {each}", each)


def two_steps(rng: random.Random) -> tuple[str, str, int]:
    who, what = rng.choice(PEOPLE), rng.choice(THINGS)
    a, b, c = rng.randint(10, 40), rng.randint(2, 20), rng.randint(1, 9)
    total = a + b - c
    return (f"{who} had {a} {what}, bought {b} more, then lost {c}. How many {what} does {who} "
            "have?", f"{a} + {b} = {a + b}, and {a + b} - {c} = {total}", total)


def per_week(rng: random.Random) -> tuple[str, str, int]:
    who = rng.choice(PEOPLE)
    a, d = rng.randint(2, 15), rng.randint(2, 7)
    return (f"{who} reads {a} pages a day. How many pages does {who} read in {d} days?",
            f"{a} x {d} = {a * d}", a * d)


PROBLEMS: list[Problem] = [gains, loses, groups, shares, two_steps, per_week]


def word_problems(count: int, seed: int) -> list[dict[str, str]]:
    """``count`` distinct problems, the kinds in turn, each answer ending in its number."""
    return distinct(count, seed=seed, kinds=[record(p) for p in PROBLEMS])


if __name__ == "__main__":
    main(word_problems, __doc__ or "")
