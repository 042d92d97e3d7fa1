"""A seeded instruction set for bench/search_quality.py: short everyday tasks whose answers
follow from the question by a fixed rule (arithmetic, unit conversion, sorting, spelling,
counting, dates), in Alpaca format. A model learns both the rules and the answer style, so the
loss on held-out tasks says how well a fine-tune generalised, and no data has to be downloaded.

    python bench/instruction_set.py OUT.json [--count 160] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Callable
from pathlib import Path

WORDS = ["garden", "window", "pencil", "orange", "river", "planet", "candle", "button",
         "forest", "ladder", "mirror", "rocket", "teapot", "violin", "wallet", "anchor",
         "bridge", "castle", "dragon", "helmet", "island", "jacket", "kettle", "lemon"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December"]

Task = Callable[[random.Random], dict[str, str]]


def add(rng: random.Random) -> dict[str, str]:
    a, b = rng.randint(10, 999), rng.randint(10, 999)
    return {"instruction": f"What is {a} plus {b}?", "input": "",
            "output": f"{a} plus {b} is {a + b}."}


def minutes(rng: random.Random) -> dict[str, str]:
    m = rng.randint(61, 1000)
    return {"instruction": "Convert the number of minutes to hours and minutes.",
            "input": f"{m} minutes",
            "output": f"{m} minutes is {m // 60} hours and {m % 60} minutes."}


def sort_numbers(rng: random.Random) -> dict[str, str]:
    numbers = rng.sample(range(1, 100), rng.randint(4, 7))
    shown = ", ".join(map(str, numbers))
    return {"instruction": "Sort these numbers from smallest to largest.", "input": shown,
            "output": ", ".join(map(str, sorted(numbers)))}


def backwards(rng: random.Random) -> dict[str, str]:
    word = rng.choice(WORDS)
    return {"instruction": f"Spell the word \"{word}\" backwards.", "input": "",
            "output": f"\"{word}\" spelled backwards is \"{word[::-1]}\"."}


def vowels(rng: random.Random) -> dict[str, str]:
    word = rng.choice(WORDS)
    n = sum(c in "aeiou" for c in word)
    return {"instruction": f"How many vowels are in the word \"{word}\"?", "input": "",
            "output": f"The word \"{word}\" has {n} vowel{'s' if n != 1 else ''}."}


def next_month(rng: random.Random) -> dict[str, str]:
    i, k = rng.randrange(12), rng.randint(1, 11)
    return {"instruction": f"Which month comes {k} month{'s' if k > 1 else ''} after "
                           f"{MONTHS[i]}?", "input": "",
            "output": f"{k} month{'s' if k > 1 else ''} after {MONTHS[i]} comes "
                      f"{MONTHS[(i + k) % 12]}."}


def celsius(rng: random.Random) -> dict[str, str]:
    c = rng.randint(-40, 100)
    return {"instruction": "Convert the temperature to Fahrenheit.",
            "input": f"{c} degrees Celsius",
            "output": f"{c} degrees Celsius is {c * 9 / 5 + 32:g} degrees Fahrenheit."}


def largest(rng: random.Random) -> dict[str, str]:
    numbers = rng.sample(range(1, 500), 5)
    return {"instruction": "Which is the largest of these numbers?",
            "input": ", ".join(map(str, numbers)),
            "output": f"The largest is {max(numbers)}."}


TASKS: list[Task] = [add, minutes, sort_numbers, backwards, vowels, next_month, celsius,
                     largest]


def instruction_set(count: int, seed: int) -> list[dict[str, str]]:
    """``count`` distinct records, the task families in turn."""
    return distinct(count, seed=seed, kinds=TASKS)


def distinct(count: int, *, seed: int,
             kinds: list[Callable[[random.Random], dict[str, str]]]) -> list[dict[str, str]]:
    """``count`` records with distinct questions (instruction and input), made by ``kinds``
    in turn from one seeded generator."""
    rng = random.Random(seed)
    records: list[dict[str, str]] = []
    seen: set[str] = set()
    for _ in range(100 * count):
        if len(records) == count:
            return records
        record = kinds[len(records) % len(kinds)](rng)
        key = record["instruction"] + record["input"]
        if key not in seen:
            seen.add(key)
            records.append(record)
    if len(records) == count:
        return records
    raise ValueError(f"the kinds of record hold fewer than {count} distinct ones")


def main(make: Callable[[int, int], list[dict[str, str]]] = instruction_set,
         doc: str = __doc__ or "") -> None:
    """Write ``make``'s records to the file the command line names."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--count", type=int, default=160)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.out.write_text(json.dumps(make(args.count, args.seed), indent=1))


if __name__ == "__main__":
    main()
