"""The pharmacy reviewer as an agent RL target: its reward, its evaluation, and one RL step from the command line."""

import importlib
import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agentladder.agents import Runtime
from agentladder.cli import app
from agentladder.data.schema import ToolCall
from agentladder.models.providers import ScriptedProvider
from agentladder.train.agent_episodes import Episode, read_episodes

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pharmacy"


@pytest.fixture(scope="module")
def review():
    sys.path.insert(0, str(EXAMPLE))
    try:
        import evaluate_review
        import review

        yield review, evaluate_review
    finally:
        sys.path.remove(str(EXAMPLE))


def _example(name):
    """One of the example's scripts, imported from its folder (as ``python examples/pharmacy/NAME.py`` runs it)."""
    sys.path.insert(0, str(EXAMPLE))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(EXAMPLE))


def _order(decision, reasons):
    return {"id": "o", "expected": {"decision": decision, "reasons": reasons}}


def test_the_reward_grades_decisions_as_the_example_says(review):
    review, _ = review
    r = review.decision_reward
    assert r(_order("flag", ["dose"]), "flag") == 1.0
    assert r(_order("flag", ["dose"]), "approve") == review.DANGEROUS_APPROVAL_REWARD
    assert r(_order("flag", ["interaction"]), "escalate") == review.ESCALATION_REWARD
    assert r(_order("approve", []), "flag") == 0.0
    assert r(_order("approve", []), None) == 0.0
    episode = Episode("o", 0, 0, output={"decision": "approve", "reasons": []})
    assert review.episode_reward(_order("approve", []), episode) == 1.0


def _written(review, tmp_path, n, **shares):
    """The train orders ``write_orders`` writes with ``shares``, read back from the task file."""
    path = review.write_orders("train", n, tmp_path / "orders.jsonl", **shares)
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_balanced_task_files_hold_a_third_of_each_kind_of_order_from_the_split(review, tmp_path):
    review, _ = review
    from collections import Counter

    rows = _written(review, tmp_path, 10, balance=True)
    assert Counter(review.order_kind(r) for r in rows) == {"safe": 4, "dose": 3, "interaction": 3}
    assert len({r["id"] for r in rows}) == 10
    assert all(r["id"].startswith(f"order-{review.SPLIT_SEEDS['train']}-") for r in rows)
    assert review.order_kind(_order("flag", ["dose", "interaction"])) == "interaction"
    assert review.order_kind(_order("flag", ["dose"])) == "dose"
    assert review.order_kind(_order("approve", [])) == "safe"


def test_task_files_take_the_shares_a_mix_gives_each_kind_and_name_a_bad_mix(review, tmp_path):
    review, _ = review
    from collections import Counter

    mix = review.parse_mix("safe=2, dose=1,interaction=1")
    assert mix == {"safe": 2, "dose": 1, "interaction": 1}
    rows = _written(review, tmp_path, 10, mix=mix)
    assert Counter(review.order_kind(r) for r in rows) == {"safe": 5, "dose": 3, "interaction": 2}  # 5, 2.5, 2.5
    assert review.parse_mix("safe=1,dose=1") == {"safe": 1, "dose": 1, "interaction": 0}
    only = review.mixed_orders(6, review.SPLIT_SEEDS["train"], review.parse_mix("safe=1,dose=1"))
    assert Counter(review.order_kind(r) for r in only) == {"safe": 3, "dose": 3}
    for bad, says in (("safe=2,risky=1", "'risky=1' is not KIND=WEIGHT"), ("safe", "'safe' is not KIND=WEIGHT"),
                      ("dose=-1", "'dose=-1'"), ("safe=0,dose=0", "every weight is 0")):
        with pytest.raises(ValueError, match=says):
            review.parse_mix(bad)


def test_contrast_triples_pair_each_dose_only_order_with_safe_twins_that_differ_only_in_the_dose(review, tmp_path):
    review, _ = review
    import random
    from collections import Counter

    from agentladder.tasks.medication.formulary import is_dangerous
    from agentladder.tasks.medication.task import Directions

    rows = _written(review, tmp_path, 12, contrast=True)
    assert Counter(review.order_kind(r) for r in rows) == {"safe": 6, "dose": 3, "interaction": 3}
    assert len({r["id"] for r in rows}) == 12
    by_id = {r["id"]: r for r in rows}
    for row in rows:
        t = row["target"]
        Directions.model_validate(t)  # a twin's parse is a valid parse
        danger = is_dangerous(t["drug"], t["strength_mg"], t["dose_units"], t["doses_per_day"])
        assert ("dose" in row["expected"]["reasons"]) is danger  # the expected outcome follows the new dose
        if "-twin" not in row["id"]:
            continue
        base = by_id[row["id"].rsplit("-", 1)[0]]
        assert review.order_kind(base) == "dose" and review.order_kind(row) == "safe"
        assert row["patient"] == base["patient"]
        same = {k: v for k, v in t.items() if k not in ("dose_units", "doses_per_day")}
        assert same == {k: v for k, v in base["target"].items() if k not in ("dose_units", "doses_per_day")}
        assert (t["dose_units"], t["doses_per_day"]) != (base["target"]["dose_units"], base["target"]["doses_per_day"])
    from agentladder.agents import Runtime

    evaluate_review = _example("evaluate_review")  # the expert decides every twin as its expected outcome says
    runtime = Runtime(":memory:")
    try:
        graded = evaluate_review.review_orders(review.rule_reviewer(), rows, runtime=runtime)
    finally:
        runtime.shutdown()
    assert evaluate_review.review_metrics(graded)["decision_accuracy"] == 1.0
    interaction = next(r for r in rows if review.order_kind(r) == "interaction")
    dosed = review.dose_twin(interaction, random.Random(0), over_limit=True)
    assert dosed["expected"] == {"decision": "flag", "reasons": ["dose", "interaction"]}
    impossible = {**interaction, "target": {**interaction["target"], "drug": "not-in-formulary"}}
    assert review.dose_twin(impossible, random.Random(0), over_limit=True) is None
    with pytest.raises(SystemExit):
        review.main(["--split", "train", "--n", "4", "--out", str(tmp_path / "x.jsonl"), "--contrast", "--balance"])


def test_decision_odds_read_each_models_belief_at_the_recorded_decision_point(review, tmp_path):
    review, _ = review
    decision_odds = _example("decision_odds")
    from agentladder.models.loading import load_tokenizer
    from agentladder.models.providers.policy import ModelCall

    tok = load_tokenizer("tiny")
    orders = {"a": _order("flag", ["dose"]), "b": _order("approve", [])}
    orders["a"]["id"], orders["b"]["id"] = "a", "b"

    def episode(task, index, reply):
        prompt = tok("check results", add_special_tokens=False)["input_ids"]
        call = ModelCall("reviewer", [], [], prompt, tok(reply, add_special_tokens=False)["input_ids"], [], reply,
                         "stop", 0.0)
        return {"step": 1, "round": 1, "group": 0, "kept": True,
                "episode": Episode(task, index, 0, [call]).to_json()}

    log = tmp_path / "episodes.jsonl"
    rows = [episode("a", 0, '{"decision": "flag", "reasons": []}'), episode("a", 1, '{"decision": "approve"}'),
            episode("b", 0, '{"tool": "check_dose"}'), episode("b", 1, '{"decision": "approve"}'),
            episode("zz", 0, '{"decision": "flag"}')]
    log.write_text("".join(json.dumps(r) + "\n" for r in rows))
    prompts = decision_odds.decision_prompts(log, orders, tok)
    assert [(p["task"], p["kind"]) for p in prompts] == [("a", "dose"), ("b", "safe")]
    prefix = tok('{"decision": "', add_special_tokens=False)["input_ids"]
    assert prompts[0]["ids"] == tok("check results", add_special_tokens=False)["input_ids"] + prefix
    odds = decision_odds.decision_odds("tiny", prompts)
    assert len(odds) == 2 and all(set(o) == {"approve", "flag", "escalate"} for o in odds)
    assert all(0.0 < v < 1.0 for o in odds for v in o.values()) and all(sum(o.values()) <= 1.0 for o in odds)

    orders_file = tmp_path / "orders.jsonl"
    orders_file.write_text("".join(json.dumps(o) + "\n" for o in orders.values()))
    out = tmp_path / "odds.json"
    decision_odds.main(["--episodes", str(log), "--orders", str(orders_file), "--model", "tiny", "--out", str(out)])
    saved = json.loads(out.read_text())["tiny"]
    assert [r["kind"] for r in saved] == ["dose", "safe"] and saved[0]["flag"] == pytest.approx(odds[0]["flag"])
    orders_file.write_text("not json\n")
    with pytest.raises(SystemExit, match="orders.jsonl:1"):
        decision_odds.main(["--episodes", str(log), "--orders", str(orders_file), "--model", "tiny"])


def test_the_exact_decision_gradient_reads_the_experts_decision_point_and_steps(review, capsys):
    review, _ = review
    decision_gradient = _example("decision_gradient")
    import torch

    from agentladder.models.loading import load_model

    model, tok = load_model("tiny")
    orders = review.mixed_orders(6, review.SPLIT_SEEDS["train"], {"safe": 1, "dose": 1, "interaction": 1})
    prompts = decision_gradient.decision_prompts(orders, tok)
    mark = tok('{"decision": "', add_special_tokens=False)["input_ids"]
    assert [p["kind"] for p in prompts] == [review.order_kind(o) for o in orders]
    for p, order in zip(prompts, orders, strict=True):
        text = tok.decode(p["ids"])
        assert p["ids"][-len(mark):] == mark and '"over_limit"' in text  # both check results, then the decision
        assert p["rewards"] == [review.decision_reward(order, d) for d in ("approve", "flag", "escalate")]
        assert p["expected"] == order["expected"]["decision"]
    first = [tok(d, add_special_tokens=False)["input_ids"][0] for d in ("approve", "flag", "escalate")]
    model.eval()
    padded = decision_gradient.decision_probs(model, prompts, first, grad=False)  # right-padded rows
    alone = torch.cat([decision_gradient.decision_probs(model, [p], first, grad=False) for p in prompts])
    assert padded.shape == (6, 3) and torch.allclose(padded, alone, atol=1e-5)

    decision_gradient.main(["--model", "tiny", "--train", "4", "--validation", "4", "--steps", "1",
                            "--report-every", "1"])
    table = capsys.readouterr().out
    assert "| 0 |" in table and "| 1 |" in table and "4 train orders" in table
    decision_gradient.main(["--model", "tiny", "--train", "4", "--validation", "4", "--steps", "1",
                            "--report-every", "1", "--contrast", "--optimizer", "sgd", "--full"])
    table = capsys.readouterr().out
    assert "4 train orders (contrast triples" in table and "sgd lr" in table and "| 1 |" in table
    assert "every weight" in table
    with pytest.raises(SystemExit):
        decision_gradient.main(["--model", "tiny", "--mix", "safe=two"])
    assert "--mix" in capsys.readouterr().err


def test_decisions_by_step_count_each_steps_sampled_decisions_by_kind_of_order(review, tmp_path, capsys):
    review, _ = review
    decisions_by_step = _example("decisions_by_step")
    orders = {"a": _order("flag", ["dose"]), "b": _order("approve", []), "c": _order("flag", ["interaction"])}
    for key, order in orders.items():
        order["id"] = key

    def row(step, task, output):
        return {"step": step, "round": 1, "group": 0, "kept": True,
                "episode": Episode(task, 0, 0, output=output).to_json()}

    log = tmp_path / "episodes.jsonl"
    rows = [row(1, "a", {"decision": "approve"}), row(1, "a", {"decision": "flag"}), row(1, "a", None),
            row(1, "b", {"decision": "approve"}), row(2, "b", {"decision": "flag"}), row(2, "c", {"decision": "odd"}),
            row(2, "zz", {"decision": "flag"})]
    log.write_text("".join(json.dumps(r) + "\n" for r in rows))
    steps = decisions_by_step.decisions_by_step(log, orders)
    assert steps == {1: {"dose": {"approve": 1, "flag": 1, "none": 1}, "safe": {"approve": 1}},
                     2: {"safe": {"flag": 1}, "interaction": {"none": 1}}}

    orders_file = tmp_path / "orders.jsonl"
    orders_file.write_text("".join(json.dumps(o) + "\n" for o in orders.values()))
    decisions_by_step.main(["--episodes", str(log), "--orders", str(orders_file)])
    out = capsys.readouterr().out
    assert "1 / 1 / 0 / 1" in out and "0 / 1 / 0 / 0" in out and "0 / 0 / 0 / 1" in out
    log.write_text(json.dumps(rows[0]) + "\n{cut")
    with pytest.raises(SystemExit, match="episodes.jsonl:2"):
        decisions_by_step.main(["--episodes", str(log), "--orders", str(orders_file)])


def _scripted_reviewer(orders):
    """A reviewer that calls both checks with the order's parse (one bad call on the first order), then decides
    as expected except on the second order, which it escalates."""
    by_meds = {}

    def reply(messages, tools):
        request = json.loads(next(m.content for m in messages if m.role == "user"))
        p, meds = request["prescription"], request["current_medications"]
        order = next(o for o in orders if o["target"]["drug"] == p["drug"] and o["patient"]["current_medications"] == meds)
        done = sum(m.role == "tool" for m in messages)
        if done == 0:
            bad = order is orders[0] and order["id"] not in by_meds
            by_meds[order["id"]] = True
            if bad:
                return ToolCall(id="x", name="check_dose", arguments={"drug": p["drug"]})
            return [ToolCall(id="a", name="check_dose", arguments={k: p[k] for k in (
                        "drug", "strength_mg", "dose_units", "doses_per_day")}),
                    ToolCall(id="b", name="check_interactions",
                             arguments={"drug": p["drug"], "current_medications": meds})]
        if done == 1:
            return [ToolCall(id="a", name="check_dose", arguments={k: p[k] for k in (
                        "drug", "strength_mg", "dose_units", "doses_per_day")}),
                    ToolCall(id="b", name="check_interactions",
                             arguments={"drug": p["drug"], "current_medications": meds})]
        decision = "escalate" if order is orders[1] else order["expected"]["decision"]
        return json.dumps({"decision": decision, "reasons": []})

    return ScriptedProvider(reply)


def test_the_evaluation_reads_decisions_escalations_and_tool_calls(review):
    review_mod, evaluate_review = review
    from orders import make_orders

    orders = make_orders(4, review_mod.SPLIT_SEEDS["validation"])
    rows = evaluate_review.review_orders(_scripted_reviewer(orders), orders, runtime=Runtime(":memory:"))
    m = evaluate_review.review_metrics(rows)
    assert m["decision_accuracy"] == pytest.approx(3 / 4)
    assert m["escalation_rate"] == pytest.approx(1 / 4)
    assert m["tool_call_validity"] == pytest.approx(8 / 9)  # the first order's first call lacks arguments
    dangerous = [o for o in orders if o["expected"]["reasons"]]
    assert m["dangerous_recall"] == (1.0 if dangerous else None)


def test_one_rl_step_of_the_reviewer_from_the_command_line(review, tmp_path):
    review_mod, _ = review
    tasks = review_mod.write_orders("train", 2, tmp_path / "orders.jsonl")
    out = tmp_path / "run"
    result = CliRunner().invoke(app, [
        "train", "rl", "--agent", f"{EXAMPLE / 'review.py'}:build_review", "--tasks", str(tasks), "--preset", "dapo",
        "--model", "tiny", "--group-size", "2", "--batch-size", "1", "--max-steps", "1", "--max-new-tokens", "16",
        "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    logged = read_episodes(out / "episodes.jsonl")
    assert logged and all(e.calls for _, e in logged)  # every episode reached the reviewer's policy
    assert all(e.reward in (0.0, 1.0, review_mod.ESCALATION_REWARD, review_mod.DANGEROUS_APPROVAL_REWARD)
               for _, e in logged)
    assert (out / "traces.db").exists() and (out / "metrics.jsonl").exists()
    meta = json.loads((out / "agentladder.json").read_text())
    assert meta["agent"].endswith("review.py:build_review")
    assert {c.agent for _, e in logged for c in e.calls} == {"reviewer"}  # labelled by the calling agent


def test_the_shipped_rl_config_is_valid():
    from agentladder.train.rl_config import load_rl_config

    config = load_rl_config(EXAMPLE / "review-rl.yaml")
    assert config.agent == "examples/pharmacy/review.py:build_review" and config.failed_episode_reward == -0.5
    kept = load_rl_config(EXAMPLE / "review-rl-coin.yaml")
    assert kept.agent == config.agent and kept.stratify_by == "expected.decision"
    assert kept.concurrent_episodes and kept.kl_coef == 0.1 and kept.kl_in == "loss" and not kept.lora


def test_the_rule_reviewer_decides_every_order_and_its_runs_export_as_sft_rows(review, tmp_path):
    review_mod, evaluate_review = review
    from orders import make_orders

    from agentladder.agents.export import export_traces

    orders = make_orders(12, review_mod.SPLIT_SEEDS["validation"])
    runtime = Runtime(":memory:")
    rows = evaluate_review.review_orders(review_mod.rule_reviewer(), orders, runtime=runtime)
    m = evaluate_review.review_metrics(rows)
    assert m["decision_accuracy"] == 1.0 and m["tool_call_validity"] == 1.0 and m["escalation_rate"] == 0.0
    counts = export_traces(runtime.store, "sft", tmp_path / "sft.jsonl", where="agent == reviewer")
    assert counts["written"] == 12


def test_the_expert_demonstrations_show_the_reviewer_the_prompt_it_runs_with(review, tmp_path):
    review_demos = _example("review_demos")
    from agentladder.data import read_jsonl
    from agentladder.data.schema import Conversation

    result = review_demos.reviewer_demos(6, tmp_path / "sft.jsonl")
    assert result["written"] == 6 and result["decision_accuracy"] == 1.0
    convs = read_jsonl(tmp_path / "sft.jsonl", Conversation)
    for conv in convs:
        system = conv.messages[0].content
        assert system.startswith("You review pharmacy orders") and "check_interactions(" in system
        replies = [m for m in conv.messages if m.role == "assistant"]
        # one tool call a turn (a local model stops at its first JSON object), then the decision
        assert [len(m.tool_calls or []) for m in replies] == [1, 1, 0]
        assert [m.tool_calls[0].name for m in replies[:2]] == ["check_dose", "check_interactions"]


def test_coin_demonstrations_keep_the_experts_tool_calls_and_flip_a_seeded_coin_for_the_decision(review, tmp_path):
    review, _ = review
    review_demos = _example("review_demos")
    from collections import Counter

    from agentladder.data import read_jsonl
    from agentladder.data.schema import Conversation

    review_demos.reviewer_demos(24, tmp_path / "expert.jsonl")
    result = review_demos.reviewer_demos(24, tmp_path / "coin.jsonl", decide="coin")
    assert result["written"] == 24 and result["tool_call_validity"] == 1.0 and result["failed"] == 0.0
    expert = read_jsonl(tmp_path / "expert.jsonl", Conversation)
    coin = read_jsonl(tmp_path / "coin.jsonl", Conversation)
    answers = []
    for e, c in zip(expert, coin, strict=True):
        assert e.messages[:-1] == c.messages[:-1]  # the same prompt, tool calls and tool results
        answer = json.loads(c.messages[-1].content)
        assert answer["reasons"] == [] and answer["decision"] in ("approve", "flag")
        answers.append((answer["decision"], json.loads(e.messages[-1].content)["decision"]))
    decisions = Counter(a for a, _ in answers)
    assert decisions["approve"] >= 6 and decisions["flag"] >= 6  # a coin, not a rule
    assert 0 < sum(a == b for a, b in answers) < len(answers)  # it agrees with the expert only by chance
    again = review_demos.reviewer_demos(24, tmp_path / "again.jsonl", decide="coin")
    assert again["decision_accuracy"] == result["decision_accuracy"]  # a rerun flips the same coins
    assert [c.messages for c in read_jsonl(tmp_path / "again.jsonl", Conversation)] == [c.messages for c in coin]
    with pytest.raises(ValueError, match="decide must be"):
        review.rule_reviewer(decide="vote")
