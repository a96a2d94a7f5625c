"""The climb with recorded models: gates end it, rejected rungs leave the champion, a killed climb resumes,
and no decision ever reads the test split.

Each rung's "model" answers the held-out rows from a script: the first ``accuracy x rows`` rows of the
validation split (and, unless told otherwise, of the test split) with the reference answer, the rest with
nothing, so the exact match of every rung is known.
"""

import importlib
import json
import time

import pytest

from agentladder.evals import ScriptedProvider
from agentladder.ladder import Registry, Trained, climb, parse_ladder
from agentladder.ladder.climb import decided_accuracy
from agentladder.tasks import get_task

ROWS = 20


def _ladder(tmp_path, target=0.9, min_gain=0.0, **gate):
    return parse_ladder({
        "name": "med", "task": "medication-directions", "base_model": "tiny", "out_dir": str(tmp_path / "climb"),
        "eval": {"rows": ROWS, "validation_rows": ROWS, "shifted_rows": 0},
        "gate": {"target": target, "min_gain": min_gain, **gate},
        "rungs": [
            {"name": "baseline", "kind": "baseline", "shots": 3},
            {"name": "sft", "kind": "sft", "data": {"source": "generate", "rows": 8}, "train": {"max_steps": 1}},
            {"name": "dpo", "kind": "dpo", "data": {"source": "pairs", "rows": 4}, "train": {"max_steps": 1}},
            {"name": "rl", "kind": "rl", "data": {"source": "generate", "rows": 4}, "train": {"max_steps": 1}},
        ],
    })


def _answers(accuracy: float, test_accuracy: float | None):
    task = get_task("medication-directions")
    validation, test = task.make("validation", ROWS, 0), task.make("test", ROWS, 0)
    assert len({r.input for r in validation + test}) == 2 * ROWS
    right = {r.input: task.target_text(r) for r in validation[: round(accuracy * ROWS)]}
    if test_accuracy is not None:
        right.update({r.input: task.target_text(r) for r in test[: round(test_accuracy * ROWS)]})
    return lambda prompt: right.get(prompt[-1].content, "I cannot tell.")


def scripted(accuracies: dict[str, float], calls: list, fail_once: set | None = None, test: str = "same"):
    """Runners that record (rung, start model) and hand back a scripted model of the given accuracy.

    ``test``: ``same`` answers the test split as well as the validation split, ``none`` answers no test row
    (every test output unparseable), ``reversed`` the best validation model is the worst on test.
    """
    fail_once = fail_once if fail_once is not None else set()

    def runner(ctx):
        calls.append((ctx.rung.name, ctx.start_model))
        if ctx.rung.name in fail_once:
            fail_once.discard(ctx.rung.name)
            raise KeyboardInterrupt
        name = f"model-{ctx.rung.name}"
        return Trained(model=name, artifact="base" if ctx.rung.kind == "baseline" else "full",
                       provider=ScriptedProvider(_answers(accuracies[ctx.rung.name],
                                                          _test_accuracy(accuracies[ctx.rung.name], test)), name=name),
                       examples=10, tokens=1000, train_seconds=1.5)

    return {k: runner for k in ("baseline", "sft", "dpo", "rl")}


def _test_accuracy(accuracy: float, test: str) -> float | None:
    return {"same": accuracy, "none": None, "reversed": 1.0 - accuracy}[test]


def test_the_climb_stops_at_the_first_rung_that_meets_the_target(tmp_path):
    calls = []
    result = climb(_ladder(tmp_path), registry=tmp_path / "r.db", progress=False,
                   runners=scripted({"baseline": 0.1, "sft": 0.5, "dpo": 0.9, "rl": 1.0}, calls))
    assert [c[0] for c in calls] == ["baseline", "sft", "dpo"]  # rl never runs
    assert result.target_met and result.champion.name == "dpo"
    assert [r.value("exact_match") for r in result.rungs] == [0.1, 0.5, 0.9]
    assert [r.value("exact_match", "test") for r in result.rungs] == [0.1, 0.5, 0.9]
    assert calls[1][1] == "model-baseline" and calls[2][1] == "model-sft"  # each rung starts from the champion
    md = (tmp_path / "climb" / "ladder.md").read_text()
    assert "| dpo | dpo | 0.900 [" in md and "+0.400" in md and "kept, target met" in md
    # sft -> dpo on the same 20 test rows: 8 rows gained, none lost, exact McNemar p = 2 / 2^8
    assert result.rungs[2].paired["test"]["gained"] == 8 and result.rungs[2].paired["test"]["lost"] == 0
    assert result.rungs[2].paired["test"]["p"] == 2 / 2 ** 8 and "p 0.00781 (+8 -0)" in md
    assert (tmp_path / "climb" / "ladder.png").stat().st_size > 0
    report = json.loads((tmp_path / "climb" / "ladder.json").read_text())
    assert report["champion"] == result.champion.version and report["target_met"] is True


def test_a_worse_rung_is_rejected_and_the_next_starts_from_the_champion(tmp_path):
    calls = []
    result = climb(_ladder(tmp_path, target=0.95, min_gain=0.05), registry=tmp_path / "r.db", progress=False,
                   runners=scripted({"baseline": 0.0, "sft": 0.6, "dpo": 0.5, "rl": 0.8}, calls))
    assert [r.kept for r in result.rungs] == [True, True, False, True]
    assert calls[3] == ("rl", "model-sft")  # dpo gained -0.1 < 0.05: rl climbs from sft
    # The rejected rung's paired test on validation against the model it was judged against: 2 rows lost.
    dpo = result.rungs[2]
    assert dpo.compared_with == "sft" and set(dpo.paired) == {"validation"}
    assert (dpo.paired["validation"]["gained"], dpo.paired["validation"]["lost"]) == (0, 2)
    assert "- dpo: exact_match 0.500, gain -0.100 < 0.050; against sft on the same rows: p 0.5 (+0 -2)" in (
        tmp_path / "climb" / "ladder.md").read_text()
    assert not result.target_met and result.champion.name == "rl"
    kept = [r.value("exact_match") for r in result.rungs if r.kept]
    assert kept == sorted(kept)  # the kept models never get worse
    with Registry(tmp_path / "r.db") as reg:
        assert [v.rung for v in reg.lineage("med/rl")] == ["baseline", "sft", "rl"]
        assert reg.get("med/dpo").status == "rejected" and reg.get("med/dpo").parent == reg.get("med/sft").id
        assert reg.get("med/baseline").notes["shots"] == 3 and reg.get("med/sft").notes["shots"] == 0
        # Every version records the split that decided it; only kept ones were reported on the test split.
        sft, dpo = reg.get("med/sft"), reg.get("med/dpo")
        assert sft.decided_on["split"] == "validation" and sft.decided_on["rows"] == ROWS and sft.decided_on["hash"]
        assert sft.reported_on["test"]["metrics"]["exact_match"]["value"] == 0.6
        assert dpo.decided_on["split"] == "validation" and dpo.reported_on == {}
    assert result.rungs[2].reported == {}  # a rejected rung is never scored on the test split


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


@pytest.mark.parametrize("test", ["none", "reversed"])
def test_no_decision_reads_the_test_split(tmp_path, test):
    """The same validation figures with a test split the models answer perfectly, not at all (every output
    unparseable) or in reverse order make exactly the same climb: same rungs run, from the same models,
    same verdicts, same champion. Only the reported figures differ."""
    acc = {"baseline": 0.1, "sft": 0.6, "dpo": 0.55, "rl": 0.8}
    runs = {}
    for name in ("same", test):
        calls = []
        result = climb(_ladder(tmp_path / name, target=0.95, min_gain=0.02), registry=tmp_path / f"{name}.db",
                       progress=False, runners=scripted(acc, calls, test=name))
        runs[name] = (calls, [(r.name, r.verdict) for r in result.rungs], result.champion.name,
                      [r.value("exact_match", "test") for r in result.rungs])
    assert runs["same"][0] == runs[test][0] and [c[0] for c in runs[test][0]] == ["baseline", "sft", "dpo", "rl"]
    assert runs["same"][1] == runs[test][1] and runs["same"][2] == runs[test][2] == "rl"
    assert runs["same"][3] == [0.1, 0.6, None, 0.8]  # dpo was rejected: never scored on test
    assert runs[test][3] == ([0.0, 0.0, None, 0.0] if test == "none" else [0.9, 0.4, None, 0.2])


def test_a_tuning_climb_never_scores_the_test_split_and_a_later_one_reports_it(tmp_path, monkeypatch):
    import agentladder.evals.runner as runner_module

    acc = {"baseline": 0.1, "sft": 0.6, "dpo": 0.55, "rl": 0.8}
    real = runner_module.make_provider
    # The later climb runs no rung again: it asks each kept rung's model, by name, for the test split.
    monkeypatch.setattr(runner_module, "make_provider", lambda spec, **kw: ScriptedProvider(
        _answers(acc[spec.removeprefix("model-")], acc[spec.removeprefix("model-")]), name=spec)
        if isinstance(spec, str) and spec.startswith("model-") else real(spec, **kw))
    calls = []
    tuning = _ladder(tmp_path, target=0.95, min_gain=0.02).model_copy(deep=True)
    tuning.eval.report = False
    first = climb(tuning, registry=tmp_path / "r.db", progress=False, runners=scripted(acc, calls))
    assert all(r.reported == {} for r in first.rungs)
    assert not list((tmp_path / "climb").glob("*/eval/test"))  # the test split was never answered
    calls.clear()
    final = climb(_ladder(tmp_path, target=0.95, min_gain=0.02), registry=tmp_path / "r.db", progress=False,
                  runners=scripted(acc, calls))
    assert calls == [] and [r.value("exact_match", "test") for r in final.rungs] == [0.1, 0.6, None, 0.8]


def test_recommend_reads_the_champion_on_validation_never_test(tmp_path):
    from typer.testing import CliRunner

    from agentladder.cli import app

    acc = {"baseline": 0.1, "sft": 0.6, "dpo": 0.55, "rl": 0.8}
    climb(_ladder(tmp_path, target=0.95, min_gain=0.02), registry=tmp_path / "r.db", progress=False,
          runners=scripted(acc, [], test="reversed"))  # the champion: 0.8 on validation, 0.2 on test
    assert decided_accuracy(tmp_path / "climb") == (0.8, 0.95)
    def advice(*args):
        res = CliRunner().invoke(app, ["recommend", "--labeled", "600", "--checks", *args, "--json"])
        assert res.exit_code == 0, res.output
        return json.loads(res.output)

    from_climb = advice("--climb", str(tmp_path / "climb"))
    assert from_climb == advice("--accuracy", "0.8", "--target", "0.95")
    assert from_climb != advice("--accuracy", "0.2", "--target", "0.95")
    bad = CliRunner().invoke(app, ["recommend", "--pairs", "0"])
    assert bad.exit_code == 1 and "--climb DIR" in bad.output


def _with_control(tmp_path, gate: bool):
    config = _ladder(tmp_path, target=0.95).model_dump()
    config["rungs"][2]["control"] = {"kind": "sft", "gate": True} if gate else "sft"
    return parse_ladder(config)


def _control_runner(accuracy: float, seen: list):
    """A scripted control that gets the *last* rows of each split right (the rung gets the first ones)."""
    task = get_task("medication-directions")
    right = {}
    for split in ("validation", "test"):
        rows = task.make(split, ROWS, 0)
        right.update({r.input: task.target_text(r) for r in rows[ROWS - round(accuracy * ROWS):]})

    def runner(ctx):
        seen.append((ctx.rung.name, ctx.start_model, ctx.controlled.model))
        return Trained(model="model-control", artifact="full", train_seconds=2.0, examples=4,
                       provider=ScriptedProvider(lambda prompt: right.get(prompt[-1].content, "I cannot tell."),
                                                 name="model-control"))

    return runner


@pytest.mark.parametrize("gate", [False, True])
def test_a_dpo_rungs_control_is_trained_beside_it_scored_on_every_split_and_gates_only_when_asked(tmp_path, gate):
    """The dpo rung (0.7) and its control (0.7, on other rows) tie on validation: reported side by side with the
    paired test between them, and the rung is kept unless the gate asks it to beat its control."""
    acc = {"baseline": 0.1, "sft": 0.5, "dpo": 0.7, "rl": 0.8}
    calls, seen = [], []
    runners = {**scripted(acc, calls), "control": _control_runner(0.7, seen)}
    result = climb(_with_control(tmp_path, gate), registry=tmp_path / "r.db", progress=False, runners=runners)
    dpo = result.rungs[2]
    assert seen == [("dpo", "model-sft", "model-dpo")]  # from the rung's start model, handed the rung's output
    control = dpo.control
    assert control["metrics"]["exact_match"]["value"] == 0.7 and control["train_seconds"] == 2.0
    # first 14 rows right against last 14: 6 only the rung gets, 6 only the control gets
    assert control["paired"]["validation"]["gained"] == 6 and control["paired"]["validation"]["lost"] == 6
    assert (tmp_path / "climb" / "03-dpo" / "control" / "eval" / "validation" / "report.json").exists()
    md = (tmp_path / "climb" / "ladder.md").read_text()
    assert "## Controls" in md and "| dpo | validation | 0.700 | 0.700 | p 1 (+6 -6) |" in md
    if gate:
        assert not dpo.kept and "its control scores 0.700" in dpo.verdict["reason"]
        assert calls[-1] == ("rl", "model-sft")  # the next rung starts from the champion before it
        assert "test" not in control["reported"] and "test" not in dpo.reported  # a rejected rung is not reported
    else:
        assert dpo.kept and calls[-1] == ("rl", "model-dpo")
        assert control["reported"]["test"]["exact_match"]["value"] == 0.7
        assert control["paired"]["test"]["gained"] == 6 and "| dpo | test | 0.700 | 0.700 | p 1 (+6 -6) |" in md
        with Registry(tmp_path / "r.db") as reg:
            notes = reg.get("med/dpo").notes
        assert notes["control"]["metrics"]["exact_match"]["value"] == 0.7 and "outcomes" not in notes["control"]


def test_a_rungs_wall_time_holds_its_controls_scoring_on_the_reporting_splits(tmp_path, monkeypatch):
    """The control's scoring on a reporting split is made to take a second: the dpo rung's wall time covers its
    own scoring and its control's, on every split, as well as the training of both."""
    climb_module = importlib.import_module("agentladder.ladder.climb")  # the package's ``climb`` is the function
    score = climb_module._score

    def slow_reporting(run, ctx, spec, split, folder=None):
        if split.name != "validation" and folder is not None and "control" in folder.parts:
            time.sleep(1.0)
        return score(run, ctx, spec, split, folder)

    monkeypatch.setattr(climb_module, "_score", slow_reporting)
    acc = {"baseline": 0.1, "sft": 0.5, "dpo": 0.7, "rl": 0.8}
    runners = {**scripted(acc, []), "control": _control_runner(0.7, [])}
    dpo = climb(_with_control(tmp_path, False), registry=tmp_path / "r.db", progress=False, runners=runners).rungs[2]
    control = dpo.control
    assert "test" in control["reported"] and control["eval_seconds"] >= 1.0
    assert dpo.wall_seconds >= dpo.eval_seconds + control["eval_seconds"]


def test_a_rung_that_beats_its_control_passes_the_control_gate(tmp_path):
    acc = {"baseline": 0.1, "sft": 0.5, "dpo": 0.8, "rl": 0.9}
    runners = {**scripted(acc, []), "control": _control_runner(0.6, [])}
    result = climb(_with_control(tmp_path, True), registry=tmp_path / "r.db", progress=False, runners=runners)
    dpo = result.rungs[2]
    assert dpo.kept and "+0.200 over its control" in dpo.verdict["reason"]
    # a resumed climb judges it again with the control's stored figures, and keeps it
    again = climb(_with_control(tmp_path, True), registry=tmp_path / "r.db", progress=False,
                  runners={**scripted(acc, []), "control": _control_runner(0.6, [])})
    assert again.rungs[2].verdict == dpo.verdict


def test_a_control_is_refused_on_a_rung_that_has_no_pairs(tmp_path):
    config = _ladder(tmp_path).model_dump()
    config["rungs"][3]["control"] = "sft"
    with pytest.raises(ValueError, match="control applies to a dpo rung"):
        parse_ladder(config)


def test_max_p_keeps_only_significant_steps_and_a_finished_climb_is_judged_again_under_it(tmp_path):
    calls = []
    result = climb(_ladder(tmp_path / "a", target=0.99, max_p=0.05), registry=tmp_path / "a.db", progress=False,
                   runners=scripted({"baseline": 0.0, "sft": 0.5, "dpo": 0.6, "rl": 0.95}, calls))
    assert [r.kept for r in result.rungs] == [True, True, False, True]
    assert calls[3] == ("rl", "model-sft")  # dpo's +2 -0 on 20 rows (p 0.5) is not a significant step
    assert "not a significant step" in result.rungs[2].verdict["reason"]
    assert "paired test p 0.00391 (+9 -0) against the champion < 0.05" in result.rungs[3].verdict["reason"]
    md = (tmp_path / "a" / "climb" / "ladder.md").read_text()
    assert "not a significant step\n" in md and "against sft on the same rows" not in md
    # A finished climb whose last rung gained one row: kept on its gain, rejected once the gate asks for p < 0.05.
    acc = {"baseline": 0.0, "sft": 0.5, "dpo": 0.95, "rl": 1.0}
    first = climb(_ladder(tmp_path / "b", target=0.99), registry=tmp_path / "b.db", progress=False,
                  runners=scripted(acc, calls))
    assert first.champion.name == "rl"
    calls.clear()
    again = climb(_ladder(tmp_path / "b", target=0.99, max_p=0.05), registry=tmp_path / "b.db", progress=False,
                  runners=scripted(acc, calls))
    assert calls == [] and again.champion.name == "dpo" and not again.rungs[3].kept
    with Registry(tmp_path / "b.db") as reg:
        assert reg.get("med/rl").status == "rejected" and reg.get("med/dpo").status == "kept"
