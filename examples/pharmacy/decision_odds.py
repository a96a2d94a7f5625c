"""What a reviewer model believes at the moment it decides: the probability of each decision, by kind of order.

    python examples/pharmacy/decision_odds.py --episodes runs/review-rl/episodes.jsonl --orders orders-train.jsonl \\
        --model runs/review-sft --model runs/review-rl

Agent RL's ``episodes.jsonl`` keeps, for every model call, the exact prompt ids the reviewer was
fed. For one episode per task (its first), this takes the reviewer's last call (both check results
in its prompt), the sampled reply up to its ``"decision": "`` and reads each model's probability
of ``approve``, ``flag`` and ``escalate`` as the next token. The figures are grouped by kind of
order (``safe``, ``dose``: dangerous by its dose alone, ``interaction``) and summarised by their
median: a reviewer that reads the dose check gives ``flag`` a high probability on ``dose`` orders
and a low one on ``safe`` orders; one that does not gives both about the same. Greedy decoding
answers with the likelier word, so these are also why an evaluation decides as it does.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from review import order_kind, orders_by_id  # noqa: E402

from agentladder.errors import DataError  # noqa: E402
from agentladder.models.loading import load_model, load_tokenizer  # noqa: E402
from agentladder.train.agent_episodes import read_episodes  # noqa: E402

DECISIONS = ("approve", "flag", "escalate")
MARK = '"decision": "'


def decision_prompts(episodes: str | Path, orders: dict[str, dict[str, Any]], tokenizer: Any) -> list[dict[str, Any]]:
    """``{"task", "kind", "ids"}`` for the first episode of each task whose last reply names a decision."""
    out, seen = [], set()
    for _, episode in read_episodes(episodes):
        if episode.task_id in seen or episode.task_id not in orders or not episode.calls:
            continue
        call = episode.calls[-1]
        text = tokenizer.decode(call.token_ids)
        at = text.find(MARK)
        if at < 0:
            continue
        seen.add(episode.task_id)
        prefix = tokenizer(text[: at + len(MARK)], add_special_tokens=False)["input_ids"]
        out.append({"task": episode.task_id, "kind": order_kind(orders[episode.task_id]),
                    "ids": list(call.prompt_ids) + list(prefix)})
    return out


def decision_odds(model_path: str, prompts: list[dict[str, Any]]) -> list[dict[str, float]]:
    """Each prompt's next-token probability of each decision's first token under ``model_path``."""
    model, tokenizer = load_model(model_path)
    model.eval()
    first = {d: tokenizer(d, add_special_tokens=False)["input_ids"][0] for d in DECISIONS}
    odds = []
    with torch.no_grad():
        for p in prompts:
            logits = model(torch.tensor([p["ids"]])).logits[0, -1].float()
            probs = torch.softmax(logits, -1)
            odds.append({d: float(probs[i]) for d, i in first.items()})
    return odds


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--episodes", required=True, help="an agent RL run's episodes.jsonl (the prompts)")
    ap.add_argument("--orders", required=True, help="the task file the run trained on (the orders' kinds)")
    ap.add_argument("--model", action="append", required=True, help="a reviewer model: alias or run folder; repeat")
    ap.add_argument("--out", default=None, help="write every prompt's figures as JSON here")
    args = ap.parse_args(argv)

    from rich.console import Console
    from rich.table import Column, Table

    try:
        orders = orders_by_id(args.orders)
    except (DataError, OSError) as err:
        raise SystemExit(str(err)) from err
    tokenizer = load_tokenizer(args.model[0])
    prompts = decision_prompts(args.episodes, orders, tokenizer)
    table = Table(Column("model", no_wrap=True), "kind", "prompts", "median P(approve)", "median P(flag)", "greedy flags",
                  title=f"decision odds on {len(prompts)} recorded prompts of {args.episodes}")
    results = {}
    for model in args.model:
        odds = decision_odds(model, prompts)
        paired = list(zip(prompts, odds, strict=True))
        results[model] = [{"task": p["task"], "kind": p["kind"], **o} for p, o in paired]
        for kind in ("safe", "dose", "interaction"):
            rows = [o for p, o in paired if p["kind"] == kind]
            if rows:
                flags = sum(max(o, key=o.get) == "flag" for o in rows)
                table.add_row(model, kind, str(len(rows)), f"{statistics.median(o['approve'] for o in rows):.3f}",
                              f"{statistics.median(o['flag'] for o in rows):.3f}", f"{flags}/{len(rows)}")
    Console().print(table)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
