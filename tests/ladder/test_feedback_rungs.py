"""Ladder rungs of kind reward_model and judge: their own gate on held-out feedback, an RL rung rewarded by
them, the registry's lineage, a rejected judge refused as a reward, and config errors with their place."""

import json
import random

import pytest

from agentladder.errors import ConfigError
from agentladder.ladder import Registry, climb, parse_ladder
from agentladder.ladder.config import Rung
from agentladder.ladder.feedback_rungs import feedback_verdict

RUBRIC = "Answers in lower case.\n5: all lower case\n4: mostly\n3: mixed\n2: mostly upper\n1: all upper case\n"


def _files(tmp_path):
    rng = random.Random(0)
    pairs = []
    for i in range(64):  # the toy preference: lower case over the same text in capitals
        text = "".join(rng.choice("abcdefghij ") for _ in range(12))
        pairs.append({"prompt": f"write {i}", "chosen": text, "rejected": text.upper()})
    (tmp_path / "prefs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in pairs))
    grades = [{"prompt": f"say {i}", "completion": "abc def" if i % 2 else "ABC DEF", "grade": 5 if i % 2 else 1,
               "reasons": "calm" if i % 2 else "loud"} for i in range(16)]
    (tmp_path / "grades.jsonl").write_text("".join(json.dumps(r) + "\n" for r in grades))
    (tmp_path / "rubric.md").write_text(RUBRIC)


def _ladder(tmp_path, extra=()):
    loop = {"tensorboard": False, "save_every": 100}
    return parse_ladder({
        "name": "fb", "task": "medication-directions", "base_model": "tiny", "out_dir": str(tmp_path / "climb"),
        "eval": {"rows": 2, "validation_rows": 2, "shifted_rows": 0, "batch_size": 2, "max_new_tokens": 4},
        "gate": {"target": 0.9},
        "rungs": [
            {"name": "baseline", "kind": "baseline"},
            {"name": "sft", "kind": "sft", "data": {"source": "generate", "rows": 4},
             "train": {"lora": True, "max_steps": 1, "batch_size": 2, "max_length": 4096, **loop}},
            {"name": "rm", "kind": "reward_model", "data": {"source": "file", "path": str(tmp_path / "prefs.jsonl")},
             "train": {"max_steps": 12, "learning_rate": 1e-3, "validation_share": 0.25, "normalisation_rows": 16,
                       **loop},
             "accept": {"metric": "accuracy", "min": 0.9}},
            {"name": "judge", "kind": "judge", "start": "base",
             "data": {"source": "file", "path": str(tmp_path / "grades.jsonl")},
             "train": {"rubric": str(tmp_path / "rubric.md"), "max_steps": 1, "batch_size": 4, "max_length": 4096,
                       "validation_share": 0.25, "max_new_tokens": 8, **loop}},
            {"name": "ppo", "kind": "rl", "data": {"source": "generate", "rows": 4},
             "train": {"preset": "ppo", "max_steps": 1, "batch_size": 2, "group_size": 2, "max_new_tokens": 4,
                       "rewards": [{"type": "reward_model", "rung": "rm"}], **loop}},
            *extra,
        ],
    })


def test_a_reward_model_rung_gates_on_held_out_pairs_and_feeds_a_later_rl_rung(tmp_path):
    _files(tmp_path)
    reg = tmp_path / "r.db"
    result = climb(_ladder(tmp_path), registry=reg, progress=False)
    by = {r.name: r for r in result.rungs}
    rm, judge, ppo = by["rm"], by["judge"], by["ppo"]
    assert rm.metrics["pairs.accuracy"]["value"] >= 0.9 and rm.metrics["pairs.accuracy"]["n"] == 16
    assert rm.verdict["accepted"] and not rm.kept and rm.verdict["reason"].startswith("accepted")
    # The tiny judge writes no verdict that parses: no kappa, so its gate rejects it.
    assert judge.metrics["judge.parsed"]["value"] == 0 and not judge.verdict["accepted"]
    assert result.champion.name in ("sft", "ppo") and rm.name != result.champion.name
    assert ppo.notes["rewards_from"] == [rm.version]
    run_config = json.loads((tmp_path / "climb" / "05-ppo" / "run" / "train_config.json").read_text())
    assert run_config["rewards"] == [{"type": "reward_model", "path": rm.model}]
    with Registry(reg) as registry:
        assert [v.rung for v in registry.lineage(rm.version)] == ["baseline", "sft", "rm"]
        assert registry.get(rm.version).status == "accepted" and registry.get(judge.version).status == "rejected"
        assert registry.get(rm.version).artifact == "reward_model"
        assert [v.rung for v in registry.lineage(ppo.version)] == ["baseline", "sft", "ppo"]
    table = (tmp_path / "climb" / "ladder.md").read_text()
    assert "accepted (reward)" in table

    # A later rung may not take its reward from the judge its gate rejected (the finished rungs are replayed).
    bad = {"name": "ppo2", "kind": "rl", "data": {"source": "generate", "rows": 4},
           "train": {"preset": "ppo", "max_steps": 1, "batch_size": 2, "group_size": 2, "max_new_tokens": 4,
                     "rewards": [{"type": "reward_model", "rung": "rm"}],
                     "gold_rewards": [{"type": "judge", "rung": "judge"}]}}
    with pytest.raises(ConfigError, match="names rung 'judge', which its gate rejected"):
        climb(_ladder(tmp_path, [bad]), registry=reg, progress=False)


def test_feedback_verdicts_by_hand():
    rm = Rung(name="rm", kind="reward_model", data={"source": "file", "path": "x"})
    metrics, verdict = feedback_verdict(rm, {"pairs": 10, "accuracy": 0.55, "ece": 0.1})
    assert metrics["pairs.accuracy"] == {"value": 0.55, "n": 10} and not verdict["accepted"]
    strict_ece = Rung(name="rm", kind="reward_model", data={"source": "file", "path": "x"},
                      accept={"metric": "ece", "min": 0.2})
    assert feedback_verdict(strict_ece, {"pairs": 10, "accuracy": 0.55, "ece": 0.1})[1]["accepted"]  # ece: at most
    judge = Rung(name="j", kind="judge", data={"source": "file", "path": "x"}, train={"rubric": "r.md"})
    figures = {"tuned": {"rows": 8, "quadratic_kappa": 0.5}, "untuned": {"rows": 8, "quadratic_kappa": 0.6}}
    metrics, verdict = feedback_verdict(judge, figures)
    assert metrics["untuned.quadratic_kappa"]["value"] == 0.6
    assert not verdict["accepted"] and "better than the tuned judge" in verdict["reason"]
    figures["untuned"]["quadratic_kappa"] = 0.1
    assert feedback_verdict(judge, figures)[1]["accepted"]
    with pytest.raises(ConfigError, match="accept.metric 'f1' is not one of its figures"):
        feedback_verdict(Rung(name="rm", kind="reward_model", data={"source": "file", "path": "x"},
                              accept={"metric": "f1"}), {"pairs": 3, "accuracy": 1.0})


BASE = [{"name": "baseline", "kind": "baseline"},
        {"name": "sft", "kind": "sft", "data": {"source": "generate", "rows": 4}}]


@pytest.mark.parametrize("rungs, expected", [
    ([{"name": "rm", "kind": "reward_model", "data": {"source": "file", "path": "p"}}, *BASE],
     r"rungs\[0\]\.kind: the first rung makes the model"),
    ([*BASE, {"name": "rl", "kind": "rl", "data": {"source": "generate", "rows": 2},
              "train": {"rewards": [{"type": "reward_model", "rung": "nope"}]}}],
     r"rungs\[2\]\.train\.rewards\[0\]\.rung: 'nope' is not an earlier reward_model rung"),
    ([*BASE, {"name": "j", "kind": "judge", "data": {"source": "file", "path": "g"}}],
     r"rungs\[2\]\.train\.rubric: a judge rung needs its rubric file"),
    ([*BASE, {"name": "rm", "kind": "reward_model", "data": {"source": "generate", "rows": 2}}],
     r"data.source 'generate' does not fit a reward_model rung"),
    ([*BASE, {"name": "rm", "kind": "reward_model", "data": {"source": "file", "path": "p"}},
      {"name": "dpo", "kind": "dpo", "start": "rm", "data": {"source": "pairs", "rows": 2}}],
     r"rungs\[3\]\.start: 'rm' makes a learned reward"),
    ([*BASE[:1], {"name": "sft", "kind": "sft", "data": {"source": "generate", "rows": 4}, "accept": {"min": 0.5}}],
     r"accept applies to reward_model and judge rungs"),
])
def test_feedback_rung_config_errors_name_their_place(rungs, expected):
    with pytest.raises(ValueError, match=expected):
        parse_ladder({"name": "x", "gate": {"target": 0.9}, "rungs": rungs})
