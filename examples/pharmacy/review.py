"""The order reviewer as an RL target: a parser (fixed) reads the prescription, the reviewer (trained) checks and decides.

    order ──▶ parse (fixed: an SFT parser, or the order's own parse) ──▶ review (the policy: tools, then a decision)

``build_review(policy)`` is the builder agent RL takes (``agentladder train rl --agent
examples/pharmacy/review.py:build_review``): the reviewer agent runs on ``policy`` and
calls ``check_dose`` and ``check_interactions`` (and ``check_formulary``) itself before it
answers ``{"decision": "approve" | "flag" | "escalate", "reasons": [...]}``. The parser is
another agent that stays fixed: ``PHARMACY_PARSER`` names its model (an alias or a run
folder; ``oracle``, the default, hands the reviewer the order's correct parse, which
isolates what the reviewer itself learns).

``episode_reward(order, episode)`` is the graded outcome: 1 for the right decision,
``ESCALATION_REWARD`` for escalating an order the tools could decide (a pharmacist's time),
0 for flagging a safe order, ``DANGEROUS_APPROVAL_REWARD`` for approving a dangerous one
(a daily dose over the limit, or an interaction to flag). ``turn_reward(call, episode)``
pays a little for each tool call that names a real tool with arguments that validate.

Write the task files with ``python examples/pharmacy/review.py --split train --n 200 --out orders-train.jsonl``
(``train`` / ``validation`` / ``test`` draw disjoint seeds; ``--balance``: a third each of safe, dose-only
and interaction orders; ``--mix safe=2,dose=1,interaction=1``: the shares you give; ``--contrast``: each dose-only
order with two safe twins that differ from it only in the dose, and as many interaction orders). The formulary limits are illustrative
for a synthetic benchmark, not clinical guidance.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from orders import make_orders  # noqa: E402
from pharmacy import Decision, Order, make_parser, pick_tools  # noqa: E402
from tools import FLAG_SEVERITIES  # noqa: E402

from agentladder.agents import Agent, ToolArgumentError, Workflow  # noqa: E402
from agentladder.data.schema import ToolCall  # noqa: E402
from agentladder.models.providers import ScriptedProvider  # noqa: E402
from agentladder.tasks.medication.formulary import is_dangerous  # noqa: E402
from agentladder.tasks.medication.task import Directions  # noqa: E402
from agentladder.train.agent_episodes import load_tasks  # noqa: E402

SPLIT_SEEDS = {"train": 100, "validation": 200, "test": 300}
"""Order seeds per split (the orders of one split never appear in another)."""
ESCALATION_REWARD = 0.25
DANGEROUS_APPROVAL_REWARD = -1.0
TOOL_CALL_REWARD = 0.1
TOOL_NAMES = ("check_formulary", "check_dose", "check_interactions")

REVIEW_PROMPT = (
    "You review pharmacy orders. You get the parsed prescription and the patient's current medications. "
    "Call check_dose with the drug, strength_mg, dose_units and doses_per_day, and check_interactions with the "
    "drug and the current medications. Then answer with only a JSON object: "
    '{"decision": "approve" | "flag" | "escalate", "reasons": [...]}. Flag a daily dose over the limit or an '
    "interaction of moderate or greater severity; approve otherwise; escalate only when the checks cannot decide.")


def make_review_agent(model: Any, *, max_new_tokens: int = 96, max_turns: int = 4) -> Agent:
    """The reviewer: tools in process, a typed decision, one correction of an invalid answer."""
    return Agent(model, system=REVIEW_PROMPT, tools=list(pick_tools(None).values()), output=Decision,
                 output_instructions=False, name="reviewer", max_new_tokens=max_new_tokens, max_turns=max_turns,
                 max_retries=1)


def review_request(parsed: Directions, medications: list[str]) -> str:
    """What the reviewer is asked: the parsed prescription and the patient's current medications, as JSON."""
    return json.dumps({"prescription": parsed.model_dump(mode="json"), "current_medications": medications})


def build_review(policy: Any, *, parser: str | None = None, max_new_tokens: int = 96) -> Workflow:
    """Parse (fixed) then review (``policy``); ``parser``: a model spec, or ``oracle`` (the order's parse)."""
    spec = parser or os.environ.get("PHARMACY_PARSER", "oracle")
    reviewer = make_review_agent(policy, max_new_tokens=max_new_tokens)
    parse_agent = None if spec == "oracle" else make_parser(spec)

    async def parse(order: Any) -> Directions:
        if parse_agent is None:
            return Directions.model_validate(order["target"])
        return (await parse_agent.arun(Order.model_validate(order).prescription)).output

    async def review(parsed: Directions, ctx) -> Decision:
        return (await reviewer.arun(review_request(parsed, ctx.input["patient"]["current_medications"]))).output

    return Workflow("order-review-rl").step("parse", parse).step("review", review, after="parse")


def expected_decision(order: dict[str, Any]) -> str:
    return order["expected"]["decision"]


def orders_by_id(path: str | Path) -> dict[str, dict[str, Any]]:
    """A task file's orders by task id, read as agent RL reads it (so the ids are its episodes' task ids)."""
    return {task.id: task.row for task in load_tasks(path)}


def dangerous(order: dict[str, Any]) -> bool:
    """An order whose approval would harm: a dose over the limit or an interaction to flag."""
    return bool(order["expected"]["reasons"])


def decision_reward(order: dict[str, Any], decision: str | None) -> float:
    """The graded outcome of one decision (see the module docstring); None (no decision) scores 0."""
    if decision == expected_decision(order):
        return 1.0
    if decision == "escalate":
        return ESCALATION_REWARD
    if decision == "approve" and dangerous(order):
        return DANGEROUS_APPROVAL_REWARD
    return 0.0


def episode_decision(episode: Any) -> str | None:
    """The decision a run ended with (the workflow's output is the review step's), or None."""
    output = episode.output
    return output.get("decision") if isinstance(output, dict) else None


def episode_reward(order: dict[str, Any], episode: Any) -> float:
    """Agent RL's reward: the graded decision the run ended with."""
    return decision_reward(order, episode_decision(episode))


def valid_tool_calls(calls: list[Any]) -> tuple[int, int]:
    """``(valid, total)`` tool calls in the reviewer's replies: a real tool with arguments that validate."""
    tools = pick_tools(None)
    valid = total = 0
    for call in calls:
        for tc in (call.tool_calls or []):
            total += 1
            tool = tools.get(tc.name)
            if tool is None:
                continue
            try:
                tool.validate(tc.arguments)
            except ToolArgumentError:
                continue
            valid += 1
    return valid, total


def turn_reward(call: Any, episode: Any) -> float:
    """A small reward per valid tool call in this model call (the tool-call validity figure, as a turn reward)."""
    if call.reply is None:
        return 0.0
    valid, _ = valid_tool_calls([call.reply])
    return TOOL_CALL_REWARD * valid


def rule_reviewer(*, decide: str = "checks", seed: int = 0) -> ScriptedProvider:
    """A scripted expert reviewer: it calls both checks with the parse it is given (one a turn), then decides from their results
    (flag a dose over the limit or an interaction to flag, escalate a drug the formulary does not know, approve
    otherwise). Its runs, stored by the runtime, are demonstrations: ``agentladder traces export --to sft``.

    ``decide="coin"``: the same tool calls, then ``approve`` or ``flag`` by a coin flip (seeded by ``seed`` and the
    request, so a rerun flips the same way) with no reasons: demonstrations of the protocol that teach nothing of
    the decision, for a reviewer that is to learn its decisions from the reward alone."""
    if decide not in ("checks", "coin"):
        raise ValueError(f"decide must be 'checks' or 'coin', not {decide!r}")

    def reply(messages, tools):
        results = [json.loads(m.content or "null") for m in messages if m.role == "tool"]
        request_text = next(m.content for m in reversed(messages) if m.role == "user")
        if len(results) < 2:  # one call a turn: a local model's reply stops at its first JSON object
            request = json.loads(request_text)
            p, meds = request["prescription"], request["current_medications"]
            if not results:
                return [ToolCall(id="dose", name="check_dose", arguments={k: p[k] for k in (
                    "drug", "strength_mg", "dose_units", "doses_per_day")})]
            return [ToolCall(id="interactions", name="check_interactions",
                             arguments={"drug": p["drug"], "current_medications": meds})]
        if decide == "coin":
            coin = random.Random(f"pharmacy-coin:{seed}:{request_text}").random() < 0.5
            return json.dumps({"decision": "flag" if coin else "approve", "reasons": []})
        dose = next(r for r in results if isinstance(r, dict))
        found = next((r for r in results if isinstance(r, list)), [])
        if dose.get("over_limit") is None:
            return json.dumps({"decision": "escalate", "reasons": ["drug not in the formulary"]})
        reasons = [f"dose: {dose['daily_mg']:g} mg/day exceeds the {dose['max_daily_mg']:g} mg limit"] \
            if dose["over_limit"] else []
        reasons += [f"interaction: {i['drug']} + {i['other']} ({i['severity']})" for i in found
                    if i["severity"] in FLAG_SEVERITIES]
        return json.dumps({"decision": "flag" if reasons else "approve", "reasons": reasons})

    return ScriptedProvider(reply, name="rule-reviewer" if decide == "checks" else "protocol-reviewer")


def order_kind(order: dict[str, Any]) -> str:
    """``safe``, ``dose`` (dangerous by its dose alone) or ``interaction`` (an interaction to flag, with or without a dose)."""
    reasons = order["expected"]["reasons"]
    return "interaction" if "interaction" in reasons else "dose" if reasons else "safe"


KINDS = ("safe", "dose", "interaction")


def parse_mix(text: str) -> dict[str, int]:
    """``"safe=2,dose=1,interaction=1"`` -> ``{"safe": 2, "dose": 1, "interaction": 1}`` (kinds left out get 0)."""
    mix = dict.fromkeys(KINDS, 0)
    for part in text.split(","):
        kind, sep, weight = part.strip().partition("=")
        if kind not in mix or not sep or not weight.strip().isdigit():
            raise ValueError(f"--mix: {part.strip()!r} is not KIND=WEIGHT with KIND one of {', '.join(KINDS)} "
                             "and WEIGHT a whole number")
        mix[kind] = int(weight)
    if not any(mix.values()):
        raise ValueError("--mix: every weight is 0")
    return mix


def mixed_orders(n: int, seed: int, mix: dict[str, int] | None = None) -> list[dict[str, Any]]:
    """``n`` orders of the split in the shares ``mix`` gives each kind (:func:`order_kind`; equal shares
    by default), in the order they were drawn.

    On the generator's own mix a dose-only order is rarer than one in five, and an RL run of a
    few dozen tasks sees only a handful: too few to learn the one feature (the dose check's
    ``over_limit``) that tells it from a safe order. Equal shares fix that but pay a reviewer that
    flags everything (2/3) more than one that approves every dose-only order (1/3), and on
    four tasks a step that is where RL goes; two safe orders to each dose-only one
    (``safe=2,dose=1,...``) pays both the same, so only telling them apart earns more."""
    mix = mix or dict.fromkeys(KINDS, 1)
    total = sum(mix.values())
    shares = {k: n * mix.get(k, 0) / total for k in KINDS}
    quota = {k: int(shares[k]) for k in KINDS}
    for k in sorted(KINDS, key=lambda k: shares[k] - quota[k], reverse=True)[:n - sum(quota.values())]:
        quota[k] += 1  # the largest remainders take what rounding down left
    draw = max(4 * n, 50)
    while True:
        pool = make_orders(draw, seed)
        if all(sum(order_kind(o) == k for o in pool) >= q for k, q in quota.items()):
            break
        draw *= 2
    picked, taken = [], dict.fromkeys(KINDS, 0)
    for order in pool:
        kind = order_kind(order)
        if taken[kind] < quota[kind]:
            picked.append(order)
            taken[kind] += 1
    return picked


TWIN_DOSE_UNITS = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0)
TWIN_DOSES_PER_DAY = (1.0, 2.0, 3.0, 4.0, 6.0)
"""The dose grid a twin's direction is drawn from: units per dose x doses a day."""


def dose_twin(order: dict[str, Any], rng: random.Random, *, over_limit: bool, tag: str = "twin") -> dict[str, Any] | None:
    """The same order (drug, strength, patient, duration) with another dose on the grid, over the formulary's
    daily limit or not as ``over_limit`` says; its expected outcome recomputed. ``None`` when no grid dose fits.

    A twin differs from its order only in the dose, so the reviewer's two runs differ only in the
    dose check's result: a pair whose decisions differ names the one feature that decides. Its
    prescription text is rewritten from the new direction (plain wording: twins are for the
    reviewer with the order's own parse, not for a parser)."""
    t = order["target"]
    fits = [(u, n) for u in TWIN_DOSE_UNITS for n in TWIN_DOSES_PER_DAY
            if (u, n) != (t["dose_units"], t["doses_per_day"])
            and is_dangerous(t["drug"], t["strength_mg"], u, n) is over_limit]
    if not fits:
        return None
    units, per_day = rng.choice(fits)
    target = {**t, "dose_units": units, "doses_per_day": per_day}
    reasons = (["dose"] if over_limit else []) + [r for r in order["expected"]["reasons"] if r == "interaction"]
    text = (f"{t['drug']} {t['strength_mg']:g} mg: take {units:g} unit(s) {per_day:g} time(s) a day"
            + (" as needed" if t["as_needed"] else "")
            + (f" for {t['duration_days']} days" if t["duration_days"] else ""))
    return {**order, "id": f"{order['id']}-{tag}", "prescription": text, "target": target,
            "expected": {"decision": "flag" if reasons else "approve", "reasons": reasons}}


def contrast_orders(n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` orders in contrast triples: each dose-only order of the split followed by two safe twins
    (:func:`dose_twin`), and as many interaction orders as triples, in the order drawn.

    Safe, dose-only and interaction orders come 2:1:1, the mix that pays a reviewer that
    flags everything and one that approves every dose-only order the same; here the safe
    orders are the dose-only ones with a dose within the limit, so what tells a triple's
    decisions apart is the dose check alone."""
    triples = -(-n // 4)
    base = mixed_orders(2 * triples, seed, {"safe": 0, "dose": 1, "interaction": 1})
    rng = random.Random(f"pharmacy-twins:{seed}")
    out: list[dict[str, Any]] = []
    for order in base:
        out.append(order)
        if order_kind(order) == "dose":
            for j in (1, 2):
                twin = dose_twin(order, rng, over_limit=False, tag=f"twin{j}")
                if twin is None:
                    raise ValueError(f"order {order['id']}: no dose on the twin grid is within the limit")
                out.append(twin)
    return out[:n]


def write_orders(split: str, n: int, out: str | Path, *, balance: bool = False,
                 mix: dict[str, int] | None = None, contrast: bool = False) -> Path:
    """The split's orders as task rows: the generator's own mix, equal shares (``balance``), ``mix``, or
    contrast triples (``contrast``: :func:`contrast_orders`)."""
    if contrast:
        rows = contrast_orders(n, SPLIT_SEEDS[split])
    elif balance or mix:
        rows = mixed_orders(n, SPLIT_SEEDS[split], mix)
    else:
        rows = make_orders(n, SPLIT_SEEDS[split])
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Write pharmacy orders as agent RL task rows.")
    ap.add_argument("--split", choices=list(SPLIT_SEEDS), required=True)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--out", required=True)
    ap.add_argument("--balance", action="store_true",
                    help="a third each of safe orders, orders dangerous by dose alone, and orders with an interaction")
    ap.add_argument("--mix", metavar="KIND=W,...",
                    help="the share of each kind, e.g. safe=2,dose=1,interaction=1 (kinds: safe, dose, interaction)")
    ap.add_argument("--contrast", action="store_true",
                    help="contrast triples: each dose-only order with two safe twins (the same order at a dose "
                         "within the limit), and as many interaction orders")
    args = ap.parse_args(argv)
    if args.contrast and (args.balance or args.mix):
        ap.error("--contrast sets the mix itself: leave out --balance and --mix")
    try:
        mix = parse_mix(args.mix) if args.mix else None
    except ValueError as err:
        ap.error(str(err))
    print(write_orders(args.split, args.n, args.out, balance=args.balance, mix=mix, contrast=args.contrast))


if __name__ == "__main__":
    main()
