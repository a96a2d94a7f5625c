"""SFT step time in fp32 and in bfloat16 autocast, on a CPU: what the demo's SFT rung runs.

The demo's SFT recipe (SmolLM2-135M, LoRA r64 on every linear layer, 4 packed
rows a step of ``medication-directions@brief-lower``, about 100 tokens each)
timed for ``--steps`` optimizer steps under four settings, each in a fresh process:

- ``fp32``: the trainer's default;
- ``bf16-autocast``: bfloat16 autocast over an fp32 model, every row attended by
  ``F.scaled_dot_product_attention`` (what ``precision="bf16"`` was before the two changes below);
- ``bf16-explicit``: the same with short rows attended by explicit matmuls
  (:func:`agentladder.models.attention.causal_attention`);
- ``bf16``: ``precision="bf16"`` as shipped: that, with the frozen base held in
  bfloat16 (:func:`agentladder.train.loop.base_dtype`).

It prints the median seconds a step and the speed-up over fp32 side by side.

    python bench/sft_precision.py                 # 30 steps each, about 6 min on 2 cores
    python bench/sft_precision.py --steps 60 --rows 8
"""

from __future__ import annotations

import argparse
import importlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SETTINGS = ("fp32", "bf16-autocast", "bf16-explicit", "bf16")


def one(setting: str, data: Path, out: Path, steps: int, rows: int) -> None:
    """Train ``steps`` steps under ``setting`` and write the per-step times to ``out/times.json``."""
    import torch

    from agentladder.models import attention
    from agentladder.train import loop
    from agentladder.train.sft import SFTConfig, sft

    if setting == "bf16-autocast":
        attention.EXPLICIT_MAX_LEN = 0
    if setting in ("bf16-autocast", "bf16-explicit"):  # the base stays fp32
        run_module = importlib.import_module("agentladder.train.run")  # where a run picks the base's dtype
        run_module.base_dtype = lambda *args: torch.float32
    times: list[float] = []
    train_step = loop.Trainer.train_step

    def timed(self, step):
        t0 = time.perf_counter()
        metrics = train_step(self, step)
        times.append(time.perf_counter() - t0)
        return metrics

    loop.Trainer.train_step = timed
    sft(SFTConfig(model="smollm2-135m", data=str(data), out_dir=str(out / "run"), lora=True, lora_r=64, lora_alpha=128,
                  max_steps=steps, batch_size=rows, learning_rate=1e-3, max_length=256, save_every=10**6,
                  precision="fp32" if setting == "fp32" else "bf16", progress=False, tensorboard=False))
    (out / "times.json").write_text(json.dumps(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--rows", type=int, default=4, help="rows a step")
    parser.add_argument("--settings", nargs="+", choices=SETTINGS, default=list(SETTINGS))
    parser.add_argument("--one", choices=SETTINGS, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        one(args.one, args.data, args.out, args.steps, args.rows)
        return

    from agentladder.tasks import get_task, write_data

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "rows.jsonl"
        write_data(get_task("medication-directions@brief-lower"), "train", args.steps * args.rows, data, seed=0,
                   format="sft", balance="doses_per_day")
        medians: dict[str, float] = {}
        for setting in args.settings:
            out = Path(tmp) / setting
            subprocess.run([sys.executable, __file__, "--one", setting, "--data", str(data), "--out", str(out),
                            "--steps", str(args.steps), "--rows", str(args.rows)], check=True)
            times = json.loads((out / "times.json").read_text())[2:]  # the first steps warm up
            medians[setting] = statistics.median(times)
    base = medians.get("fp32")
    print(f"\nSFT step, SmolLM2-135M LoRA r64, {args.rows} rows a step, median of {args.steps - 2} steps")
    print(f"{'setting':<12} {'s/step':>8} {'vs fp32':>8}")
    for setting, median in medians.items():
        ratio = f"{base / median:.2f}x" if base else "-"
        print(f"{setting:<12} {median:>8.2f} {ratio:>8}")


if __name__ == "__main__":
    main()
