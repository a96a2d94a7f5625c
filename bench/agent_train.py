"""Agent RL's training pass: one sample per model call, against identical calls merged into one weighted sample.

    python bench/agent_train.py --episodes RUN/episodes.jsonl --model RUN_START_MODEL --step 9

A step of agent RL trains one sample per model call of the trained agent. A
group's episodes start from the same task, so many of their calls are
identical: the same prompt ids and the same sampled ids (a tool call every
episode makes the same way, an ``approve`` with no reasons). With
``merge_identical_calls`` (the default) the calls that also share the sign of
their advantage are trained as one sample weighted by their number, which
gives the same gradient (tested in ``tests/train/test_agent_rl.py``).
``per-call`` is the step's training with ``merge_identical_calls: false``,
``merged`` with it on: the same recorded episodes, the same model, the same
settings (``--preset``, LoRA as the run had it, micro-batches of 4), in one
process, alternating, ``--repeats`` times.

The step is a recorded run's (``episodes.jsonl``): its kept groups, as they were
trained. ``--model`` is the model the run started from (an adapter is merged
in and fresh LoRA adapters attached, as agent RL does).

Printed: the samples and the tokens through the model on each side, both
sides' median seconds and their ratio; the last line ``median_ratio=<per-call / merged>``.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch

from agentladder.models.loading import load_model
from agentladder.models.lora import LoraSettings, attach_lora, is_lora
from agentladder.train.agent_episodes import Episode, TaskRow
from agentladder.train.agent_rl import AgentRLTrainer, EpisodeGroup
from agentladder.train.rl_config import RLConfig


def recorded_step(path: Path, step: int | None) -> tuple[int, list[EpisodeGroup]]:
    """The kept groups of ``step`` (default: the first step that kept one) of a recorded run."""
    groups: dict[tuple[int, int, int], list[Episode]] = defaultdict(list)
    with path.open() as fh:
        for n, line in enumerate(fh, 1):
            try:
                row = json.loads(line)
                where = (row["step"], row["round"], row["group"])
                kept, episode = row["kept"], Episode.from_json(row["episode"])
            except (json.JSONDecodeError, KeyError, TypeError) as err:
                sys.exit(f"{path}:{n}: not an episode line ({err})")
            if kept:
                groups[where].append(episode)
    steps = sorted({s for s, _, _ in groups})
    if not steps:
        sys.exit(f"{path}: no kept group in any step")
    step = steps[0] if step is None else step
    if step not in steps:
        sys.exit(f"{path}: step {step} kept no group (steps with kept groups: {steps})")
    return step, [EpisodeGroup(TaskRow(eps[0].task_id, None, {}), eps)
                  for (s, _, _), eps in sorted(groups.items()) if s == step]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=Path, required=True, help="a recorded agent-RL run's episodes.jsonl")
    parser.add_argument("--model", required=True, help="the model the run started from (alias or folder)")
    parser.add_argument("--step", type=int, default=None, help="the recorded step [default: the first kept one]")
    parser.add_argument("--preset", default="dr_grpo")
    parser.add_argument("--full", action="store_true", help="full fine-tuning [default: LoRA, r 16 on every linear]")
    parser.add_argument("--max-new-tokens", type=int, default=96, help="the run's (Dr. GRPO's length norm)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads [default: torch's]")
    args = parser.parse_args(argv)

    if not args.episodes.is_file():
        sys.exit(f"{args.episodes}: no such file")
    if args.threads:
        torch.set_num_threads(args.threads)
    step, groups = recorded_step(args.episodes, args.step)
    model, tokenizer = load_model(args.model)
    if is_lora(model):
        model = model.merge_and_unload()
    torch.manual_seed(0)
    model = model if args.full else attach_lora(model, LoraSettings())
    calls = sum(len(e.calls) for g in groups for e in g.episodes)
    trainers, batches = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, merge in (("per-call", False), ("merged", True)):
            config = RLConfig(preset=args.preset, model=args.model, data="unused", out_dir=f"{tmp}/{name}",
                                     lora=not args.full, max_new_tokens=args.max_new_tokens, progress=False,
                                     tensorboard=False, merge_identical_calls=merge)
            trainers[name] = AgentRLTrainer(copy.deepcopy(model), tokenizer, [g.task for g in groups],
                                            lambda policy: None, lambda row, episode: 0.0, config)
            batches[name] = trainers[name]._episode_batch(groups)
        print(f"{args.episodes} step {step}: {len(groups)} kept groups, "
              f"{sum(len(g.episodes) for g in groups)} episodes, {calls} model calls; model {args.model}, "
              f"{'full' if args.full else 'LoRA'}, {args.preset}, {torch.get_num_threads()} threads, "
              f"{args.repeats} repeats\n")
        times: dict[str, list[float]] = {name: [] for name in trainers}
        tokens: dict[str, float] = {}
        for r in range(args.repeats):
            for name in (list(trainers) if r % 2 == 0 else list(reversed(trainers))):
                start = time.perf_counter()
                updates = trainers[name]._updates(batches[name].samples, 0)
                times[name].append(time.perf_counter() - start)
                tokens[name] = sum(u.n_tokens or 0 for u in updates)
    med = {name: statistics.median(t) for name, t in times.items()}
    print("| side | samples | tokens through the model | median s | runs s |\n|---|---:|---:|---:|---|")
    for name in trainers:
        runs = ", ".join(f"{t:.1f}" for t in times[name])
        print(f"| {name} | {len(batches[name].samples)} | {tokens[name]:.0f} | {med[name]:.1f} | {runs} |")
    print(f"median_ratio={med['per-call'] / med['merged']:.2f}")


if __name__ == "__main__":
    main()
