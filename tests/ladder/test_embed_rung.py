"""A retrieval ladder: a tiny random encoder climbs base -> embed, gated on recall@5 on validation."""

import json

import pytest
import yaml

from agentladder.errors import ConfigError, DataError
from agentladder.ladder import climb
from agentladder.ladder.config import load_ladder
from agentladder.ladder.registry import Registry
from agentladder.models.tiny import write_tiny_encoder

TOPICS = ["anvil", "bramble", "cobalt", "dune", "ember", "fjord", "granite", "harbor", "iris", "juniper",
          "kelp", "lagoon"]
ALIAS = dict(zip(TOPICS, ["zorp", "quib", "mave", "trell", "glox", "pund", "wick", "yarn", "blen", "crod",
                          "drab", "frum"], strict=True))
"""Each topic's word in the queries: never in a passage, so only training can tie them."""
FILLERS = {"train": ["tell me about {}", "what is {}", "{} facts", "info on {} please", "explain {}"],
           "validation": ["describe {} to me", "{} overview"], "test": ["{} summary", "anything on {}"]}


def _kb(folder):
    folder.mkdir()
    corpus = [{"id": t, "text": f"a note on {t} and the things near {t}"} for t in TOPICS]
    (folder / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in corpus))
    for split, fillers in FILLERS.items():
        rows = [{"id": f"{split}-{i}-{t}", "text": f.format(ALIAS[t]), "relevant": [t]}
                for i, f in enumerate(fillers) for t in TOPICS]
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    texts = [r["text"] for r in corpus] + [f.format(a) for fs in FILLERS.values() for f in fs for a in ALIAS.values()]
    return write_tiny_encoder(folder / "base", texts, seed=1)


def _ladder(tmp_path, **gate):
    base = _kb(tmp_path / "kb")
    spec = {"name": "kb", "task": "retrieval", "base_model": base, "out_dir": str(tmp_path / "climb"),
            "registry": str(tmp_path / "reg.db"),
            "eval": {"validation": str(tmp_path / "kb" / "validation.jsonl"), "data": str(tmp_path / "kb" / "test.jsonl")},
            "gate": {"metric": "recall@5", "target": 0.99, "min_gain": 0.05, **gate},
            "rungs": [{"name": "base", "kind": "baseline"},
                      {"name": "embed", "kind": "embed", "data": {"source": "file", "path": "kb/train.jsonl"},
                       "train": {"lrs": [1e-5, 1e-2], "epochs": 10, "batch_size": 16}}]}
    path = tmp_path / "ladder.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_an_embed_rung_climbs_from_the_base_and_is_registered_with_its_lineage(tmp_path):
    path = _ladder(tmp_path)
    result = climb(path, progress=False)
    base, embed = result.rungs
    assert base.kind == "baseline" and embed.kind == "embed" and embed.artifact == "embedder"
    assert embed.value("recall@5") >= base.value("recall@5") + 0.2  # learnt the aliases
    assert embed.kept and result.champion.name == "embed"
    assert embed.metrics["mrr"]["ci"][0] is not None and embed.metrics["recall@5"]["n"] == 24
    assert embed.notes["tried"] and {t["learning_rate"] for t in embed.notes["tried"]} == {1e-5, 1e-2}
    assert embed.notes["chosen_on"].endswith("validation.jsonl") and embed.notes["dropped_seen_queries"] == 0
    assert set(embed.reported) == {"test"} and embed.reported["test"]["recall@5"]["value"] is not None
    assert embed.paired["test"]["n"] == 24  # paired against the base on the same test queries
    with Registry(tmp_path / "reg.db") as reg:
        version = reg.get(embed.version)
        assert version.kind == "embed" and version.artifact == "embedder" and version.headline == "recall@5"
        assert version.decided_on["split"] == "validation" and "test" in version.reported_on
        assert [v.rung for v in reg.lineage(embed.version)][-2:] == ["base", "embed"]
    from sentence_transformers import SentenceTransformer

    assert SentenceTransformer(embed.model, device="cpu").encode(["zorp"]).shape == (1, 32)
    again = climb(path, progress=False)  # resumes: nothing trains again
    assert [r.version for r in again.rungs] == [base.version, embed.version]


def test_retrieval_ladders_are_checked(tmp_path):
    path = _ladder(tmp_path)
    spec = yaml.safe_load(path.read_text())
    spec["rungs"][1]["kind"] = "sft"
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(DataError, match="baseline and embed rungs only"):
        load_ladder(path)
    spec["rungs"][1]["kind"], spec["task"] = "embed", "medication-directions"
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(DataError, match="needs task: retrieval"):
        load_ladder(path)
    spec["task"], spec["rungs"][1]["train"] = "retrieval", {"lrs": []}
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(DataError, match="rungs\\[1\\].train.lrs"):
        load_ladder(path)
    spec["rungs"][1]["train"], spec["eval"] = {}, {"data": spec["eval"]["data"]}
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(ConfigError, match="eval.validation: a retrieval ladder needs"):
        climb(path, progress=False)
    spec["eval"] = {"validation": spec["eval"]["data"], "data": spec["eval"]["data"]}
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(DataError, match="also in the validation split"):
        climb(path, progress=False)


def test_the_documented_retrieval_ladder_is_valid():
    import re
    from pathlib import Path

    from agentladder.ladder.config import parse_ladder

    doc = (Path(__file__).resolve().parents[2] / "docs" / "retrieval.md").read_text()
    (block,) = [b for b in re.findall(r"```yaml\n(.*?)```", doc, re.DOTALL) if "kind: embed" in b]
    config = parse_ladder(yaml.safe_load(block))
    assert config.task == "retrieval" and [r.kind for r in config.rungs] == ["baseline", "embed"]
    assert config.rungs[1].train["lrs"] == [2e-5, 5e-5]
