"""The climb with recorded models: gates end it, rejected rungs leave the champion, a killed climb resumes.

Each rung's "model" answers the held-out rows from a script: the first ``accuracy x rows`` rows
with the reference answer, the rest with nothing, so the exact match of every rung is known.
"""

import json

import pytest

from agentladder.evals import ScriptedProvider
from agentladder.ladder import Registry, Trained, climb, parse_ladder
from agentladder.tasks import get_task

ROWS = 20


def _ladder(tmp_path, target=0.9, min_gain=0.0, **gate):
    return parse_ladder({
        "name": "med", "task": "medication-directions", "base_model": "tiny", "out_dir": str(tmp_path / "climb"),
        "eval": {"rows": ROWS},
        "gate": {"target": target, "min_gain": min_gain, **gate},
        "rungs": [
            {"name": "baseline", "kind": "baseline", "shots": 3},
            {"name": "sft", "kind": "sft", "data": {"source": "generate", "rows": 8}, "train": {"max_steps": 1}},
            {"name": "dpo", "kind": "dpo", "data": {"source": "pairs", "rows": 4}, "train": {"max_steps": 1}},
            {"name": "rl", "kind": "rl", "data": {"source": "generate", "rows": 4}, "train": {"max_steps": 1}},
        ],
    })


def _answers(accuracy: float):
    task = get_task("medication-directions")
    rows = task.make("test", ROWS, 0)
    assert len({r.input for r in rows}) == ROWS
    right = {r.input: task.target_text(r) for r in rows[: round(accuracy * ROWS)]}
    return lambda prompt: right.get(prompt[-1].content, "I cannot tell.")


def scripted(accuracies: dict[str, float], calls: list, fail_once: set | None = None):
    """Runners that record (rung, start model) and hand back a scripted model of the given accuracy."""
    fail_once = fail_once if fail_once is not None else set()

    def runner(ctx):
        calls.append((ctx.rung.name, ctx.start_model))
        if ctx.rung.name in fail_once:
            fail_once.discard(ctx.rung.name)
            raise KeyboardInterrupt
        name = f"model-{ctx.rung.name}"
        return Trained(model=name, artifact="base" if ctx.rung.kind == "baseline" else "full",
                       provider=ScriptedProvider(_answers(accuracies[ctx.rung.name]), name=name),
                       examples=10, tokens=1000, train_seconds=1.5)

    return {k: runner for k in ("baseline", "sft", "dpo", "rl")}


def test_the_climb_stops_at_the_first_rung_that_meets_the_target(tmp_path):
    calls = []
    result = climb(_ladder(tmp_path), registry=tmp_path / "r.db", progress=False,
                   runners=scripted({"baseline": 0.1, "sft": 0.5, "dpo": 0.9, "rl": 1.0}, calls))
    assert [c[0] for c in calls] == ["baseline", "sft", "dpo"]  # rl never runs
    assert result.target_met and result.champion.name == "dpo"
    assert [r.value("exact_match") for r in result.rungs] == [0.1, 0.5, 0.9]
    assert calls[1][1] == "model-baseline" and calls[2][1] == "model-sft"  # each rung starts from the champion
    md = (tmp_path / "climb" / "ladder.md").read_text()
    assert "| dpo | dpo | 0.900 [" in md and "+0.400" in md and "kept, target met" in md
    assert (tmp_path / "climb" / "ladder.png").stat().st_size > 0
    report = json.loads((tmp_path / "climb" / "ladder.json").read_text())
    assert report["champion"] == result.champion.version and report["target_met"] is True


def test_a_worse_rung_is_rejected_and_the_next_starts_from_the_champion(tmp_path):
    calls = []
    result = climb(_ladder(tmp_path, target=0.95, min_gain=0.05), registry=tmp_path / "r.db", progress=False,
                   runners=scripted({"baseline": 0.0, "sft": 0.6, "dpo": 0.6, "rl": 0.8}, calls))
    assert [r.kept for r in result.rungs] == [True, True, False, True]
    assert calls[3] == ("rl", "model-sft")  # dpo gained 0 < 0.05: rl climbs from sft
    assert not result.target_met and result.champion.name == "rl"
    kept = [r.value("exact_match") for r in result.rungs if r.kept]
    assert kept == sorted(kept)  # the kept models never get worse
    with Registry(tmp_path / "r.db") as reg:
        assert [v.rung for v in reg.lineage("med/rl")] == ["baseline", "sft", "rl"]
        assert reg.get("med/dpo").status == "rejected" and reg.get("med/dpo").parent == reg.get("med/sft").id
        assert reg.get("med/baseline").notes["shots"] == 3 and reg.get("med/sft").notes["shots"] == 0


def test_stop_on_stall_ends_the_climb_at_the_first_rejected_rung(tmp_path):
    calls = []
    result = climb(_ladder(tmp_path, target=0.95, stop_on_stall=True), registry=tmp_path / "r.db", progress=False,
                   runners=scripted({"baseline": 0.3, "sft": 0.2, "dpo": 0.9, "rl": 1.0}, calls))
    assert [c[0] for c in calls] == ["baseline", "sft"] and result.champion.name == "baseline"


def test_a_killed_climb_resumes_at_the_rung_it_was_on(tmp_path):
    acc = {"baseline": 0.0, "sft": 0.5, "dpo": 0.7, "rl": 0.95}
    calls = []
    with pytest.raises(KeyboardInterrupt):
        climb(_ladder(tmp_path), registry=tmp_path / "r.db", progress=False,
              runners=scripted(acc, calls, fail_once={"dpo"}))
    state = json.loads((tmp_path / "climb" / "ladder_state.json").read_text())
    assert sorted(state["rungs"]) == ["baseline", "sft"]
    calls.clear()
    result = climb(_ladder(tmp_path), registry=tmp_path / "r.db", progress=False, runners=scripted(acc, calls))
    assert calls == [("dpo", "model-sft"), ("rl", "model-dpo")]  # finished rungs are not run again
    assert [r.name for r in result.rungs] == ["baseline", "sft", "dpo", "rl"] and result.target_met
    with Registry(tmp_path / "r.db") as reg:
        assert [v.rung for v in reg.lineage("med/rl")] == ["baseline", "sft", "dpo", "rl"]
        assert len(reg.list("med")) == 4
    calls.clear()
    again = climb(_ladder(tmp_path), registry=tmp_path / "r.db", progress=False, runners=scripted(acc, calls))
    assert calls == [] and again.champion.version == result.champion.version  # a finished climb only reports


def test_changed_settings_of_a_finished_rung_are_refused(tmp_path):
    acc = {"baseline": 0.0, "sft": 0.5, "dpo": 0.7, "rl": 0.95}
    climb(_ladder(tmp_path), registry=tmp_path / "r.db", progress=False, runners=scripted(acc, []))
    changed = _ladder(tmp_path).model_copy(deep=True)
    changed.rungs[1].train["max_steps"] = 5
    with pytest.raises(ValueError, match="rung 'sft' finished with other settings"):
        climb(changed, registry=tmp_path / "r.db", progress=False, runners=scripted(acc, []))


def test_a_raised_target_continues_a_finished_climb_and_the_registry_follows(tmp_path):
    acc = {"baseline": 0.0, "sft": 0.5, "dpo": 0.7, "rl": 0.95}
    calls = []
    first = climb(_ladder(tmp_path, target=0.5), registry=tmp_path / "r.db", progress=False,
                  runners=scripted(acc, calls))
    assert first.target_met and [r.name for r in first.rungs] == ["baseline", "sft"]
    calls.clear()
    # Raised target, and a fresh registry file: the finished rungs are judged again and registered again.
    second = climb(_ladder(tmp_path, target=0.9), registry=tmp_path / "other.db", progress=False,
                   runners=scripted(acc, calls))
    assert calls == [("dpo", "model-sft"), ("rl", "model-dpo")]
    assert second.target_met and second.champion.name == "rl"
    assert second.rungs[1].verdict["target_met"] is False
    with Registry(tmp_path / "other.db") as reg:
        assert [v.rung for v in reg.lineage("med/rl")] == ["baseline", "sft", "dpo", "rl"]
        assert reg.get("med/sft").status == "kept" and reg.get("med/rl").status == "target"


def test_a_gate_that_would_change_where_a_finished_rung_started_is_refused(tmp_path):
    acc = {"baseline": 0.0, "sft": 0.5, "dpo": 0.7, "rl": 0.95}
    climb(_ladder(tmp_path), registry=tmp_path / "r.db", progress=False, runners=scripted(acc, []))
    # With min_gain 0.6 the sft rung is rejected, so dpo would start from the baseline, not from sft.
    with pytest.raises(ValueError, match="rung 'dpo' was trained from model-sft, but under the ladder's gate"):
        climb(_ladder(tmp_path, min_gain=0.6), registry=tmp_path / "r.db", progress=False, runners=scripted(acc, []))
