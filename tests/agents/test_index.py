"""The vector index in the store: round trips, the embedder guard and rebuild, hybrid search, the tool."""

import pytest

from agentladder.agents import Store
from agentladder.agents.index import VectorIndex, retriever_tool
from agentladder.errors import ConfigError
from agentladder.models.tiny import write_tiny_encoder

PASSAGES = [
    {"id": "warfarin", "text": "warfarin raises bleeding risk with aspirin", "metadata": {"kind": "interaction"}},
    {"id": "storage", "text": "store tablets dry at room temperature"},
    {"id": "refills", "text": "refill policy: after 75 percent of the supply"},
]
WORDS = [p["text"] for p in PASSAGES] + ["bleeding on warfarin", "where to store tablets", "zebra"]


@pytest.fixture(scope="module")
def encoders(tmp_path_factory):
    root = tmp_path_factory.mktemp("enc")
    return write_tiny_encoder(root / "a", WORDS, seed=1), write_tiny_encoder(root / "b", WORDS, seed=2)


def test_round_trip_through_the_store_file(tmp_path, encoders):
    db = tmp_path / "agentladder.db"
    index = VectorIndex(db, "kb", embedder=encoders[0])
    assert index.add(PASSAGES) == 3 and len(index) == 3
    exact = index.search(PASSAGES[1]["text"], k=3)
    assert exact[0].id == "storage" and exact[0].score == pytest.approx(1.0, abs=1e-5)
    assert [h.id for h in exact] and len(exact) == 3
    again = VectorIndex(db, "kb")  # reopened from the file, same embedder
    assert len(again) == 3 and again.embedder == index.embedder
    hit = again.search(PASSAGES[0]["text"], k=1)[0]
    assert hit.id == "warfarin" and hit.metadata == {"kind": "interaction"} and hit.text == PASSAGES[0]["text"]
    assert again.delete(["storage", "nothing"]) == 1 and len(VectorIndex(db, "kb")) == 2
    assert len(VectorIndex(Store(db), "other", embedder=encoders[0])) == 0  # indexes are separate


def test_another_embedder_is_refused_until_rebuilt(tmp_path, encoders):
    db = tmp_path / "agentladder.db"
    VectorIndex(db, "kb", embedder=encoders[0]).add(PASSAGES)
    with pytest.raises(ConfigError, match="built with the embedder .* cannot be searched with .*rebuild=True"):
        VectorIndex(db, "kb", embedder=encoders[1])
    rebuilt = VectorIndex(db, "kb", embedder=encoders[1], rebuild=True)
    assert rebuilt.embedder.endswith("b") and len(rebuilt) == 3
    assert rebuilt.search(PASSAGES[2]["text"], k=1)[0].score == pytest.approx(1.0, abs=1e-5)  # re-encoded
    assert VectorIndex(db, "kb").embedder == rebuilt.embedder  # the store now names the new one
    with pytest.raises(ConfigError, match="built with the embedder"):
        VectorIndex(db, "kb", embedder=encoders[0])


def test_hybrid_search_and_the_tool(tmp_path, encoders):
    index = VectorIndex(":memory:", "kb", embedder=encoders[0])
    index.add(PASSAGES)
    fused = index.search("refill policy", k=2, hybrid=True)
    assert fused[0].id == "refills"
    assert index.search("zebra", k=3, hybrid=True)  # a word BM25 has never seen still gets the vector ranking
    tool = retriever_tool(index, k=1, hybrid=True)
    assert tool.name == "search_knowledge_base" and "query" in tool.parameters["properties"]
    assert tool.fn(query="refill policy") == f"[refills] {PASSAGES[2]['text']}"
    with pytest.raises(ConfigError, match="string 'id'"):
        index.add([{"text": "no id"}])
