"""Preference pairs from the built-in medication-directions task: the gold answer against a near miss.

For each row of a split, the chosen answer is the task's gold JSON and the rejected answer the same
JSON with one field wrong: the drug, strength or duration taken from another row of the split, the
doses per day or dose units moved by one or two, or ``as_needed`` flipped. A reward model that ranks
such pairs must read the prescription line and check the answer against it; the near misses are the
kind of error a parser makes. Train, validation and test pairs come from the task's own splits, which
share no row (``--split``).

    python examples/rlhf/medication_pairs.py --split train --n 400 --out rm-train.jsonl
"""

from __future__ import annotations

import argparse
import dataclasses
import random
from typing import Any

from agentladder.data import PreferencePair, write_jsonl
from agentladder.tasks import get_task

FIELDS = ("drug", "strength_mg", "dose_units", "doses_per_day", "as_needed", "duration_days")


def near_miss(target: dict[str, Any], others: list[dict[str, Any]], rng: random.Random) -> dict[str, Any]:
    """``target`` with one field made wrong (see the module docstring); never equal to ``target``."""
    for _ in range(100):
        field = rng.choice(FIELDS)
        wrong = dict(target)
        if field == "as_needed":
            wrong[field] = not target[field]
        elif field in ("dose_units", "doses_per_day"):
            wrong[field] = max(1, (target[field] or 1) + rng.choice((-2, -1, 1, 2)))
        else:
            wrong[field] = rng.choice(others)[field]
        if wrong != target:
            return wrong
    raise ValueError(f"no near miss found for {target}")


def make_pairs(split: str, n: int, seed: int = 0, task: str = "medication-directions@brief") -> list[PreferencePair]:
    """``n`` pairs (gold against a near miss) on the rows of ``split``."""
    t = get_task(task)
    samples = t.make(split, n, seed)
    rng = random.Random(f"pairs:{split}:{seed}")
    targets = [s.target for s in samples]
    pairs = []
    for s in samples:
        wrong = near_miss(s.target, targets, rng)
        pairs.append(PreferencePair(id=s.id, prompt=t.prompt(s), chosen=t.target_text(s),
                                    rejected=t.target_text(dataclasses.replace(s, target=wrong)),
                                    metadata={"split": split}))
    return pairs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", default="train")
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    write_jsonl(args.out, make_pairs(args.split, args.n, args.seed))


if __name__ == "__main__":
    main()
