"""Feature-based fine-tuning on the tiny model: a head that separates a toy set, the layer and C chosen on
validation, the folder's save/load round trip, the classifier as a provider, and the command line end to end."""

import json
import random

import numpy as np
import pytest
from typer.testing import CliRunner

from agentladder.cli import app
from agentladder.data import DataError
from agentladder.data.schema import Message
from agentladder.errors import ConfigError, OutputExistsError
from agentladder.models.classifier import FeatureClassifier, is_classifier_folder
from agentladder.models.features import FeatureSpec
from agentladder.models.providers import ClassifierProvider, ProviderError, make_provider
from agentladder.tasks.task import Sample
from agentladder.train.classifier import FINAL_FORMS, make_head, split_validation, train_classifier


def _toy_rows(n: int, seed: int) -> list[dict]:
    """Two classes a byte-level model tells apart: lower-case words, or digits and symbols."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        if i % 2:
            text = " ".join("".join(rng.choice("abcdefghijklm") for _ in range(rng.randint(3, 7)))
                            for _ in range(rng.randint(3, 6)))
            rows.append({"id": f"{seed}-{i}", "text": text, "label": "words"})
        else:
            text = " ".join("".join(rng.choice("0123456789#%$") for _ in range(rng.randint(2, 5)))
                            for _ in range(rng.randint(3, 6)))
            rows.append({"id": f"{seed}-{i}", "text": text, "label": "codes"})
    return rows


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


@pytest.fixture
def toy(tmp_path):
    return _write(tmp_path / "train.jsonl", _toy_rows(60, 0)), _write(tmp_path / "val.jsonl", _toy_rows(30, 1))


def test_a_head_on_tiny_features_separates_a_toy_set_and_round_trips(tmp_path, toy):
    train, val = toy
    result = train_classifier(train, str(tmp_path / "cls"), features="tiny", layers=[1, 2], validation=val,
                              c_values=[0.1, 1.0], cache_dir=str(tmp_path / "cache"), progress=False)
    assert len(result.tried) == 4 and {(t["layer"], t["C"]) for t in result.tried} == {(1, 0.1), (1, 1.0), (2, 0.1), (2, 1.0)}
    assert result.validation["accuracy"] >= 0.9 and result.validation["macro_f1"] >= 0.9
    assert is_classifier_folder(result.out_dir)
    manifest = json.loads((result.out_dir / "classifier.json").read_text())
    assert manifest["features"] == {"model": "tiny", "layer": result.layer, "pooling": "mean", "max_length": 256}
    assert manifest["training"]["configurations_tried"] == 4 and manifest["labels"] == ["codes", "words"]
    forms = manifest["final_forms"]  # the chosen configuration's final forms, each scored on validation
    assert [f["form"] for f in forms] == list(FINAL_FORMS)
    best = max(forms, key=lambda f: (f["macro_f1"], f["accuracy"]))  # the first of equals: balanced, calibrated
    assert manifest["training"]["final_form"] == best["form"] and manifest["validation"]["macro_f1"] == best["macro_f1"]

    texts = [r["text"] for r in _toy_rows(20, 2)]
    clf = FeatureClassifier.load(result.out_dir)
    proba = clf.predict_proba(texts)
    assert proba.shape == (20, 2) and np.allclose(proba.sum(1), 1)
    assert clf.priors == {"codes": 0.5, "words": 0.5}  # the balanced decision divides by the training shares
    assert clf.predict(texts) == [clf.labels[i] for i in (proba / 0.5).argmax(axis=1)]
    again = FeatureClassifier.load(result.out_dir)
    assert np.allclose(again.predict_proba(texts), proba) and again.predict(texts) == clf.predict(texts)
    assert sum(p == r["label"] for p, r in zip(clf.predict(texts), _toy_rows(20, 2), strict=True)) >= 18

    provider = make_provider(str(result.out_dir))
    assert isinstance(provider, ClassifierProvider)
    prompts = [[Message(role="system", content="Reply with a label."), Message(role="user", content=t)] for t in texts]
    assert provider.complete(prompts) == clf.predict(texts)
    reply = provider.chat(prompts[0])
    assert reply.message.content == clf.predict(texts[:1])[0] and set(provider.last_probabilities[0]) == {"codes", "words"}
    with pytest.raises(ProviderError, match="calls no tools"):
        provider.chat(prompts[0], tools=[object()])
    provider.close()

    with pytest.raises(OutputExistsError):
        train_classifier(train, str(result.out_dir), features="tiny", layers=[1], validation=val, progress=False)


def test_without_a_validation_file_a_stratified_share_is_held_out():
    rows = [Sample(str(i), f"t{i}", "a" if i < 40 else "b") for i in range(50)]
    train, held = split_validation(rows, 0.2, seed=0)
    assert sorted(s.target for s in held) == ["a"] * 8 + ["b"] * 2
    assert not {s.id for s in train} & {s.id for s in held} and len(train) + len(held) == 50
    assert split_validation(rows, 0.2, seed=0) == (train, held)


def test_rows_outside_the_label_set_are_refused_before_any_model_runs(tmp_path):
    bad = _write(tmp_path / "bad.jsonl", [{"text": "x", "label": "P1"}, {"text": "y", "label": "urgent"}])
    with pytest.raises(DataError, match=r"bad.jsonl:2: label: 'urgent' is not one of the labels P1, P2, P3"):
        train_classifier(bad, str(tmp_path / "out"), features="tiny", task="log-triage", progress=False)


def test_the_command_line_end_to_end_on_tiny(tmp_path):
    runner = CliRunner()
    files = {}
    for split, n in (("train", 150), ("validation", 60), ("test", 24)):
        files[split] = str(tmp_path / f"{split}.jsonl")
        made = runner.invoke(app, ["data", "make", "log-triage", "--split", split, "--n", str(n), "--out", files[split]])
        assert made.exit_code == 0, made.output
    out = str(tmp_path / "cls1")
    trained = runner.invoke(app, ["train", "classifier", "--features", "tiny", "--layer", "1", "--layer", "2",
                                  "--c", "0.1", "--c", "1", "--data", files["train"], "--validation",
                                  files["validation"], "--task", "log-triage", "--out", out,
                                  "--cache", str(tmp_path / "cache")])
    assert trained.exit_code == 0, trained.output
    assert "of 4 configurations on validation" in trained.output
    report = tmp_path / "report"
    evaluated = runner.invoke(app, ["eval", "--task", "log-triage", "--data", files["test"], "--model", out,
                                    "--model", "tiny", "--max-new-tokens", "4", "--out", str(report), "--quiet"])
    assert evaluated.exit_code == 0, evaluated.output
    results = json.loads((report / "report.json").read_text())
    models = results["models"]
    assert set(models) == {out, "tiny"} and results["headline"] == "p1_recall"
    assert models[out]["validity"]["value"] == 1.0  # a classifier always answers with a label
    assert set(models[out]["recall"]["breakdown"]) == {"P1", "P2", "P3"}
    samples = [json.loads(line) for line in (report / "samples.jsonl").read_text().splitlines()]
    mine = [s for s in samples if s["model"] == out]
    assert len(mine) == 24 and all(s["output"] in ("P1", "P2", "P3") for s in mine)


@pytest.mark.slow
def test_sentence_embeddings_as_features(tmp_path, toy):
    train, val = toy
    result = train_classifier(train, str(tmp_path / "cls"), features="sentence:minilm", validation=val,
                              c_values=[1.0], cache_dir=str(tmp_path / "cache"), progress=False)
    assert result.layer is None and len(result.tried) == 1 and result.validation["accuracy"] >= 0.9
    clf = FeatureClassifier.load(result.out_dir)
    assert clf.spec.model == "sentence:minilm" and clf.predict(["abc defg hij", "12 #4 %%9"]) == ["words", "codes"]
    with pytest.raises(ConfigError, match="no layer to choose"):
        train_classifier(train, str(tmp_path / "other"), features="sentence:minilm", layers=[3], validation=val,
                         progress=False)


def test_layers_side_by_side_and_an_mlp_head_are_candidates_chosen_on_validation(tmp_path, toy):
    train, val = toy
    result = train_classifier(train, str(tmp_path / "cls"), features="tiny", layers=[1, 2], validation=val,
                              c_values=[1.0], heads=["logistic", "mlp"], concat=True,
                              cache_dir=str(tmp_path / "cache"), progress=False)
    assert [(t["layer"], t["head"]) for t in result.tried] == [
        (1, "logistic"), (1, "mlp"), (2, "logistic"), (2, "mlp"), ([1, 2], "logistic"), ([1, 2], "mlp")]
    best = max(result.tried, key=lambda t: (t["macro_f1"], t["accuracy"], -t["C"]))
    assert result.layer == best["layer"]
    clf = FeatureClassifier.load(result.out_dir)
    texts = [r["text"] for r in _toy_rows(12, 2)]
    if isinstance(result.layer, list):
        assert clf.layers == [1, 2] and clf.features(texts).shape == (12, 128)  # two 64-wide states side by side
    truth = [r["label"] for r in _toy_rows(12, 2)]
    assert sum(p == t for p, t in zip(clf.predict(texts), truth, strict=True)) >= 10

    # a classifier on two states side by side saves, loads and answers from both
    spec = FeatureSpec("tiny", 2, "mean", 256)
    x = FeatureClassifier(spec, ["codes", "words"], None, layers=[1, 2]).features([r["text"] for r in _toy_rows(40, 3)])
    head = make_head(1.0, calibrate=False, kind="mlp").fit(x, [r["label"] for r in _toy_rows(40, 3)])
    FeatureClassifier(spec, ["codes", "words"], head, layers=[1, 2]).save(tmp_path / "both")
    again = FeatureClassifier.load(tmp_path / "both")
    assert again.layers == [1, 2] and again.features(texts).shape == (12, 128)  # two 64-wide states
    assert json.loads((tmp_path / "both" / "classifier.json").read_text())["layers"] == [1, 2]
    assert np.allclose(again.predict_proba(texts).sum(axis=1), 1)
    with pytest.raises(ConfigError, match="heads"):
        train_classifier(train, str(tmp_path / "x"), features="tiny", layers=[1], validation=val, heads=["forest"],
                         progress=False)


def test_without_calibration_the_head_is_kept_as_searched(tmp_path, toy):
    train, val = toy
    result = train_classifier(train, str(tmp_path / "plain"), features="tiny", layers=[2], validation=val,
                              c_values=[1.0], calibrate=False, cache_dir=str(tmp_path / "cache"), progress=False)
    manifest = json.loads((result.out_dir / "classifier.json").read_text())
    assert [f["form"] for f in manifest["final_forms"]] == ["not calibrated"]
    assert manifest["training"]["final_form"] == "not calibrated" and manifest["training"]["calibrated"] is False
    assert FeatureClassifier.load(result.out_dir).priors is None
