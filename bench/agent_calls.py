"""Agent RL's call rounds: every call prefilled on its own, against identical calls prefilled once.

    python bench/agent_calls.py                                  # 8 pharmacy orders x 8 episodes, first call
    python bench/agent_calls.py --episodes RUN/episodes.jsonl --model RUN_MODEL --steps 1   # a recorded run's rounds

With ``concurrent_episodes`` (and ``concurrent_groups``) agent RL decodes a
round's model calls together (``CallBatcher``). A group's episodes start from
the same task, so their first calls have the same prompt ids, and later calls
keep agreeing while the episodes' replies do. ``per-call`` is the round as one
batch with every call a row of its own (``rollout.generate(prompts, 1)``, what
the batcher did before); ``shared`` is what it does now
(:func:`~agentladder.models.providers.policy.sample_each`: each distinct prompt
prefilled once and sampled as many times as it was asked). Both run the same
rollout on the same model, in one process, alternating, ``--repeats`` times.

Without ``--episodes`` the rounds are the pharmacy reviewer's first call
(system prompt, tool instructions and the parsed order) for ``--orders``
orders of the 2:1:1 training mix, ``--group`` episodes each, on the packaged
model. With ``--episodes`` they are a recorded run's calls, grouped by step,
round and the call's place in its episode (the batches its batcher decoded,
near enough: an episode that fails early drops out of later ones).

Decoding is greedy by default (``--temperature 0``) so both sides decode the
same tokens and the difference is the prefill alone; at ``--temperature 1``
the replies differ between the sides and so does the decoding work.

Printed: per round the rows, the distinct prompts, both sides' median seconds
and their ratio; then the totals, and the last line
``median_ratio=<per-call / shared>``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch

from agentladder.data.schema import Message
from agentladder.models.engine import SamplingParams
from agentladder.models.loading import load_model
from agentladder.models.providers.local import chat_prompt_ids
from agentladder.models.providers.policy import sample_each
from agentladder.models.rollout import LocalRollout
from agentladder.tasks.medication.task import Directions

ROOT = Path(__file__).resolve().parents[1]


def recorded_rounds(path: Path, steps: int) -> list[tuple[str, list[list[int]]]]:
    """The calls of a recorded run's first ``steps`` steps, by (step, round, place in the episode)."""
    rounds: dict[tuple[int, int, int], list[list[int]]] = defaultdict(list)
    with path.open() as fh:
        for n, line in enumerate(fh, 1):
            try:
                row = json.loads(line)
                step, round_, calls = row["step"], row["round"], row["episode"]["calls"]
            except (json.JSONDecodeError, KeyError, TypeError) as err:
                sys.exit(f"{path}:{n}: not an episode line ({err})")
            if step > steps:
                continue
            for place, call in enumerate(calls):
                rounds[(step, round_, place)].append(list(call["prompt_ids"]))
    return [(f"step {s} round {r} call {c + 1}", p) for (s, r, c), p in sorted(rounds.items())]


def first_call_rounds(tokenizer, orders: int, group: int) -> list[tuple[str, list[list[int]]]]:
    """The pharmacy reviewer's first call for ``orders`` train orders of the 2:1:1 mix, ``group`` times each."""
    sys.path.insert(0, str(ROOT / "examples" / "pharmacy"))
    from pharmacy import pick_tools
    from review import REVIEW_PROMPT, SPLIT_SEEDS, mixed_orders, review_request

    tools = [t.to_openai() for t in pick_tools(None).values()]
    prompts = []
    for order in mixed_orders(orders, SPLIT_SEEDS["train"], {"safe": 2, "dose": 1, "interaction": 1}):
        request = review_request(Directions.model_validate(order["target"]),
                                 order["patient"]["current_medications"])
        ids = chat_prompt_ids(tokenizer, [Message(role="system", content=REVIEW_PROMPT),
                                          Message(role="user", content=request)], tools)
        prompts += [ids] * group
    return [(f"{orders} orders x {group} episodes, first call", prompts)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m", help="model alias or folder (a recorded run's model)")
    parser.add_argument("--episodes", type=Path, help="a recorded agent-RL run's episodes.jsonl")
    parser.add_argument("--steps", type=int, default=1, help="recorded steps to replay")
    parser.add_argument("--orders", type=int, default=8)
    parser.add_argument("--group", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--temperature", type=float, default=0.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads [default: torch's]")
    args = parser.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    model, tokenizer = load_model(args.model)
    rollout = LocalRollout(model, tokenizer)
    if args.episodes is not None:
        if not args.episodes.is_file():
            sys.exit(f"{args.episodes}: no such file")
        rounds = recorded_rounds(args.episodes, args.steps)
    else:
        rounds = first_call_rounds(tokenizer, args.orders, args.group)
    params = SamplingParams(max_new_tokens=args.max_new_tokens, temperature=args.temperature, stop_at_json=True)
    sides = {
        "per-call": lambda p, g: rollout.generate(p, 1, params, g),
        "shared": lambda p, g: sample_each(rollout, p, params, g),
    }
    print(f"model {args.model}, {torch.get_num_threads()} threads, max_new_tokens {args.max_new_tokens}, "
          f"temperature {args.temperature}, {args.repeats} repeats\n")
    print("| round | rows | distinct prompts | per-call s | shared s | ratio |\n|---|---:|---:|---:|---:|---:|")
    totals = {name: 0.0 for name in sides}
    ratios = []
    for label, prompts in rounds:
        times: dict[str, list[float]] = {name: [] for name in sides}
        for r in range(args.repeats):
            for name in (list(sides) if r % 2 == 0 else list(reversed(sides))):
                start = time.perf_counter()
                sides[name](prompts, torch.Generator().manual_seed(r))
                times[name].append(time.perf_counter() - start)
        med = {name: statistics.median(t) for name, t in times.items()}
        for name in sides:
            totals[name] += med[name]
        ratios.append(med["per-call"] / med["shared"])
        distinct = len({tuple(p) for p in prompts})
        print(f"| {label} | {len(prompts)} | {distinct} | {med['per-call']:.1f} | {med['shared']:.1f} | "
              f"{ratios[-1]:.2f} |", flush=True)
    print(f"| all rounds | | | {totals['per-call']:.1f} | {totals['shared']:.1f} | "
          f"{totals['per-call'] / totals['shared']:.2f} |")
    print(f"median_ratio={statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()
