"""The LoRA sequence-classification fine-tune on the tiny model: it learns a toy set, the learning rate is
chosen on validation, the folder round-trips and loads as a provider, and the command line runs it."""

import json
import random

import numpy as np
import pytest
from typer.testing import CliRunner

from agentladder.cli import app
from agentladder.data import DataError
from agentladder.data.schema import Message
from agentladder.errors import ConfigError, OutputExistsError
from agentladder.models.classifier import is_classifier_folder
from agentladder.models.providers import ClassifierProvider, make_provider
from agentladder.models.seqclassifier import LORA_FORMAT, LoraClassifier, load_classifier
from agentladder.train.lora_classifier import train_lora_classifier


def _toy_rows(n: int, seed: int) -> list[dict]:
    """Two classes a byte-level model tells apart at once: lower-case words, or digits and symbols."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        alphabet, label = ("abcdefghijklm", "words") if i % 2 else ("0123456789#%$", "codes")
        text = " ".join("".join(rng.choice(alphabet) for _ in range(rng.randint(2, 5))) for _ in range(rng.randint(2, 4)))
        rows.append({"id": f"{seed}-{i}", "text": text, "label": label})
    return rows


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


@pytest.fixture
def toy(tmp_path):
    return _write(tmp_path / "train.jsonl", _toy_rows(96, 0)), _write(tmp_path / "val.jsonl", _toy_rows(32, 1))


def test_lora_learns_a_toy_set_chooses_on_validation_and_round_trips(tmp_path, toy):
    train, val = toy
    result = train_lora_classifier(train, str(tmp_path / "lora"), model="tiny", validation=val, lrs=[1e-5, 3e-3],
                                   epochs=3, batch_size=8, max_length=32, progress=False)
    assert [t["lr"] for t in result.tried] == [1e-5, 3e-3]
    best = max(result.tried, key=lambda t: (t["macro_f1"], t["accuracy"]))
    assert result.c == best["lr"] and result.validation["macro_f1"] == best["macro_f1"]
    assert result.validation["accuracy"] >= 0.9
    assert is_classifier_folder(result.out_dir)
    manifest = json.loads((result.out_dir / "classifier.json").read_text())
    assert manifest["format"] == LORA_FORMAT and manifest["base_model"] == "tiny"
    assert manifest["labels"] == ["codes", "words"] and manifest["training"]["configurations_tried"] == 2
    assert (result.out_dir / "adapter" / "adapter_config.json").is_file()

    texts = [r["text"] for r in _toy_rows(16, 2)]
    loaded = load_classifier(result.out_dir)
    assert isinstance(loaded, LoraClassifier)
    again = LoraClassifier.load(result.out_dir)
    proba = loaded.predict_proba(texts)
    assert proba.shape == (16, 2) and np.allclose(proba.sum(axis=1), 1, atol=1e-5)
    assert np.allclose(proba, again.predict_proba(texts), atol=1e-6)  # the head and adapters come back as saved
    truth = [r["label"] for r in _toy_rows(16, 2)]
    assert sum(p == t for p, t in zip(loaded.predict(texts), truth, strict=True)) >= 14

    provider = make_provider(str(result.out_dir))
    assert isinstance(provider, ClassifierProvider)
    reply = provider.chat([Message(role="system", content="ignored"), Message(role="user", content=texts[0])])
    assert reply.message.content in ("codes", "words")
    assert set(provider.last_probabilities[0]) == {"codes", "words"}


def test_lora_refuses_bad_rows_and_an_occupied_folder_before_training(tmp_path, toy):
    train, val = toy
    bad = _write(tmp_path / "bad.jsonl", [{"text": "x", "label": "P1"}, {"text": "y", "label": "P4"}])
    with pytest.raises(DataError, match=r"bad.jsonl:2: label"):
        train_lora_classifier(bad, str(tmp_path / "o"), model="tiny", task="log-triage", progress=False)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(OutputExistsError):
        train_lora_classifier(train, str(tmp_path / "full"), model="tiny", validation=val, progress=False)
    with pytest.raises(ConfigError, match="learning rate"):
        train_lora_classifier(train, str(tmp_path / "o"), model="tiny", validation=val, lrs=[0.0], progress=False)


def test_the_command_line_trains_a_lora_classifier_that_eval_scores(tmp_path):
    for split, n in (("train", 48), ("validation", 24), ("test", 12)):
        result = CliRunner().invoke(app, ["data", "make", "log-triage", "--split", split, "--n", str(n),
                                          "--out", str(tmp_path / f"{split}.jsonl")])
        assert result.exit_code == 0, result.output
    out = tmp_path / "lora"
    result = CliRunner().invoke(app, ["train", "classifier", "--method", "lora", "--model", "tiny",
                                      "--data", str(tmp_path / "train.jsonl"), "--validation",
                                      str(tmp_path / "validation.jsonl"), "--task", "log-triage", "--max-rows", "32",
                                      "--max-length", "48", "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "learning rate" in result.output and json.loads((out / "classifier.json").read_text())["training"]["rows"] == 32
    result = CliRunner().invoke(app, ["eval", "--task", "log-triage", "--data", str(tmp_path / "test.jsonl"),
                                      "--model", str(out), "--out", str(tmp_path / "eval"), "--quiet"])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert report["models"][str(out)]["validity"]["value"] == 1.0
    bad = CliRunner().invoke(app, ["train", "classifier", "--method", "nope", "--data", str(tmp_path / "train.jsonl"),
                                   "--out", str(tmp_path / "x")])
    assert bad.exit_code != 0 and "--method" in bad.output
