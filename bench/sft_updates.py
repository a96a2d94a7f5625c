"""How many rows a step, at the same rows: the SFT recipes docs/training.md#small-steps-and-lora compares.

Every recipe LoRA-tunes the packaged SmolLM2-135M on the same generated rows
(``medication-directions@brief``, balanced on ``doses_per_day``) and is scored
on the same 200 test rows; the table prints exact match and train time side by side.

    python bench/sft_updates.py                         # every recipe, one after the other (about 1 h on 2 cores)
    python bench/sft_updates.py --recipes b4 b2 --rows 680
"""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys
import time
from pathlib import Path

# name: (rows a step, LoRA+ ratio, adapters on the top N layers only)
RECIPES = {
    "b4": (4, None, None),
    "b2": (2, None, None),
    "b1": (1, None, None),
    "b4-plus4": (4, 4.0, None),
    "b2-plus4": (2, 4.0, None),
    "b4-top15": (4, None, 15),
}


def _top_layers_only(n: int) -> None:
    """Make the SFT trainer put its adapters on the top ``n`` decoder layers only (PEFT ``layers_to_transform``)."""
    from peft import LoraConfig, get_peft_model

    run_module = importlib.import_module("agentladder.train.run")  # where a run attaches its adapters

    def attach(model, s):
        layers = model.config.num_hidden_layers
        config = LoraConfig(r=s.r, lora_alpha=s.alpha, lora_dropout=s.dropout, task_type="CAUSAL_LM",
                            target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
                            layers_to_transform=list(range(layers - n, layers)))
        return get_peft_model(model, config)

    run_module.attach_lora = attach


def run(name: str, data: Path, rows: int, out: Path, lr: float) -> tuple[float, float]:
    from agentladder.evals import evaluate
    from agentladder.train.sft import SFTConfig, sft

    batch, plus, top = RECIPES[name]
    if top:
        _top_layers_only(top)
    run_dir = out / name
    t0 = time.perf_counter()
    sft(SFTConfig(model="smollm2-135m", data=str(data), out_dir=str(run_dir), lora=True, lora_r=64, lora_alpha=128,
                  lora_plus_ratio=plus, max_steps=rows // batch, batch_size=batch, learning_rate=lr, max_length=256,
                  save_every=10**6, progress=False, tensorboard=False))
    seconds = time.perf_counter() - t0
    report = evaluate([str(run_dir)], "medication-directions@brief", limit=200, batch_size=64, max_new_tokens=72,
                      progress=False, out=str(out / f"{name}-eval"))
    return report.models[str(run_dir)].summary.metrics["exact_match"].value, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="+", choices=list(RECIPES), default=list(RECIPES))
    parser.add_argument("--rows", type=int, default=680)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--out", default="runs/bench-sft-updates")
    parser.add_argument("--one", choices=list(RECIPES), help=argparse.SUPPRESS)  # a child: one recipe, then exit
    args = parser.parse_args()
    out = Path(args.out)
    data = out / "train.jsonl"
    if args.one:
        print(*run(args.one, data, args.rows, out, args.lr))
        return

    from agentladder.tasks.make import write_data

    out.mkdir(parents=True, exist_ok=True)
    write_data("medication-directions@brief", "train", args.rows, data, format="sft", balance="doses_per_day")
    results = {}
    for name in args.recipes:
        # Each recipe in its own process: the top-layers patch and the RNG state must not leak into the next.
        child = [sys.executable, __file__, "--one", name, "--rows", str(args.rows), "--lr", str(args.lr), "--out", str(out)]
        done = subprocess.run(child, check=True, capture_output=True, text=True)
        exact, seconds = map(float, done.stdout.split()[-2:])
        results[name] = (exact, seconds)
        print(f"{name}: exact match {exact:.3f}, train {seconds:.0f} s", flush=True)
    print(f"\n{args.rows} rows, LoRA r64 alpha 128, lr {args.lr}; 200 test rows")
    print("| recipe | rows a step | updates | LoRA+ | top layers | exact match | train s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, (exact, seconds) in results.items():
        batch, plus, top = RECIPES[name]
        print(f"| {name} | {batch} | {args.rows // batch} | {plus or '-'} | {top or 'all'} | {exact:.3f} | {seconds:.0f} |")


if __name__ == "__main__":
    main()
