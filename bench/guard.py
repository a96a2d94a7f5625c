"""The guard's latency: per row, and what it adds to a request at a gateway (p50, p99; short and long inputs).

    python bench/guard.py                              # examples/guard/guard.yaml, 200 short and 50 long requests
    python bench/guard.py --policy guard.yaml --short 500 --long 100

A request at a gateway is checked twice: its input (``where="input"``: PII, injection, denied topics)
and the model's answer (``where="output"``: PII, denied topics). The added latency of one request is
the time of both checks. Inputs are generated labelled rows (``guard-eval``, test split): *short*
is one row (about 60-250 characters), *long* is rows joined to about 5,000 characters (a pasted
document or a tool result). Every detector is built and warmed before timing (the classifiers are
trained once and cached under ``$AGENTLADDER_HOME/guard``; the first run takes minutes).

Side by side, in the same run and on the same texts, the reference: Presidio's ``AnalyzerEngine``
with its predefined recognizers (e-mail and URL ones left out: they fetch a public-suffix list)
on the same spaCy model, PII only, one call per text.

Printed: p50 and p99 in milliseconds per case, the ratio of the medians, and last a line
``guard_added_ms_p50_short=... p99_short=... p50_long=... p99_long=...``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from agentladder.agents.guard import Guard, make_guard_rows
from agentladder.agents.guard.ner import installed_spacy_model

ROOT = Path(__file__).resolve().parents[1]


def texts(n_short: int, n_long: int, seed: int = 0) -> tuple[list[str], list[str]]:
    rows = [r["text"] for r in make_guard_rows("guard-eval", "test", n_short + 40 * n_long, seed=seed)]
    short = rows[:n_short]
    long, current = [], ""
    for t in rows[n_short:]:
        current = f"{current}\n{t}" if current else t
        if len(current) >= 5000:
            long.append(current[:5000])
            current = ""
        if len(long) == n_long:
            break
    return short, long


def timed(fn: Callable[[str], object], items: list[str], warmup: int = 5) -> np.ndarray:
    for t in items[:warmup]:
        fn(t)
    out = []
    for t in items:
        start = time.perf_counter()
        fn(t)
        out.append((time.perf_counter() - start) * 1000)
    return np.asarray(out)


def presidio_reference() -> Callable[[str], object]:
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    provider = NlpEngineProvider(nlp_configuration={
        "nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": installed_spacy_model()}]})
    nlp = provider.create_engine()
    registry = RecognizerRegistry(supported_languages=["en"])
    registry.load_predefined_recognizers(nlp_engine=nlp, languages=["en"])
    for name in ("EmailRecognizer", "UrlRecognizer"):
        registry.remove_recognizer(name)
    engine = AnalyzerEngine(nlp_engine=nlp, registry=registry, supported_languages=["en"])
    return lambda text: engine.analyze(text, language="en")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--policy", default=str(ROOT / "examples" / "guard" / "guard.yaml"))
    parser.add_argument("--short", type=int, default=200)
    parser.add_argument("--long", type=int, default=50)
    parser.add_argument("--no-reference", action="store_true", help="Skip Presidio's analyzer.")
    args = parser.parse_args()

    guard = Guard.from_yaml(args.policy, progress=print)
    short, long = texts(args.short, args.long)
    print(f"{len(short)} short texts (median {statistics.median(map(len, short)):.0f} chars), "
          f"{len(long)} long texts ({len(long[0])} chars); building and warming the detectors")
    guard.check(short[0], "input")
    guard.check(short[0], "output")

    def request(text: str) -> None:  # what a gateway adds: the input checked, then the answer
        guard.check(text, "input", conversation_id="bench")
        guard.check(text, "output", conversation_id="bench")

    cases = {"row (input check)": lambda t: guard.check(t, "input"), "request (input + output)": request}
    reference = None if args.no_reference else presidio_reference()
    print(f"{'case':<34} {'length':<6} {'p50 ms':>9} {'p99 ms':>9}")
    added = {}
    for label, fn in cases.items():
        for size, items in (("short", short), ("long", long)):
            ms = timed(fn, items)
            p50, p99 = float(np.percentile(ms, 50)), float(np.percentile(ms, 99))
            print(f"{'agentladder ' + label:<34} {size:<6} {p50:>9.2f} {p99:>9.2f}")
            if label.startswith("request"):
                added[size] = (p50, p99)
            if reference is not None and label.startswith("row"):
                ref = timed(reference, items)
                r50, r99 = float(np.percentile(ref, 50)), float(np.percentile(ref, 99))
                print(f"{'presidio analyzer (PII only)':<34} {size:<6} {r50:>9.2f} {r99:>9.2f}   "
                      f"ratio of medians {p50 / r50:.2f}")
    usage = guard.usage()
    print(f"guard usage: {usage.checks} checks, {usage.characters} characters, {usage.seconds:.1f} s")
    print(f"guard_added_ms_p50_short={added['short'][0]:.2f} p99_short={added['short'][1]:.2f} "
          f"p50_long={added['long'][0]:.2f} p99_long={added['long'][1]:.2f}")


if __name__ == "__main__":
    main()
