"""agentladder GRPO against TRL's GRPOTrainer, side by side, on the packaged SmolLM2-135M.

    python bench/rl.py                          # 1 warm-up + 5 timed steps per framework
    python bench/rl.py --warmup 0 --steps 2     # a quicker look
    python bench/rl.py --model tiny --warmup 0 --steps 1   # smoke test of the bench itself (seconds)

Both frameworks train the same model with the same LoRA adapters (r 16, alpha 32, every
projection) on the same medication-directions prompts (the task's ~300-token system prompt
and a prescription line) in the same order: 4 prompts per step, 4 responses each (group
size 4), at most 64 new tokens sampled at temperature 1 and stopped only by the end-of-turn
token, the same reward (the task's exact match plus 0.5 x its field accuracy), GRPO's
group-normalised advantage, token-mean loss over the batch, clip 0.2, no KL term (TRL's
default ``beta=0``, so neither runs a reference), one update per rollout, AdamW at 1e-5 with
a constant schedule, gradient clipping at 1.0, fp32, no gradient checkpointing.

What differs is each framework's own way of taking a step:

- ``agentladder`` - ``agentladder.train.rl`` with its defaults: each prompt prefilled once
  for its group and its cache repeated; finished responses leave the decode batch; the
  sampler's log-probabilities kept; in training each prompt runs once for its four
  responses (``prompt | y1 | y2 | y3 | y4`` with a per-group attention kernel) and the
  output head runs only where a response token is predicted.
- ``trl`` - ``trl.GRPOTrainer`` with ``use_vllm=False``: transformers ``generate`` on 16
  left-padded copies of the prompts, then a forward and backward over the 16
  ``prompt + completion`` rows.

Each framework runs in its own child process (its peak RSS, ``ru_maxrss``, is its own; on
a GPU also the peak allocated memory). The two take their steps in lockstep, one computing
while the other waits, so the machine's drift and other work on its cores hit both alike.
Generated tokens/s is the sampled response tokens of the timed steps over their summed
step time. The last line printed is ``speedup_vs_trl=<agentladder steps/s / TRL's steps/s>``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _lockstep import Turns, pace_train_steps, peak_memory

TASK = "medication-directions"
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
SETTINGS = {"prompts": 4, "group": 4, "max_new_tokens": 64, "lr": 1e-5, "seed": 0, "lora_r": 16, "lora_alpha": 32}
FRAMEWORKS = ("agentladder", "trl")


# -- the shared reward ----------------------------------------------------------------------------
def task_reward(completion: str, target: dict, text: str) -> float:
    """The task's exact match plus half its field accuracy."""
    from agentladder.tasks import Sample, get_task

    task = get_task(TASK)
    scores = task.score(Sample("", text, target), task.parse(completion))
    return float(scores["exact"]) + 0.5 * sum(scores["fields"].values()) / len(scores["fields"])


def _reward_for_agentladder(completion, target, metadata):
    return task_reward(completion, target, metadata.get("input", ""))


# -- lockstep ---------------------------------------------------------------------------------------
# -- the two frameworks -----------------------------------------------------------------------------
def run_agentladder(model: str, data: Path, out: Path, steps: int, turns: Turns) -> dict:
    from agentladder.rewards import PythonReward, WeightedEnsemble
    from agentladder.train.rl import RLTrainer, rl

    times = pace_train_steps(RLTrainer, turns)
    s = SETTINGS
    result = rl(
        model=model, task=TASK, data=str(data), out_dir=str(out), advantage="grpo", loss_agg="token_mean",
        clip_low=0.2, clip_high=0.2, kl_coef=0.0, group_size=s["group"], batch_size=s["prompts"],
        max_new_tokens=s["max_new_tokens"], stop_at_json=False, temperature=1.0, max_steps=steps,
        learning_rate=s["lr"], warmup_ratio=0.0, min_lr_ratio=1.0, max_grad_norm=1.0, lora=True,
        lora_r=s["lora_r"], lora_alpha=s["lora_alpha"], lora_target_modules=LORA_TARGETS, seed=s["seed"],
        save_every=10**6, progress=False, tensorboard=False,
        reward=WeightedEnsemble([("task", PythonReward(_reward_for_agentladder), 1.0)]))
    return {"step_time": times, "gen_tokens": [h["gen_tokens"] for h in result.history],
            "reward": [h["reward"] for h in result.history]}


def run_trl(model: str, data: Path, out: Path, steps: int, turns: Turns) -> dict:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    tokenizer = AutoTokenizer.from_pretrained(model)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    policy = AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32)
    rows = [json.loads(line) for line in data.read_text().splitlines()]
    from agentladder.tasks import Sample, get_task
    from agentladder.train.loop import epoch_order

    task = get_task(TASK)
    order = epoch_order(len(rows), SETTINGS["seed"], 0)  # agentladder's data order for the first epoch
    records = []
    for i in order:
        text, target = rows[i]["text"], rows[i]["target"]
        messages = task.prompt(Sample(rows[i]["id"], text, target))
        records.append({"prompt": [{"role": m.role, "content": m.content} for m in messages],
                        "target": json.dumps(target), "text": text})
    s = SETTINGS
    times: list[float] = []
    lengths: list[float] = []
    rewards: list[float] = []

    def reward(completions, target, text, **kwargs):
        return [task_reward(c[0]["content"], json.loads(t), x) for c, t, x in zip(completions, target, text, strict=True)]

    class Clock(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            turns.wait()
            self.t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            times.append(time.perf_counter() - self.t0)
            turns.done()

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "completions/mean_length" in logs:
                lengths.append(logs["completions/mean_length"])
                rewards.append(logs.get("reward", float("nan")))

    config = GRPOConfig(
        output_dir=str(out), per_device_train_batch_size=s["prompts"] * s["group"], num_generations=s["group"],
        max_completion_length=s["max_new_tokens"], max_steps=steps, learning_rate=s["lr"],
        lr_scheduler_type="constant", warmup_steps=0, max_grad_norm=1.0, beta=0.0, epsilon=0.2,
        loss_type="dapo", temperature=1.0, top_p=1.0, use_vllm=False, bf16=False, gradient_checkpointing=False,
        use_cpu=not torch.cuda.is_available(), report_to=[], logging_steps=1, save_strategy="no", seed=s["seed"],
        dataloader_num_workers=0, disable_tqdm=True, shuffle_dataset=False,
    )
    peft_config = LoraConfig(r=s["lora_r"], lora_alpha=s["lora_alpha"], lora_dropout=0.0,
                             target_modules=LORA_TARGETS, task_type="CAUSAL_LM")
    trainer = GRPOTrainer(model=policy, reward_funcs=reward, args=config, train_dataset=Dataset.from_list(records),
                          processing_class=tokenizer, peft_config=peft_config, callbacks=[Clock()])
    trainer.train()
    n = s["prompts"] * s["group"]
    return {"step_time": times, "gen_tokens": [m * n for m in lengths], "reward": rewards}


def _child(name: str, index: int, model: str, data: str, steps: int, turn, cond, conn, players: int = 2) -> None:
    import torch

    torch.manual_seed(SETTINGS["seed"])
    turns = Turns(turn, cond, index, players)
    with tempfile.TemporaryDirectory() as tmp:
        fn = run_agentladder if name == "agentladder" else run_trl
        try:
            out = fn(model, Path(data), Path(tmp) / name, steps, turns)
            conn.send({"name": name, **out, **peak_memory()})
        except BaseException as e:  # report, and let the other side stop waiting
            conn.send({"name": name, "error": repr(e)})
            raise


def _receive(pipe, proc, name: str) -> dict:
    """The child's result; an error if it died without one (killed for memory, say)."""
    while not pipe.poll(5):
        if not proc.is_alive():
            return {"error": f"the process died with exit code {proc.exitcode} (killed for memory? try --sequential)"}
    return pipe.recv()


def _model_folder(spec: str, where: Path) -> str:
    """A folder both frameworks load: the cached conversion of an alias, or the tiny model saved once."""
    if spec == "tiny":
        from agentladder.models.tiny import tiny_model, tiny_tokenizer

        tok = tiny_tokenizer()
        tiny_model(tokenizer=tok).save_pretrained(where / "tiny")
        tok.save_pretrained(where / "tiny")
        return str(where / "tiny")
    from agentladder.models.loading import resolve

    return resolve(spec)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="smollm2-135m", help="alias or folder (tiny: a smoke test)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--sequential", action="store_true",
                        help="run the frameworks one after the other, not in lockstep: for machines whose memory "
                             "cannot hold both at once (TRL's peak on 2 CPU cores and 24 GiB: about 17 GiB)")
    args = parser.parse_args(argv)

    from agentladder.tasks import get_task

    total = args.warmup + args.steps
    task = get_task(TASK)
    samples = task.make("train", total * SETTINGS["prompts"], seed=SETTINGS["seed"])
    ctx = mp.get_context("spawn")
    turn, cond = ctx.Value("i", 0), ctx.Condition()
    with tempfile.TemporaryDirectory() as tmp:
        model = _model_folder(args.model, Path(tmp))
        data = Path(tmp) / "prompts.jsonl"
        data.write_text("".join(json.dumps(task.to_row(s)) + "\n" for s in samples))
        results = {}
        batches = [[(i, n)] for i, n in enumerate(FRAMEWORKS)] if args.sequential else [list(enumerate(FRAMEWORKS))]
        for batch in batches:
            procs, pipes = [], []
            if args.sequential:
                turn = ctx.Value("i", 0)
            for i, name in batch:
                mine, theirs = ctx.Pipe()
                index, players = (0, 1) if args.sequential else (i, len(FRAMEWORKS))
                p = ctx.Process(target=_child,
                                args=(name, index, model, str(data), total, turn, cond, theirs, players))
                p.start()
                procs.append(p)
                pipes.append(mine)
            for (_, name), pipe, proc in zip(batch, pipes, procs, strict=True):
                msg = _receive(pipe, proc, name)
                if "error" in msg:
                    for p in procs:
                        p.kill()
                    sys.exit(f"{name} failed: {msg['error']}")
                results[name] = msg
            for p in procs:
                p.join()

    s = SETTINGS
    print(f"{args.model}: {s['prompts']} prompts x {s['group']} responses per step, <= {s['max_new_tokens']} new tokens, "
          f"LoRA r={s['lora_r']}, fp32, {args.warmup} warm-up + {args.steps} timed steps, no KL")
    print(f"{'framework':12} {'median step s':>14} {'gen tok/s':>10} {'peak RSS MiB':>13} {'peak GPU MiB':>13} "
          f"{'mean reward':>12}")
    rate = {}
    for name in FRAMEWORKS:
        r = results[name]
        timed = r["step_time"][args.warmup :]
        median = statistics.median(timed)
        rate[name] = 1 / median
        tokens = sum(r["gen_tokens"][args.warmup :])
        gen_rate = tokens / sum(timed) if tokens else float("nan")
        gpu = f"{r['peak_gpu_mib']:.0f}" if "peak_gpu_mib" in r else "-"
        rewards = [x for x in r["reward"] if x == x]
        mean_reward = sum(rewards) / len(rewards) if rewards else float("nan")
        print(f"{name:12} {median:14.3f} {gen_rate:10.1f} {r['peak_rss_mib']:13.0f} {gpu:>13} {mean_reward:12.3f}")
    mem_key = "peak_gpu_mib" if "peak_gpu_mib" in results["trl"] else "peak_rss_mib"
    print(f"memory_ratio={results['agentladder'][mem_key] / results['trl'][mem_key]:.3f} ({mem_key})")
    if args.sequential:
        print("mode: sequential (one framework after the other, not in lockstep)")
    print(f"speedup_vs_trl={rate['agentladder'] / rate['trl']:.3f}")


if __name__ == "__main__":
    main()
