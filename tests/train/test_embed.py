"""Embedding fine-tuning: a tiny random encoder learns a toy domain's words; the run's folder and its choices."""

import json

import pytest
from sentence_transformers import SentenceTransformer

from agentladder.errors import ConfigError, OutputExistsError
from agentladder.models.tiny import write_tiny_encoder
from agentladder.train.embed import train_embed

TOPICS = ["anvil", "bramble", "cobalt", "dune", "ember", "fjord", "granite", "harbor"]
ALIAS = {"anvil": "zorp", "bramble": "quib", "cobalt": "mave", "dune": "trell", "ember": "glox", "fjord": "pund",
         "granite": "wick", "harbor": "yarn"}
"""Each topic's word in the queries: never in a passage, so only training can tie them."""
FILLERS = {"train": ["tell me about {}", "what is {}", "{} facts", "info on {} please", "explain {}"],
           "validation": ["describe {} to me", "{} overview"]}


def _toy_kb(folder):
    folder.mkdir()
    corpus = [{"id": t, "text": f"a note on {t} and the things near {t}"} for t in TOPICS]
    (folder / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in corpus))
    for split, fillers in FILLERS.items():
        rows = [{"id": f"{split}-{i}-{t}", "text": f.format(ALIAS[t]), "relevant": [t]}
                for i, f in enumerate(fillers) for t in TOPICS]
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    texts = [r["text"] for r in corpus] + [f.format(a) for fs in FILLERS.values() for f in fs for a in ALIAS.values()]
    return write_tiny_encoder(folder / "base", texts, seed=1)


def test_training_improves_recall_on_a_toy_set(tmp_path):
    base = _toy_kb(tmp_path / "kb")
    out = tmp_path / "run"
    result = train_embed(model=base, data=str(tmp_path / "kb" / "train.jsonl"), out_dir=str(out), lrs=[1e-5, 1e-2],
                         epochs=10, batch_size=16, progress=False)
    assert result.base_validation["mrr"] < 0.6
    assert result.validation["recall@1"] >= result.base_validation["recall@1"] + 0.3
    assert result.validation["mrr"] >= result.base_validation["mrr"] + 0.25
    assert result.learning_rate == 1e-2 and len(result.tried) == 2  # chosen on validation, not fixed
    manifest = json.loads((out / "agentladder.json").read_text())
    assert manifest["selected_by"] == "recall@5" and manifest["validation"] == result.validation
    assert manifest["examples"] == result.examples > 0
    # the folder loads with plain sentence-transformers
    assert SentenceTransformer(str(out), device="cpu").encode(["zorp"]).shape == (1, 32)
    with pytest.raises(OutputExistsError):
        train_embed(model=base, data=str(tmp_path / "kb" / "train.jsonl"), out_dir=str(out), lrs=[1e-4])


def test_a_finished_candidate_is_reused_and_bad_settings_refused(tmp_path):
    base = _toy_kb(tmp_path / "kb")
    data = str(tmp_path / "kb" / "train.jsonl")
    first = train_embed(model=base, data=data, out_dir=str(tmp_path / "run"), lrs=[1e-3], epochs=1, progress=False,
                        hard_negatives=0)
    again = train_embed(model=base, data=data, out_dir=str(tmp_path / "run"), lrs=[1e-3], epochs=1, progress=False,
                        hard_negatives=0, overwrite=True)
    assert again.tried == first.tried  # read back from the candidate's record, not trained again
    with pytest.raises(ConfigError, match="learning rate"):
        train_embed(model=base, data=data, out_dir=str(tmp_path / "r2"), lrs=[])
    (tmp_path / "kb" / "validation.jsonl").unlink()
    with pytest.raises(ConfigError, match="--validation"):
        train_embed(model=base, data=data, out_dir=str(tmp_path / "r3"), lrs=[1e-3])


def test_cli_trains_and_registers(tmp_path):
    from typer.testing import CliRunner

    from agentladder.cli import app
    from agentladder.ladder.registry import Registry

    base = _toy_kb(tmp_path / "kb")
    db = tmp_path / "reg.db"
    result = CliRunner().invoke(app, ["train", "embed", "--model", base, "--data", str(tmp_path / "kb" / "train.jsonl"),
                                      "--out", str(tmp_path / "run"), "--lr", "1e-3", "--batch-size", "16",
                                      "--registry", str(db), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "chosen of 1 on validation" in result.output
    with Registry(db) as reg:
        (version,) = reg.list()
    assert version.kind == "embed" and version.artifact == "embedder" and version.headline == "recall@5"
    assert version.decided_on["split"] == "validation" and version.base_model == base
    assert version.score == json.loads((tmp_path / "run" / "agentladder.json").read_text())["validation"]["recall@5"]
