"""Batched greedy decoding of a three-shot prompt: the buffered cache layer against transformers' DynamicCache.

What the demo's baseline rung runs: SmolLM2-135M answering the first ``--rows``
test rows of medication directions with the full instruction and three
examples (about 600 tokens a prompt, 560 of them shared), ``--batch`` rows at a
time, at most 72 new tokens, stopping after the JSON. Both settings share the
prefix's keys and values across the batch; they differ only in how a decoding
step stores its new keys and values:

- ``dynamic``: a ``DynamicCache`` copied from the prefix and repeated over the
  batch, which concatenates (``torch.cat``) the whole cache at every step;
- ``buffered``: as shipped (``agentladder.models.kvcache.in_place_cache``, used by the
  engine behind ``LocalProvider``), a buffer allocated once per batch that each step writes into.

The two alternate ``--repeats`` times in one process; the bench prints the
median rows a second side by side and checks that the answers are the same.

    python bench/eval_cache.py                   # 64 rows, twice each: about 6 min on 2 cores
    python bench/eval_cache.py --rows 128 --repeats 1
"""

from __future__ import annotations

import argparse
import statistics
import time


def dynamic_cache(config, batch: int, capacity: int, prefix=None):
    """The reference: transformers' own cache holding the prefix, grown by concatenation."""
    from transformers import DynamicCache

    cache = DynamicCache(config=config)
    for layer, (keys, values) in zip(cache.layers, prefix or [], strict=False):
        layer.update(keys.repeat(batch, 1, 1, 1), values.repeat(batch, 1, 1, 1))  # (1, H, P, D) -> (B, H, P, D)
    return cache


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    from agentladder.models import engine
    from agentladder.models.providers import LocalProvider
    from agentladder.tasks import get_task

    task = get_task("medication-directions")
    rows = task.make("test", args.rows, seed=0)
    shots = task.select_shots(3, exclude=rows)
    prompts = [task.prompt(r, shots) for r in rows]
    provider = LocalProvider("smollm2-135m", batch_size=args.batch)
    provider.prepare()
    provider.complete(prompts[:2], max_new_tokens=4)  # warm up
    buffered = engine.in_place_cache
    seconds: dict[str, list[float]] = {"dynamic": [], "buffered": []}
    answers: dict[str, list[str]] = {}
    for _ in range(args.repeats):
        for setting in seconds:
            engine.in_place_cache = dynamic_cache if setting == "dynamic" else buffered
            start = time.perf_counter()
            answers[setting] = provider.complete(prompts, max_new_tokens=72, stop_at_json=True)
            seconds[setting].append(time.perf_counter() - start)
    engine.in_place_cache = buffered
    speed = {s: args.rows / statistics.median(t) for s, t in seconds.items()}
    print(f"\n3-shot greedy decoding, SmolLM2-135M fp32, {args.rows} rows, batch {args.batch}, "
          f"median of {args.repeats}")
    print(f"{'cache':<10} {'rows/s':>8} {'vs dynamic':>11}")
    for setting, rate in speed.items():
        print(f"{setting:<10} {rate:>8.2f} {rate / speed['dynamic']:>10.2f}x")
    same = answers["dynamic"] == answers["buffered"]
    print(f"answers identical: {same}")
    if not same:
        raise SystemExit("the two caches answered differently")


if __name__ == "__main__":
    main()
