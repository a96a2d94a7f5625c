"""agentladder DPO against TRL's DPOTrainer, side by side, on the packaged SmolLM2-135M.

    python bench/dpo.py                            # 2 warm-up + 6 timed steps per framework
    python bench/dpo.py --pairs pairs.jsonl        # pairs of your own (prompt / chosen / rejected)
    python bench/dpo.py --warmup 1 --steps 3       # a quicker look

Both frameworks train the same model (SmolLM2-135M-Instruct, fp32, full fine-tuning)
on the same pairs in the same order with the same settings: sigmoid DPO, beta 0.1,
4 pairs per step, max length 512, AdamW at 1e-6 with a constant schedule, gradient
clipping at 1.0, no gradient checkpointing, and reference log-probabilities
precomputed once before training (so neither holds a second model). By default the
pairs are medication-directions prompts (the task's system prompt, about 300 tokens,
and a prescription line) with the right JSON answer as chosen and the same answer
with one field wrong as rejected.

What differs is each framework's own way of computing a step:

- ``agentladder`` - ``agentladder.train.preference`` with its defaults: each pair
  one sequence ``prompt | chosen | rejected`` with the prompt run once, pairs
  packed end to end, the output head only where a response token is predicted.
- ``trl`` - ``trl.DPOTrainer`` with its defaults: ``prompt + chosen`` and
  ``prompt + rejected`` as separate padded rows.

Each framework runs in its own child process (its peak RSS, ``ru_maxrss``, is its
own; on a GPU the peak allocated memory too). The two take their steps in lockstep,
one computing while the other waits, so the machine's drift and other work on its
cores hit both alike; a step's time is its own wall time, not its wait. The last line
printed is ``speedup_vs_trl=<agentladder pairs/s / TRL's pairs/s>``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _lockstep import Turns, pace_train_steps, peak_memory

MODEL = "smollm2-135m"
FRAMEWORKS = ("agentladder", "trl")
SETTINGS = {"batch": 4, "max_length": 512, "lr": 1e-6, "beta": 0.1, "seed": 0}


# -- data ---------------------------------------------------------------------------------------------
def medication_pairs(n: int, seed: int) -> list[dict]:
    """Task prompts; chosen = the target JSON, rejected = the same with one field wrong."""
    from agentladder.tasks import get_task

    task = get_task("medication-directions")
    rng = random.Random(seed)
    rows = []
    for sample in task.make("train", n, seed):
        good = dict(sample.target)
        bad = dict(good)
        field = rng.choice(["strength_mg", "dose_units", "doses_per_day", "as_needed", "duration_days"])
        if field == "as_needed":
            bad[field] = not bad[field]
        elif field == "duration_days":
            bad[field] = None if bad[field] else 7
        else:
            bad[field] = bad[field] * 2
        prompt = [m.model_dump(mode="json", exclude_none=True) for m in task.prompt(sample)]
        rows.append({"prompt": prompt, "chosen": [{"role": "assistant", "content": json.dumps(good)}],
                     "rejected": [{"role": "assistant", "content": json.dumps(bad)}]})
    return rows


def load_pairs(path: str | None, n: int, seed: int) -> list[dict]:
    if path is None:
        return medication_pairs(n, seed)
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    return [{k: r[k] for k in ("prompt", "chosen", "rejected")} for r in rows[:n]]


# -- lockstep -----------------------------------------------------------------------------------------
def run_agentladder(data: Path, out: Path, steps: int, turns: Turns) -> list[float]:
    from agentladder.train import loop
    from agentladder.train.preference import PreferenceConfig, preference

    times = pace_train_steps(loop.Trainer, turns)
    s = SETTINGS
    preference(PreferenceConfig(
        model=MODEL, data=str(data), out_dir=str(out), loss="dpo", beta=s["beta"], batch_size=s["batch"],
        max_length=s["max_length"], max_steps=steps, learning_rate=s["lr"], warmup_ratio=0.0, min_lr_ratio=1.0,
        max_grad_norm=1.0, seed=s["seed"], save_every=10**6, progress=False, tensorboard=False,
        reference="precompute"))
    return times


def run_trl(data: Path, out: Path, steps: int, turns: Turns) -> list[float]:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import DPOConfig, DPOTrainer

    from agentladder.models.loading import resolve

    where = resolve(MODEL)
    tokenizer = AutoTokenizer.from_pretrained(where)
    model = AutoModelForCausalLM.from_pretrained(where, dtype=torch.float32)
    rows = [json.loads(line) for line in data.read_text().splitlines()]
    s = SETTINGS
    times: list[float] = []

    class Clock(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            turns.wait()
            self.t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            times.append(time.perf_counter() - self.t0)
            turns.done()

    config = DPOConfig(
        output_dir=str(out), per_device_train_batch_size=s["batch"], max_steps=steps, learning_rate=s["lr"],
        lr_scheduler_type="constant", warmup_steps=0, max_grad_norm=1.0, beta=s["beta"], loss_type=["sigmoid"],
        max_length=s["max_length"], precompute_ref_log_probs=True, bf16=False, gradient_checkpointing=False,
        use_cpu=not torch.cuda.is_available(), report_to=[], logging_steps=10**6, save_strategy="no",
        seed=s["seed"], dataloader_num_workers=0, disable_tqdm=True,
    )
    trainer = DPOTrainer(model=model, args=config, train_dataset=Dataset.from_list(rows),
                         processing_class=tokenizer, callbacks=[Clock()])
    trainer.train()
    return times


def _child(name: str, index: int, data: str, steps: int, turn, cond, conn) -> None:
    import torch

    torch.manual_seed(SETTINGS["seed"])
    turns = Turns(turn, cond, index)
    with tempfile.TemporaryDirectory() as tmp:
        fn = run_agentladder if name == "agentladder" else run_trl
        try:
            times = fn(Path(data), Path(tmp) / name, steps, turns)
            conn.send({"name": name, "step_time": times, **peak_memory()})
        except BaseException as e:  # report, and let the other side stop waiting
            conn.send({"name": name, "error": repr(e)})
            raise


# -- main ---------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", help="JSONL of pairs [default: synthetic medication-directions pairs]")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=6)
    args = parser.parse_args(argv)

    total = args.warmup + args.steps
    pairs = load_pairs(args.pairs, total * SETTINGS["batch"], SETTINGS["seed"])
    ctx = mp.get_context("spawn")
    turn, cond = ctx.Value("i", 0), ctx.Condition()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "pairs.jsonl"
        data.write_text("".join(json.dumps(p) + "\n" for p in pairs))
        procs, pipes = [], []
        for i, name in enumerate(FRAMEWORKS):
            mine, theirs = ctx.Pipe()
            p = ctx.Process(target=_child, args=(name, i, str(data), total, turn, cond, theirs))
            p.start()
            procs.append(p)
            pipes.append(mine)
        results = {}
        for name, pipe in zip(FRAMEWORKS, pipes, strict=True):
            msg = pipe.recv()
            if "error" in msg:
                for p in procs:
                    p.kill()
                sys.exit(f"{name} failed: {msg['error']}")
            results[name] = msg
        for p in procs:
            p.join()

    print(f"{len(pairs)} pairs, batch {SETTINGS['batch']} pairs, {args.warmup} warm-up + {args.steps} timed steps, "
          f"max length {SETTINGS['max_length']}, fp32, full fine-tuning, precomputed reference")
    print(f"{'framework':12} {'median step s':>14} {'pairs/s':>9} {'peak RSS MiB':>13} {'peak GPU MiB':>13}")
    rate = {}
    for name in FRAMEWORKS:
        r = results[name]
        timed = r["step_time"][args.warmup :]
        median = statistics.median(timed)
        rate[name] = SETTINGS["batch"] / median
        gpu = f"{r['peak_gpu_mib']:.0f}" if "peak_gpu_mib" in r else "-"
        print(f"{name:12} {median:14.3f} {rate[name]:9.3f} {r['peak_rss_mib']:13.0f} {gpu:>13}")
    mem_key = "peak_gpu_mib" if "peak_gpu_mib" in results["trl"] else "peak_rss_mib"
    print(f"memory_ratio={results['agentladder'][mem_key] / results['trl'][mem_key]:.3f} ({mem_key})")
    print(f"speedup_vs_trl={rate['agentladder'] / rate['trl']:.3f}")


if __name__ == "__main__":
    main()
