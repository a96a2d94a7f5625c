"""Ladder files: the shipped ones load; bad input is reported by file, line and field; overrides."""

import pytest

from agentladder.ladder.config import load_ladder
from agentladder.ladder.resources import demo_ladder, shipped_ladders

GOOD = """\
name: t
task: medication-directions
base_model: tiny
gate: {target: 0.9}
rungs:
  - {name: baseline, kind: baseline}
  - name: sft
    kind: sft
    data: {source: generate, rows: 8}
    train: {max_steps: 2, lora: true}
"""


def _write(tmp_path, text):
    path = tmp_path / "ladder.yaml"
    path.write_text(text)
    return path


def test_the_shipped_ladders_load_and_climb_baseline_to_rl():
    assert set(shipped_ladders()) >= {"medication", "medication-full", "smoke"}
    for name in ("medication", "medication-full", "smoke"):
        config = load_ladder(demo_ladder(name))
        assert [r.kind for r in config.rungs] == ["baseline", "sft", "dpo", "rl"]
    assert load_ladder(demo_ladder("medication")).base_model == "smollm2-135m"
    with pytest.raises(ValueError, match="no shipped ladder 'nope'"):
        demo_ladder("nope")


@pytest.mark.parametrize(("change", "expected"), [
    (("max_steps: 2", "batch_size: 0"), r"ladder.yaml:10: rungs\[1\].train.batch_size: Input should be greater"),
    (("max_steps: 2", "max_stepz: 2"), r"ladder.yaml:10: rungs\[1\].train.max_stepz: Extra inputs"),
    (("max_steps: 2", "out_dir: x"), r"ladder.yaml:10: rungs\[1\].train.out_dir: the ladder sets this itself"),
    (("source: generate", "source: pairs"), r"ladder.yaml:7: rungs\[1\]: data.source 'pairs' does not fit a sft"),
    (("rows: 8", "rows: 0"), r"ladder.yaml:9: rungs\[1\].data.rows: Input should be greater"),
    (("kind: sft", "kind: ppo"), r"ladder.yaml:8: rungs\[1\].kind: Input should be"),
    (("name: sft", "name: baseline"), r"ladder.yaml:7: rungs\[1\].name: rung name 'baseline' is used twice"),
    (("{target: 0.9}", "{target: high}"), r"ladder.yaml:4: gate.target: Input should be a valid number"),
    (("task: medication", "tsak: medication"), r"ladder.yaml:2: tsak: Extra inputs"),
])
def test_errors_name_file_line_and_field(tmp_path, change, expected):
    path = _write(tmp_path, GOOD.replace(*change))
    with pytest.raises(ValueError, match=expected):
        load_ladder(path)


def test_a_rung_may_start_only_from_an_earlier_rung(tmp_path):
    path = _write(tmp_path, GOOD.replace("kind: sft\n", "kind: sft\n    start: later\n"))
    with pytest.raises(ValueError, match=r"ladder.yaml:9: rungs\[1\].start: 'later' is not champion"):
        load_ladder(path)


def test_a_baseline_takes_no_training_and_a_trained_rung_needs_data(tmp_path):
    with pytest.raises(ValueError, match=r"rungs\[0\]: a baseline rung trains nothing"):
        load_ladder(_write(tmp_path, GOOD.replace("kind: baseline}", "kind: baseline, train: {max_steps: 1}}")))
    with pytest.raises(ValueError, match=r"rungs\[1\]: a sft rung needs data"):
        load_ladder(_write(tmp_path, GOOD.replace("    data: {source: generate, rows: 8}\n", "")))


def test_invalid_yaml_and_a_missing_file(tmp_path):
    with pytest.raises(ValueError, match=r"ladder.yaml:\d+: invalid YAML"):
        load_ladder(_write(tmp_path, GOOD + "  - {name: [\n"))
    with pytest.raises(FileNotFoundError, match="no such ladder file"):
        load_ladder(tmp_path / "missing.yaml")


def test_overrides_by_dotted_key_and_rung_name(tmp_path):
    config = load_ladder(_write(tmp_path, GOOD), ["out_dir=runs/x", "rungs.sft.train.max_steps=7", "gate.target=0.8"])
    assert config.out_dir == "runs/x" and config.rungs[1].train["max_steps"] == 7 and config.gate.target == 0.8
    with pytest.raises(ValueError, match="no rung named 'dpo'"):
        load_ladder(_write(tmp_path, GOOD), ["rungs.dpo.train.max_steps=7"])
    with pytest.raises(ValueError, match="write key=value"):
        load_ladder(_write(tmp_path, GOOD), ["out_dir"])


def test_file_data_is_relative_to_the_ladder_file(tmp_path):
    text = GOOD.replace("{source: generate, rows: 8}", "{source: file, path: rows.jsonl}")
    config = load_ladder(_write(tmp_path, text))
    assert config.rungs[1].data.path == str(tmp_path / "rows.jsonl")


def test_a_rung_fingerprint_changes_with_it_and_the_rungs_before_it_only(tmp_path):
    a = load_ladder(_write(tmp_path, GOOD))
    b = load_ladder(_write(tmp_path, GOOD), ["rungs.sft.train.max_steps=3"])
    assert a.rung_fingerprint(0) == b.rung_fingerprint(0)
    assert a.rung_fingerprint(1) != b.rung_fingerprint(1)


def test_a_rung_names_the_tasks_other_instructions(tmp_path):
    path = _write(tmp_path, GOOD.replace("kind: sft\n", "kind: sft\n    instructions: brief\n"))
    config = load_ladder(path)
    assert config.rungs[0].task(config.task) == "medication-directions"
    assert config.rungs[1].task(config.task) == "medication-directions@brief"
    bad = _write(tmp_path, GOOD.replace("kind: sft\n", "kind: sft\n    instructions: terse\n"))
    with pytest.raises(ValueError, match=r"ladder.yaml:9: rungs\[1\].instructions: task 'medication-directions' "
                                         r"has no instructions 'terse' \(it has: brief, brief-lower\)"):
        load_ladder(bad)


def test_balance_is_for_generated_sft_conversations_and_rl_prompts(tmp_path):
    config = load_ladder(_write(tmp_path, GOOD.replace("rows: 8}", "rows: 8, balance: doses_per_day}")))
    assert config.rungs[1].data.balance == "doses_per_day"
    rl = GOOD.replace("kind: sft", "kind: rl").replace("train: {max_steps: 2, lora: true}",
                                                       "train: {max_steps: 2, preset: dapo}")
    config = load_ladder(_write(tmp_path, rl.replace("rows: 8}", "rows: 8, balance: duration_days, filter_k: 4}")))
    assert config.rungs[1].data.balance == "duration_days"
    dpo = GOOD.replace("kind: sft", "kind: dpo").replace("source: generate", "source: pairs")
    with pytest.raises(ValueError, match=r"ladder.yaml:9: rungs\[1\].data.balance: Extra inputs"):
        load_ladder(_write(tmp_path, dpo.replace("rows: 8}", "rows: 8, balance: doses_per_day}")))


DPO = """\
  - name: dpo
    kind: dpo
    data: {source: pairs, rows: 4}
    train: {loss: rpo, rpo_alpha: 1.0, max_steps: 2}
"""


def test_the_old_meaning_of_rpo_is_refused_with_the_new_name(tmp_path):
    """``rpo`` is Relative Preference Optimization now; a config that sets ``rpo_alpha`` meant DPO plus NLL."""
    with pytest.raises(ValueError, match=r"ladder.yaml:14: rungs\[2\].train.rpo_alpha: DPO plus NLL .* is now "
                                         r"loss: dpo_nll, its NLL weight nll_alpha"):
        load_ladder(_write(tmp_path, GOOD + DPO))
    config = load_ladder(_write(tmp_path, GOOD + DPO.replace("loss: rpo, rpo_alpha", "loss: dpo_nll, nll_alpha")))
    assert config.rungs[2].train["loss"] == "dpo_nll"
    assert load_ladder(_write(tmp_path, GOOD + DPO.replace(", rpo_alpha: 1.0", ""))).rungs[2].train["loss"] == "rpo"


def test_rung_data_options_fit_their_rung(tmp_path):
    with pytest.raises(ValueError, match=r"data.filter_k applies to an rl rung"):
        load_ladder(_write(tmp_path, GOOD.replace("rows: 8}", "rows: 8, filter_k: 4}")))
    with pytest.raises(ValueError, match=r"data.greedy_errors applies to an rl rung's filter: set data.filter_k"):
        load_ladder(_write(tmp_path, GOOD.replace("rows: 8}", "rows: 8, greedy_errors: 3}")))
    rl = ("  - name: rl\n    kind: rl\n    data: {source: generate, rows: 8, filter_k: 4, always_wrong: true}\n"
          "    train: {max_steps: 2}\n")
    with pytest.raises(ValueError, match=r"data.always_wrong keeps prompts no sample answers right.*"
                                         r"set train.reference_guidance: true"):
        load_ladder(_write(tmp_path, GOOD + rl))
    guided = load_ladder(_write(tmp_path, GOOD + rl.replace("max_steps: 2", "max_steps: 2, reference_guidance: true")))
    assert guided.rungs[2].data.always_wrong and guided.rungs[2].train["reference_guidance"]
    with pytest.raises(ValueError, match=r"data.always_wrong applies to an rl rung's filter: set data.filter_k"):
        load_ladder(_write(tmp_path, GOOD + rl.replace("filter_k: 4, ", "")))
    with pytest.raises(ValueError, match=r"a pair needs two candidates"):
        load_ladder(_write(tmp_path, GOOD + DPO.replace("rows: 4}", "rows: 4, k: 0, with_target: false}")))


def test_a_dpo_rung_without_the_new_options_keeps_the_fingerprint_it_had_before_them(tmp_path):
    """The fingerprints of a ladder written before ``control`` and ``data.pairing`` existed (computed by that
    version): a climb it finished still resumes; setting either option changes the rung's fingerprint."""
    text = GOOD + DPO.replace("loss: rpo, rpo_alpha: 1.0,", "loss: orpo,")
    config = load_ladder(_write(tmp_path, text))
    assert [config.rung_fingerprint(i) for i in range(3)] == ["50ce16790286ea5b", "36452900206e29a7", "408af80acc54811f"]
    controlled = load_ladder(_write(tmp_path, text.replace("kind: dpo", "kind: dpo\n    control: sft")))
    paired = load_ladder(_write(tmp_path, text.replace("rows: 4}", "rows: 4, pairing: each_worse}")))
    assert controlled.rung_fingerprint(2) != config.rung_fingerprint(2) != paired.rung_fingerprint(2)
    assert controlled.rungs[2].control.kind == "sft" and paired.rungs[2].data.pairing == "each_worse"
    with pytest.raises(ValueError, match=r"data.pairing applies to a dpo rung"):
        load_ladder(_write(tmp_path, text.replace("kind: dpo", "kind: kto").replace("loss: orpo, ", "")
                           .replace("rows: 4}", "rows: 4, pairing: each_worse}")))
