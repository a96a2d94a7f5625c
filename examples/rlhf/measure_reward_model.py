"""The reward model's held-out pairwise accuracy on the medication task, configurations chosen on validation.

Pairs (gold answer against a near miss, ``medication_pairs.py``) from the task's train, validation and
test splits; one reward model per configuration in ``CONFIGS`` on the train pairs; the one of best
validation pairwise accuracy (ties: lower calibration error) is scored once on the test pairs with
``agentladder eval --task preference-accuracy``'s function. Prints a table and writes ``results.json``.

    python examples/rlhf/measure_reward_model.py --model smollm2-135m --out runs/rm-medication
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from agentladder.data import write_jsonl
from agentladder.evals.preference import preference_accuracy
from agentladder.train.reward_model import train_reward_model

sys.path.insert(0, str(Path(__file__).parent))
from medication_pairs import make_pairs  # noqa: E402

CONFIGS = (
    {"name": "lora-r16-lr3e-4", "lora": True, "learning_rate": 3e-4},
    {"name": "lora-r16-lr1e-3", "lora": True, "learning_rate": 1e-3},
    {"name": "full-lr2e-5", "lora": False, "learning_rate": 2e-5},
)
"""The configurations tried (each one training run)."""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--out", required=True)
    ap.add_argument("--train", type=int, default=192)
    ap.add_argument("--validation", type=int, default=96)
    ap.add_argument("--test", type=int, default=200)
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--configs", type=int, default=len(CONFIGS), help="Try only the first N configurations.")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    for split, n in (("train", args.train), ("validation", args.validation), ("test", args.test)):
        files[split] = out / f"pairs-{split}.jsonl"
        write_jsonl(files[split], make_pairs(split, n))
    tried = []
    for cfg in CONFIGS[: args.configs]:
        folder = out / cfg["name"]
        if not (folder / "reward_model.json").exists():
            train_reward_model(model=args.model, data=str(files["train"]), validation=str(files["validation"]),
                               out_dir=str(folder), lora=cfg["lora"], learning_rate=cfg["learning_rate"],
                               epochs=args.epochs, batch_size=8, max_length=256, save_every=6, normalisation_rows=48, tensorboard=False,
                               resume=(folder / "train_config.json").exists())
        v = json.loads((folder / "reward_model.json").read_text())["validation"]["pairs"]
        tried.append({**cfg, "validation_accuracy": v["accuracy"], "validation_ece": v["ece"]})
        print(json.dumps(tried[-1]), flush=True)
    best = max(tried, key=lambda t: (t["validation_accuracy"], -t["validation_ece"]))
    test = preference_accuracy([str(out / best["name"])], files["test"], out=out / "test-report")
    figures = test["models"][str(out / best["name"])]
    result = {"model": args.model, "pairs": {k: str(v) for k, v in files.items()}, "tried": tried,
              "chosen": best["name"], "test": {k: figures[k] for k in ("accuracy", "accuracy_ci", "ece", "brier",
                                                                       "mean_margin", "pairs")}}
    (out / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
