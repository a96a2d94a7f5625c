"""The classifier rung against the prompted model on log triage: training time, time per event, and scores.

What the issue's target asks for, in one run on an idle machine:

- **train**: ``train_classifier`` on ``--train`` generated training rows and ``--val`` validation rows,
  features from SmolLM2-135M (the default 4 layers x 4 values of C chosen on validation, calibrated),
  with an empty feature cache, so the time includes the forward passes: the figure the target
  "trained in under 5 minutes on 2 CPU cores" is about;
- **answer**: the first ``--rows`` rows of the generated test split, answered by the classifier and by
  SmolLM2-135M prompted with the task's instruction and 3 examples (the reference), each through
  ``evaluate``; the time per event is each model's answering time over the rows (loading left out).

It prints accuracy, macro-F1 and P1 recall (with 95 % bootstrap intervals) beside the times.

    python bench/classifier.py                       # 3000 + 600 training rows, 600 test rows
    python bench/classifier.py --train 1000 --val 300 --rows 200
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=int, default=3000)
    parser.add_argument("--val", type=int, default=600)
    parser.add_argument("--rows", type=int, default=600)
    parser.add_argument("--shots", type=int, default=3)
    parser.add_argument("--features", default="smollm2-135m")
    args = parser.parse_args()

    import torch

    from agentladder.evals import evaluate
    from agentladder.models.loading import resolve
    from agentladder.tasks import write_data
    from agentladder.train import train_classifier

    torch.set_num_threads(2)
    resolve("smollm2-135m")  # the one-off GGUF conversion stays out of the timings
    work = Path(tempfile.mkdtemp(prefix="bench-classifier-"))
    for split, n in (("train", args.train), ("validation", args.val), ("test", args.rows)):
        write_data("log-triage", split, n, work / f"{split}.jsonl")

    start = time.perf_counter()
    result = train_classifier(str(work / "train.jsonl"), str(work / "cls"), features=args.features,
                              validation=str(work / "validation.jsonl"), task="log-triage",
                              cache_dir=str(work / "cache"), progress=False)
    train_s = time.perf_counter() - start

    report = evaluate([str(work / "cls"), "smollm2-135m"], "log-triage", data=str(work / "test.jsonl"),
                      shots=args.shots, progress=False)
    print(f"log-triage, {args.rows} test rows; classifier on {args.features} features: layer {result.layer}, "
          f"C {result.c}, chosen of {len(result.tried)} configurations on {args.val} validation rows")
    print(f"{'':34} {'classifier':>26} {'prompted (' + str(args.shots) + '-shot)':>26}")
    cls, base = report.models[str(work / "cls")], report.models["smollm2-135m"]
    for name in ("accuracy", "macro_f1", "p1_recall"):
        print(f"{name:34} {str(cls.metrics[name]):>26} {str(base.metrics[name]):>26}")
    print(f"{'training (min, features included)':34} {train_s / 60:>26.2f} {'-':>26}")
    print(f"{'of which feature passes (min)':34} {result.seconds['features'] / 60:>26.2f} {'-':>26}")
    per_event = [1000 * r.seconds / max(r.generated, 1) for r in (cls, base)]
    print(f"{'answering (ms per event)':34} {per_event[0]:>26.1f} {per_event[1]:>26.1f}")
    print(f"{'speed-up':34} {per_event[1] / per_event[0]:>26.1f}x")


if __name__ == "__main__":
    main()
