"""Synthetic instruction data at any size, built from the real sets so that its
near-duplicate structure is realistic: every record is a real Toolformer or MedQuAD record,
lightly altered (a near-duplicate of its source, as paraphrased data is) or heavily altered
(a record of its own)."""

from __future__ import annotations

import json
import random
from pathlib import Path

from harness.config import DataConfig
from harness.data.load import load_dataset

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
NEAR_SHARE = 0.3
"""Records written as a light alteration (one word in 20 changed) of a record written before:
paraphrases of what the set already holds. The others alter half the words of a real record,
which makes a record of its own."""


def real_pool() -> list[dict[str, str]]:
    """Toolformer's records and MedQuAD's question-answer pairs, as Alpaca records."""
    pool = json.loads((SHARED / "gpteacher-toolformer"
                       / "toolformer-dedupe-only-dataset.json").read_text())
    medquad = load_dataset(DataConfig(path=str(SHARED / "medquad"), near_dup="off",
                                      eval_fraction=0.0, test_fraction=0.0))
    pool += [{"instruction": r.messages[0].content, "output": r.messages[1].content}
             for r in medquad.records]
    return [{k: v for k, v in r.items() if isinstance(v, str)} for r in pool]


def _alter(text: str, rng: random.Random, rate: float) -> str:
    return " ".join(f"{w}{rng.randrange(10**6)}" if rng.random() < rate else w
                    for w in text.split())


def write(path: Path, count: int, *, seed: int = 0) -> Path:
    """``count`` records as JSONL at ``path``."""
    pool = real_pool()
    rng = random.Random(seed)
    recent: list[dict[str, str]] = []  # a window, so that memory stays flat at any size
    with path.open("w") as out:
        for _ in range(count):
            if recent and rng.random() < NEAR_SHARE:
                record = {k: _alter(v, rng, 0.05) for k, v in rng.choice(recent).items()}
            else:
                record = {k: _alter(v, rng, 0.5) for k, v in rng.choice(pool).items()}
                recent.append(record)
                if len(recent) > 10_000:
                    recent.pop(0)
            out.write(json.dumps(record) + "\n")
    return path
