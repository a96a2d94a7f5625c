"""Is the reviewer's decision learnable by gradient steps at all? The exact policy gradient of the decision, without sampling.

    python examples/pharmacy/decision_gradient.py --model runs/review-sft --train 48 --validation 40 --steps 20

Agent RL estimates the gradient of the expected reward from a few sampled episodes a task. Here the
reviewer's decision is one token choice among three words, and the reward of each choice is known
(``review.decision_reward``), so the expected reward of an order at the moment of deciding is exact:
``J = sum_a P(a | prompt) R(order, a)`` over ``approve``, ``flag`` and ``escalate`` (their first tokens;
any other token earns 0). This takes the expert reviewer's runs on ``--train`` train orders in the
shares ``--mix`` gives (2:1:1 by default; ``--contrast``: contrast triples, each dose-only order with two
safe twins that differ from it only in the dose; both check results in the prompt, as the reviewer sees
them when it decides), and takes ``--steps`` Adam (or ``--optimizer sgd``) steps on fresh LoRA adapters (as agent RL attaches them;
``--full``: on every weight)
against the mean of ``J`` over all of them: the full-batch gradient agent RL's sampled groups
estimate, with no sampling noise.
Every few steps it prints the median P(flag) on the safe, dose-only and interaction orders of the
``--validation`` split, and how many of them the likelier word decides as expected.

If the two kinds separate here, the decision is learnable at this learning rate and what stops agent
RL is the noise of its estimate; if they move together, more episodes a step (a better estimate of
this same gradient) would move them together too.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from decision_odds import DECISIONS, MARK  # noqa: E402
from evaluate_review import review_orders  # noqa: E402
from orders import make_orders  # noqa: E402
from pharmacy import pick_tools  # noqa: E402
from review import (  # noqa: E402
    KINDS,
    SPLIT_SEEDS,
    contrast_orders,
    decision_reward,
    expected_decision,
    mixed_orders,
    order_kind,
    parse_mix,
    rule_reviewer,
)

from agentladder.agents import Runtime  # noqa: E402
from agentladder.models.chat import tokenize_conversation  # noqa: E402
from agentladder.models.loading import load_model  # noqa: E402
from agentladder.models.lora import LoraSettings, attach_lora, is_lora  # noqa: E402
from agentladder.models.providers.toolcalls import with_fallback_tools  # noqa: E402


def decision_prompts(orders: list[dict[str, Any]], tokenizer: Any) -> list[dict[str, Any]]:
    """Each order's prompt at the moment of deciding: the expert's run up to ``{"decision": "``, as token ids."""
    runtime = Runtime(":memory:")
    expert = rule_reviewer()
    specs = [t.to_openai() for t in pick_tools(None).values()]
    try:
        review_orders(expert, orders, runtime=runtime)
        convs = []
        for order in orders:  # the session review_orders ran the order in
            (trajectory,) = runtime.store.trajectories(session=f"review/{expert.name}/{order['id']}", agent="reviewer")
            conv = trajectory["conversation"]
            convs.append(conv.model_copy(update={"messages": with_fallback_tools(conv.messages, specs)}))
    finally:
        runtime.shutdown()
    out = []
    for order, conv in zip(orders, convs, strict=True):
        row = tokenize_conversation(tokenizer, conv)
        start = len(row.mask) - row.mask[::-1].index(0)  # the final answer: the last run of trained tokens
        text = tokenizer.decode(row.input_ids[start:])
        at = text.find(MARK)
        if at < 0:
            raise SystemExit(f"order {order['id']}: the expert's answer has no {MARK!r}")
        prefix = tokenizer(text[: at + len(MARK)], add_special_tokens=False)["input_ids"]
        rewards = [decision_reward(order, d) for d in DECISIONS]
        out.append({"kind": order_kind(order), "expected": expected_decision(order),
                    "ids": row.input_ids[:start] + prefix, "rewards": rewards})
    return out


def decision_probs(model: Any, prompts: list[dict[str, Any]], first: list[int], *, grad: bool) -> torch.Tensor:
    """``(N, 3)`` each prompt's next-token probability of each decision's first token (right-padded rows)."""
    width = max(len(p["ids"]) for p in prompts)
    ids = torch.zeros(len(prompts), width, dtype=torch.long)
    mask = torch.zeros(len(prompts), width, dtype=torch.long)
    for r, p in enumerate(prompts):
        ids[r, : len(p["ids"])] = torch.tensor(p["ids"])
        mask[r, : len(p["ids"])] = 1
    last = mask.sum(-1) - 1  # (N,) each row's last prompt position
    with torch.set_grad_enabled(grad):
        logits = model(input_ids=ids, attention_mask=mask).logits  # (N, W, V)
        at = logits[torch.arange(len(prompts)), last].float()  # (N, V)
        return torch.softmax(at, -1)[:, first]


def in_batches(prompts: list[dict[str, Any]], size: int = 8) -> list[list[dict[str, Any]]]:
    return [prompts[i : i + size] for i in range(0, len(prompts), size)]


def report(step: int, model: Any, prompts: list[dict[str, Any]], first: list[int], seconds: float) -> None:
    model.eval()
    probs = torch.cat([decision_probs(model, b, first, grad=False) for b in in_batches(prompts)])
    model.train()
    cells = []
    for kind in KINDS:
        idx = [i for i, p in enumerate(prompts) if p["kind"] == kind]
        if not idx:
            cells.append("-")
            continue
        flag = statistics.median(float(probs[i, 1]) for i in idx)
        right = sum(DECISIONS[int(probs[i].argmax())] == prompts[i]["expected"] for i in idx)
        cells.append(f"{flag:.3f} ({right}/{len(idx)})")
    right = sum(DECISIONS[int(probs[i].argmax())] == p["expected"] for i, p in enumerate(prompts))
    print(f"| {step} | {' | '.join(cells)} | {right}/{len(prompts)} | {seconds:.0f} |", flush=True)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="runs/review-sft", help="the reviewer to start from (alias or run folder)")
    ap.add_argument("--train", type=int, default=48, help="train orders (the objective)")
    ap.add_argument("--mix", default="safe=2,dose=1,interaction=1", help="the train orders' shares of each kind")
    ap.add_argument("--contrast", action="store_true",
                    help="train orders in contrast triples (review.contrast_orders: each dose-only order with two "
                         "safe twins that differ from it only in the dose, and as many interaction orders)")
    ap.add_argument("--optimizer", choices=("adam", "sgd"), default="adam",
                    help="adam (as agent RL trains) or plain gradient descent")
    ap.add_argument("--full", action="store_true", help="train every weight (as full fine-tuning does) instead of "
                                                                 "fresh LoRA adapters")
    ap.add_argument("--validation", type=int, default=40, help="validation orders (the report)")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--learning-rate", type=float, default=3e-4)
    ap.add_argument("--report-every", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    model, tokenizer = load_model(args.model)
    if is_lora(model):
        model = model.merge_and_unload()
    torch.manual_seed(0)
    if not args.full:
        model = attach_lora(model, LoraSettings())
    first = [tokenizer(d, add_special_tokens=False)["input_ids"][0] for d in DECISIONS]
    try:
        mix = parse_mix(args.mix)
    except ValueError as err:
        ap.error(str(err))
    orders = (contrast_orders(args.train, SPLIT_SEEDS["train"]) if args.contrast
              else mixed_orders(args.train, SPLIT_SEEDS["train"], mix))
    train = decision_prompts(orders, tokenizer)
    held = decision_prompts(make_orders(args.validation, SPLIT_SEEDS["validation"]), tokenizer)
    rewards = torch.tensor([p["rewards"] for p in train])  # (N, 3)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = (torch.optim.AdamW(params, lr=args.learning_rate, weight_decay=0.0) if args.optimizer == "adam"
                 else torch.optim.SGD(params, lr=args.learning_rate))
    shares = "contrast triples" if args.contrast else args.mix
    print(f"{args.model}: {len(train)} train orders ({shares}; the objective), {len(held)} validation orders "
          f"(report), {args.optimizer} lr {args.learning_rate}, {'every weight' if args.full else 'LoRA r 16'}\n")
    print("| step | safe: median P(flag) (right) | dose-only | interaction | right | s |\n|---|---|---|---|---|---|")
    start = time.perf_counter()
    report(0, model, held, first, 0.0)
    model.train()
    for step in range(1, args.steps + 1):
        optimizer.zero_grad(set_to_none=True)
        at = 0
        for batch in in_batches(train):  # micro-batches: the gradient of the mean, accumulated
            probs = decision_probs(model, batch, first, grad=True)  # (b, 3)
            (-(probs * rewards[at : at + len(batch)]).sum() / len(train)).backward()
            at += len(batch)
        optimizer.step()
        if step % args.report_every == 0 or step == args.steps:
            report(step, model, held, first, time.perf_counter() - start)


if __name__ == "__main__":
    main()
