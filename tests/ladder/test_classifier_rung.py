"""The ``classifier`` rung: config errors by file, line and field; a climb of the shipped log-triage ladder on
the tiny model (mechanics only: the random model's features mean nothing)."""

import json

import pytest
from typer.testing import CliRunner

from agentladder.cli import app
from agentladder.errors import ConfigError
from agentladder.ladder import Registry, climb, load_ladder
from agentladder.ladder.climb import _check_start
from agentladder.ladder.resources import demo_ladder
from agentladder.models.classifier import FeatureClassifier
from agentladder.tasks.task import input_key

runner = CliRunner()

GOOD = """\
name: t
task: log-triage
base_model: tiny
gate: {target: 0.9, metric: macro_f1}
rungs:
  - {name: baseline, kind: baseline}
  - name: cls
    kind: classifier
    data: {source: generate, rows: 40}
    train: {layers: [1, 2], c_values: [0.1, 1.0]}
"""
SMALL = ["base_model=tiny", "eval.rows=16", "eval.validation_rows=24", "eval.batch_size=8",
         "rungs.classifier.data.rows=48", "rungs.classifier.train.layers=[1, 2]",
         "rungs.classifier.train.c_values=[0.1, 1.0]"]


def _write(tmp_path, text):
    path = tmp_path / "ladder.yaml"
    path.write_text(text)
    return path


def test_the_shipped_log_triage_ladder_is_a_baseline_then_a_classifier():
    config = load_ladder(demo_ladder("log-triage"))
    assert config.task == "log-triage" and config.base_model == "smollm2-135m"
    assert [r.kind for r in config.rungs] == ["baseline", "classifier"]
    assert config.rungs[1].data.source == "generate"


def test_a_good_classifier_rung_loads(tmp_path):
    rung = load_ladder(_write(tmp_path, GOOD)).rungs[1]
    assert rung.kind == "classifier" and rung.train == {"layers": [1, 2], "c_values": [0.1, 1.0]}


@pytest.mark.parametrize(("change", "expected"), [
    (("c_values: [0.1, 1.0]", "c_values: [0.1, 1.0], pooling: max"),
     r"ladder.yaml:10: rungs\[1\].train.pooling: Input should be 'mean' or 'last'"),
    (("c_values: [0.1, 1.0]", "c_values: [0.0]"), r"ladder.yaml:10: rungs\[1\].train.c_values\[0\]: Input should be greater than 0"),
    (("c_values: [0.1, 1.0]", "c_values: []"), r"ladder.yaml:10: rungs\[1\].train.c_values: List should have at least 1"),
    (("layers: [1, 2]", "layerz: [1, 2]"), r"ladder.yaml:10: rungs\[1\].train.layerz: Extra inputs"),
    (("layers: [1, 2]", "data: x.jsonl"), r"ladder.yaml:10: rungs\[1\].train.data: the ladder sets this itself"),
    (("source: generate, rows: 40", "source: pairs, rows: 40"),
     r"ladder.yaml:7: rungs\[1\]: data.source 'pairs' does not fit a classifier rung: use one of generate, file"),
    (("kind: classifier\n", "kind: classifier\n    instructions: brief\n"),
     r"ladder.yaml:9: rungs\[1\].instructions: a classifier reads the event's text alone"),
    (("task: log-triage", "task: medication-directions"),
     r"ladder.yaml:8: rungs\[1\].kind: a classifier rung needs a classification task"),
    (("rows: 40}", "rows: 40, balance: label}"), r"rungs\[1\]: data.balance applies to an sft rung"),
])
def test_classifier_rung_errors_name_file_line_and_field(tmp_path, change, expected):
    text = GOOD.replace(*change)
    assert text != GOOD
    with pytest.raises(ValueError, match=expected):
        load_ladder(_write(tmp_path, text))


def test_a_classifier_rung_needs_data(tmp_path):
    text = GOOD.replace("    data: {source: generate, rows: 40}\n", "")
    with pytest.raises(ValueError, match=r"ladder.yaml:7: rungs\[1\]: a classifier rung needs data: source one of "
                                         r"generate, file"):
        load_ladder(_write(tmp_path, text))


def test_a_generative_rung_after_a_classifier_rung_must_start_elsewhere(tmp_path):
    after = GOOD + "  - name: sft\n    kind: sft\n    data: {source: generate, rows: 8}\n"
    with pytest.raises(ValueError, match=r"ladder.yaml:11: rungs\[2\].start: a sft rung cannot train from the "
                                         r"classifier rung 'cls'"):
        load_ladder(_write(tmp_path, after))
    with pytest.raises(ValueError, match=r"rungs\[2\].start: a sft rung cannot train from"):
        load_ladder(_write(tmp_path, after + "    start: cls\n"))
    rungs = load_ladder(_write(tmp_path, after + "    start: base\n")).rungs
    assert [r.start for r in rungs] == ["champion", "champion", "base"]


def test_a_generative_rung_may_not_start_from_a_classifier(tmp_path):
    folder = tmp_path / "cls"
    folder.mkdir()
    (folder / "classifier.json").write_text("{}")
    with pytest.raises(ConfigError, match="would start from the classifier"):
        _check_start("sft", "sft", str(folder))
    _check_start("baseline", "baseline", str(folder))  # evaluating a classifier is fine
    _check_start("cls2", "classifier", str(folder))    # so is a classifier on its feature model
    _check_start("sft", "sft", "tiny")


def test_the_shipped_ladder_climbs_on_the_tiny_model_from_the_cli(tmp_path):
    out, reg = tmp_path / "lt", str(tmp_path / "r.db")
    args = ["climb", "log-triage", "--registry", reg, "--quiet", "--set", f"out_dir={out}",
            "--set", f"rungs.classifier.train.cache_dir={tmp_path / 'cache'}"]
    for item in SMALL:
        args += ["--set", item]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "ladder log-triage" in res.output
    report = json.loads((out / "ladder.json").read_text())
    assert [r["name"] for r in report["rungs"]] == ["baseline", "classifier"]
    cls = report["rungs"][1]
    assert cls["kind"] == "classifier" and cls["artifact"] == "classifier" and cls["examples"] == 48

    # The shipped recipe was chosen on the climb's validation split: layers 1, 2 and both side by side, each
    # with the logistic head at 2 values of C and the MLP head, each scored there.
    run = out / "02-classifier" / "run"
    manifest = json.loads((run / "classifier.json").read_text())
    assert manifest["training"]["validation"] == str(out / "validation.jsonl")
    assert manifest["training"]["configurations_tried"] == 9 and len(manifest["tried"]) == 9
    assert cls["notes"]["configurations_tried"] == 9 and cls["notes"]["chosen"]["features"] == "tiny"
    assert {(str(t["layer"]), t["head"], t["C"]) for t in manifest["tried"] if t["head"] == "logistic"} == {
        (str(layer), "logistic", c) for layer in (1, 2, [1, 2]) for c in (0.1, 1.0)}
    assert sorted(str(t["layer"]) for t in manifest["tried"] if t["head"] == "mlp") == ["1", "2", "[1, 2]"]
    assert FeatureClassifier.load(run).labels == ["P1", "P2", "P3"]

    # Its training rows are fresh: none is a validation or test row.
    train = [json.loads(line) for line in (out / "02-classifier" / "data.jsonl").read_text().splitlines()]
    held = set()
    for split in ("validation", "test"):
        held |= {input_key(json.loads(line)["text"]) for line in (out / f"{split}.jsonl").read_text().splitlines()}
    assert len(train) == 48 and not {input_key(r["text"]) for r in train} & held

    # Scored by the same evaluation as the generative baseline, on validation, then (kept) on test.
    for rung in ("01-baseline", "02-classifier"):
        for split in ("validation", "test"):
            assert json.loads((out / rung / "eval" / split / "report.json").read_text())["task"] == "log-triage"
    assert set(cls["metrics"]) >= {"macro_f1", "p1_recall", "accuracy"}

    with Registry(reg) as registry:
        assert [v.kind for v in registry.lineage("log-triage/classifier")] == ["baseline", "classifier"]
        version = registry.get("log-triage/classifier")
        assert version.artifact == "classifier" and version.decided_on["split"] == "validation"
        assert version.data_hash and version.config["layer"] in (1, 2, [1, 2])
    exported = runner.invoke(app, ["models", "export", "log-triage/classifier", "--out", str(tmp_path / "exp"),
                                   "--registry", reg])
    assert exported.exit_code == 0, exported.output
    assert FeatureClassifier.load(tmp_path / "exp").labels == ["P1", "P2", "P3"]

    # Run again: the finished climb is read back, the classifier is not trained again.
    stamp = (run / "head.joblib").stat().st_mtime_ns
    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert (run / "head.joblib").stat().st_mtime_ns == stamp


def test_holdout_chooses_on_the_rungs_own_rows_and_a_file_drops_held_out_rows(tmp_path):
    config = load_ladder(demo_ladder("log-triage"), [*SMALL, f"out_dir={tmp_path / 'c'}",
                                                     "rungs.classifier.train.validation=holdout",
                                                     f"rungs.classifier.train.cache_dir={tmp_path / 'cache'}"])
    result = climb(config, registry=tmp_path / "r.db", progress=False)
    manifest = json.loads((tmp_path / "c" / "02-classifier" / "run" / "classifier.json").read_text())
    assert "20% of" in manifest["training"]["validation"] and manifest["training"]["rows"] < 48
    assert result.rungs[1].kind == "classifier"

    # A file of rows: those that are also validation rows are dropped before training.
    validation = (tmp_path / "c" / "validation.jsonl").read_text().splitlines()
    rows = (tmp_path / "c" / "02-classifier" / "data.jsonl").read_text().splitlines()
    given = tmp_path / "rows.jsonl"
    given.write_text("\n".join(rows + validation[:3]) + "\n")
    config = load_ladder(demo_ladder("log-triage"), [*SMALL, f"out_dir={tmp_path / 'f'}",
                                                     f"rungs.classifier.data={{source: file, path: {given}}}",
                                                     f"rungs.classifier.train.cache_dir={tmp_path / 'cache'}"])
    result = climb(config, registry=tmp_path / "r2.db", progress=False)
    assert result.rungs[1].notes["dropped_seen_rows"] == 3
    assert result.rungs[1].examples == len(rows)
