"""Pharmacy Q&A with expert feedback, end to end: SFT, reward model, PPO against it, DPO on the same pairs.

Every stage writes its own folder under ``--out`` and is skipped when its result is there (an
interrupted trainer resumes from its checkpoint), so the script can be run again after a kill.

1. data: questions of the pharmacy knowledge base (``--kb`` folder from ``agentladder data make
   pharmacy-kb``, or the generator), two passages in each prompt (``qa_feedback.py``); SFT
   demonstrations of mixed quality; pairs and grades from the simulated expert (the rubric grader),
   or ``--pairs`` / ``--grades`` files of recorded feedback in the same form;
2. ``sft``: the specialist, full fine-tuning of ``--model`` on the demonstrations;
3. ``rm``: a LoRA reward model on the SFT model, Bradley-Terry on the pairs; held-out pairwise
   accuracy on the validation questions' pairs (the gate) and, once, on the test questions' pairs;
4. ``ppo``: PPO (LoRA) from the SFT model against the reward model, the rubric grader as the held-out gold
   score of the reward-hacking monitor (``hacking.png``);
5. ``dpo``: DPO (LoRA) from the SFT model on the same pairs;
6. evaluation: greedy answers of SFT, PPO and DPO to the test questions, graded by the rubric (gold);
   win rate against SFT by the gold grade (a tie counts half); ``results.md`` is written now;
7. ``judge``: a tuned judge (LoRA SFT of ``--model`` on the graded answers and ``qa_rubric.md``), its
   agreement with the validation grades next to the untuned model's; then its 1-5 grade of the test
   answers joins the table. ``results.json`` and ``results.md`` hold it.

    python examples/rlhf/run_qa.py --model smollm2-135m --out runs/qa-rlhf
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from agentladder.data import Message, write_jsonl
from agentladder.evals.preference import preference_accuracy
from agentladder.models.providers import make_provider
from agentladder.rewards.judging import parse_verdict, single_prompt
from agentladder.train.judge import train_judge
from agentladder.train.preference import preference
from agentladder.train.reward_model import train_reward_model
from agentladder.train.rl import rl
from agentladder.train.sft import sft

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from qa_feedback import feedback, grade, questions, sft_rows  # noqa: E402

SETTINGS: dict[str, dict[str, Any]] = {
    "sft": dict(learning_rate=5e-5, epochs=1, batch_size=8, max_length=512),
    "rm": dict(lora=True, learning_rate=5e-4, epochs=1, batch_size=8, max_length=384, normalisation_rows=48),
    "judge": dict(lora=True, learning_rate=5e-4, epochs=1, batch_size=8, max_length=768, max_new_tokens=40),
    "ppo": dict(preset="ppo", lora=True, batch_size=2, group_size=2, max_new_tokens=64, temperature=1.0,
                learning_rate=1e-4, hacking_window=3, on_hacking="warn"),
    "dpo": dict(loss="dpo", lora=True, beta=0.1, learning_rate=1e-4, epochs=1, batch_size=8, max_length=512),
}
"""The one configuration of each stage (fixed before any score was seen; see docs/rlhf.md)."""


def _write(path: Path, rows: list[dict]) -> str:
    if not path.exists():
        write_jsonl(path, rows)
    return str(path)


def make_data(args, out: Path) -> dict[str, Any]:
    train = questions(args.kb, "train", args.sft + args.pairs + args.ppo_prompts)
    val = questions(args.kb, "validation", args.validation)
    test = questions(args.kb, "test", args.test)
    sft_q, pair_q = train[:args.sft], train[args.sft:args.sft + args.pairs]
    ppo_q = train[args.sft + args.pairs:]
    pairs, grades = feedback(pair_q)
    val_pairs, val_grades = feedback(val)
    test_pairs, _ = feedback(test)
    d = out / "data"
    d.mkdir(parents=True, exist_ok=True)
    return {"sft": _write(d / "sft.jsonl", sft_rows(sft_q)),
            "pairs": args.pairs_file or _write(d / "pairs.jsonl", pairs),
            "grades": args.grades_file or _write(d / "grades.jsonl", grades),
            "val_pairs": _write(d / "pairs-validation.jsonl", val_pairs),
            "val_grades": _write(d / "grades-validation.jsonl", val_grades),
            "test_pairs": _write(d / "pairs-test.jsonl", test_pairs),
            "ppo": _write(d / "ppo-prompts.jsonl", ppo_q), "validation": val, "test": test}


def _done(folder: Path, marker: str = "agentladder.json") -> bool:
    return (folder / marker).exists()


def _resume(folder: Path) -> bool:
    return (folder / "train_config.json").exists()


def train_all(args, out: Path, data: dict[str, Any]) -> dict[str, str]:
    m = {k: out / k for k in ("sft", "rm", "ppo", "dpo")}
    common = dict(progress=True, tensorboard=False, save_every=8)
    if args.max_length:  # a model whose tokenizer writes more tokens (the tiny test model's)
        for stage in ("sft", "rm", "judge", "dpo"):
            SETTINGS[stage]["max_length"] = args.max_length
    if not _done(m["sft"]):
        sft(model=args.model, data=data["sft"], out_dir=str(m["sft"]), resume=_resume(m["sft"]), **common,
            **SETTINGS["sft"])
    if not _done(m["rm"], "reward_model.json"):
        train_reward_model(model=str(m["sft"]), data=data["pairs"], validation=data["val_pairs"],
                           out_dir=str(m["rm"]), resume=_resume(m["rm"]), **common, **SETTINGS["rm"])
    if not _done(m["ppo"]):
        rl(model=str(m["sft"]), data=data["ppo"], out_dir=str(m["ppo"]), max_steps=args.ppo_steps,
           rewards=[{"type": "reward_model", "path": str(m["rm"])}],
           gold_rewards=[{"type": "python", "fn": "qa_feedback:gold_score"}],
           resume=_resume(m["ppo"]), **{**common, "save_every": 5}, **SETTINGS["ppo"])
    if not _done(m["dpo"]):
        preference(model=str(m["sft"]), data=data["pairs"], out_dir=str(m["dpo"]), resume=_resume(m["dpo"]),
                   **common, **SETTINGS["dpo"])
    return {k: str(v) for k, v in m.items()}


def train_judge_stage(args, out: Path, data: dict[str, Any]) -> str:
    """The tuned judge, trained last (the gold table does not need it)."""
    folder = out / "judge"
    if not _done(folder, "judge.json"):
        train_judge(model=args.model, data=data["grades"], validation=data["val_grades"],
                    rubric=str(HERE / "qa_rubric.md"), out_dir=str(folder),
                    resume=(folder / "judge_config.json").exists(), progress=True, tensorboard=False, save_every=8,
                    **SETTINGS["judge"])
    return str(folder)


def answers(model: str, rows: list[dict], cache: Path) -> list[str]:
    """Greedy answers of ``model`` to ``rows`` (kept in ``cache``)."""
    if cache.exists():
        return json.loads(cache.read_text())
    provider = make_provider(model)
    try:
        texts = provider.complete([[Message(**m) for m in r["prompt"]] for r in rows], max_new_tokens=80,
                                  temperature=0.0)
    finally:
        provider.close()
    cache.write_text(json.dumps(texts))
    return texts


def judge_scores(judge: str, rows: list[dict], texts: list[str], cache: Path) -> list[float | None]:
    if cache.exists():
        return json.loads(cache.read_text())
    manifest = json.loads((Path(judge) / "judge.json").read_text())
    rubric, scale = manifest["rubric"], tuple(manifest["scale"])
    prompts = [single_prompt(rubric, r["prompt"][-1]["content"], t, None, scale) for r, t in zip(rows, texts, strict=True)]
    provider = make_provider(judge)
    try:
        replies = provider.complete(prompts, max_new_tokens=40, temperature=0.0, stop_at_json=True)
    finally:
        provider.close()
    verdicts = [parse_verdict(t, scale) for t in replies]
    scores = [None if v is None else v.score for v in verdicts]
    cache.write_text(json.dumps(scores))
    return scores


def _mean(xs: list[float | None]) -> float | None:
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None


def evaluate(models: dict[str, str], data: dict[str, Any], out: Path, judge: str | None) -> dict[str, Any]:
    """The test table: gold grade, share graded 5, words, win rate against SFT; the judge's mean grade when
    ``judge`` is given."""
    table: dict[str, Any] = {}
    ev = out / "eval"
    ev.mkdir(exist_ok=True)
    for split in ("test",):
        rows = data[split]
        gold: dict[str, list[int]] = {}
        for name in ("sft", "ppo", "dpo"):
            texts = answers(models[name], rows, ev / f"{name}-{split}.json")
            gold[name] = [grade(t, r["metadata"]["passage_id"], r["metadata"]["passage"], r["metadata"]["question"])[0]
                          for t, r in zip(texts, rows, strict=True)]
            entry = {"gold": _mean(gold[name]), "words": _mean([len(t.split()) for t in texts]),
                     "gold_5_share": sum(g == 5 for g in gold[name]) / len(rows)}
            if name != "sft":
                entry["win_rate_vs_sft"] = sum(1.0 if a > b else 0.5 if a == b else 0.0
                                               for a, b in zip(gold[name], gold["sft"], strict=True)) / len(rows)
            entry["judge"] = _mean(judge_scores(judge, rows, texts, ev / f"judge-{name}-{split}.json")) if judge else None
            table.setdefault(split, {})[name] = entry
    return table


def report(args, out: Path, data: dict[str, Any], models: dict[str, str], table: dict[str, Any]) -> dict[str, Any]:
    rm_manifest = json.loads((Path(models["rm"]) / "reward_model.json").read_text())
    test_rm = out / "rm-test"
    if not (test_rm / "report.json").exists():
        preference_accuracy([models["rm"]], data["test_pairs"], out=test_rm)
    rm_test = json.loads((test_rm / "report.json").read_text())
    judge_file = Path(models["judge"]) / "judge.json"
    judge = json.loads(judge_file.read_text())["agreement"] if judge_file.exists() else None
    ppo_history = [json.loads(line) for line in (Path(models["ppo"]) / "metrics.jsonl").read_text().splitlines()]
    result = {"model": args.model, "settings": SETTINGS, "table": table,
              "reward_model": {"validation": rm_manifest["validation"]["pairs"], "test": rm_test},
              "judge_agreement_validation": judge,
              "ppo_hacking_steps": [r["step"] for r in ppo_history if r.get("hacking")]}
    (out / "results.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    lines = ["| model | gold grade (1-5) | share graded 5 | judge (1-5) | win rate vs SFT | words |",
             "|---|---|---|---|---|---|"]
    for name, e in table["test"].items():
        win = e.get("win_rate_vs_sft")
        lines.append(f"| {name} | {e['gold']:.2f} | {e['gold_5_share']:.2f} | "
                     f"{'-' if e['judge'] is None else format(e['judge'], '.2f')} | "
                     f"{'-' if win is None else format(win, '.2f')} | {e['words']:.1f} |")
    (out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--out", required=True)
    ap.add_argument("--kb", default=None, help="A knowledge-base folder (agentladder data make pharmacy-kb).")
    ap.add_argument("--pairs-file", default=None, help="Recorded expert pairs instead of the simulated ones.")
    ap.add_argument("--grades-file", default=None, help="Recorded expert grades instead of the simulated ones.")
    ap.add_argument("--sft", type=int, default=64, help="SFT demonstrations (training questions).")
    ap.add_argument("--pairs", type=int, default=64, help="Training questions with feedback (a pair and a grade each).")
    ap.add_argument("--ppo-prompts", type=int, default=32)
    ap.add_argument("--ppo-steps", type=int, default=10)
    ap.add_argument("--validation", type=int, default=24, help="Validation questions: the reward model's and "
                    "the judge's held-out feedback.")
    ap.add_argument("--test", type=int, default=100)
    ap.add_argument("--max-length", type=int, default=None, help="Override every stage's max_length.")
    args = ap.parse_args()
    out = Path(args.out)
    data = make_data(args, out)
    models = train_all(args, out, data)
    models["judge"] = str(out / "judge")
    report(args, out, data, models, evaluate(models, data, out, None))  # the gold table first
    judge = train_judge_stage(args, out, data)
    result = report(args, out, data, models, evaluate(models, data, out, judge))
    print(json.dumps({k: result[k] for k in ("reward_model", "judge_agreement_validation", "ppo_hacking_steps")},
                     indent=2, default=str))


if __name__ == "__main__":
    main()
