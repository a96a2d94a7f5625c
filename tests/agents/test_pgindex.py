"""The pgvector index on a real throwaway PostgreSQL server: the same behaviour as the SQLite index.

The server is Debian's PostgreSQL with pgvector built by ``setup.sh --dev``; a machine without them
fails here (the fixture says what to install) rather than skipping.
"""

import psycopg
import pytest

from agentladder.agents import PgVectorIndex, VectorIndex, retriever_tool
from agentladder.errors import ConfigError
from agentladder.models.tiny import write_tiny_encoder

PASSAGES = [
    {"id": "warfarin", "text": "warfarin raises bleeding risk with aspirin", "metadata": {"kind": "interaction"}},
    {"id": "storage", "text": "store tablets dry at room temperature"},
    {"id": "refills", "text": "refill policy: after 75 percent of the supply"},
    {"id": "hours", "text": "the pharmacy opens at nine and closes at six"},
]
WORDS = [p["text"] for p in PASSAGES] + ["bleeding on warfarin", "where to store tablets", "zebra", "when open"]
QUERIES = ["bleeding on warfarin", "where to store tablets", "refill policy", "when open", "zebra"]


@pytest.fixture(scope="module")
def encoders(tmp_path_factory):
    root = tmp_path_factory.mktemp("enc")
    return write_tiny_encoder(root / "a", WORDS, seed=1), write_tiny_encoder(root / "b", WORDS, seed=2)


def test_round_trip_and_the_same_ranking_as_the_sqlite_index(postgres_url, encoders):
    index = PgVectorIndex(postgres_url, "kb", embedder=encoders[0])
    assert index.add(PASSAGES) == 4 and len(index) == 4
    exact = index.search(PASSAGES[1]["text"], k=4)
    assert exact[0].id == "storage" and exact[0].score == pytest.approx(1.0, abs=1e-5) and len(exact) == 4
    reference = VectorIndex(":memory:", "kb", embedder=encoders[0])
    reference.add(PASSAGES)
    for q in QUERIES:
        ours, theirs = index.search(q, k=4), reference.search(q, k=4)
        assert [h.id for h in ours] == [h.id for h in theirs], q
        assert [h.score for h in ours] == pytest.approx([h.score for h in theirs], abs=1e-5)
        fused = index.search(q, k=3, hybrid=True)
        assert [h.id for h in fused] == [h.id for h in reference.search(q, k=3, hybrid=True)], q
    index.close()
    again = PgVectorIndex(postgres_url, "kb")  # another connection, reopened from the server
    assert len(again) == 4 and again.embedder == index.embedder
    hit = again.get("warfarin")
    assert hit.metadata == {"kind": "interaction"} and hit.text == PASSAGES[0]["text"]
    assert list(again.passages()) == [p["id"] for p in PASSAGES]
    again.add([{"id": "storage", "text": "keep the bottle in the fridge"}])  # replaces, keeps its place
    assert again.get("storage").text == "keep the bottle in the fridge" and len(again) == 4
    assert again.delete(["storage", "nothing"]) == 1 and len(PgVectorIndex(postgres_url, "kb")) == 3
    assert len(PgVectorIndex(postgres_url, "other", embedder=encoders[0])) == 0  # indexes are separate
    assert again.get("storage") is None


def test_another_embedder_is_refused_until_rebuilt(postgres_url, encoders):
    PgVectorIndex(postgres_url, "kb", embedder=encoders[0]).add(PASSAGES)
    with pytest.raises(ConfigError, match="built with the embedder .* cannot be searched with .*rebuild=True"):
        PgVectorIndex(postgres_url, "kb", embedder=encoders[1])
    rebuilt = PgVectorIndex(postgres_url, "kb", embedder=encoders[1], rebuild=True)
    assert rebuilt.embedder.endswith("b") and len(rebuilt) == 4
    assert rebuilt.search(PASSAGES[2]["text"], k=1)[0].score == pytest.approx(1.0, abs=1e-5)  # re-encoded
    assert PgVectorIndex(postgres_url, "kb").embedder == rebuilt.embedder
    with pytest.raises(ConfigError, match="built with the embedder"):
        PgVectorIndex(postgres_url, "kb", embedder=encoders[0])


def test_the_tool_bad_passages_and_a_server_without_pgvector(postgres_url, postgres_server, encoders):
    index = PgVectorIndex(psycopg.connect(postgres_url, autocommit=True), "kb", embedder=encoders[0])
    index.add(PASSAGES)
    tool = retriever_tool(index, k=1, hybrid=True)
    assert tool.fn(query="refill policy") == f"[refills] {PASSAGES[2]['text']}"
    with pytest.raises(ConfigError, match="string 'id'"):
        index.add([{"text": "no id"}])
    with pytest.raises(ConfigError, match="cannot connect to PostgreSQL"):
        PgVectorIndex(postgres_server + "/no_such_database", "kb", embedder=encoders[0])
    with psycopg.connect(postgres_server + "/postgres", autocommit=True) as admin:
        admin.execute("CREATE ROLE plain LOGIN")
        admin.execute("CREATE DATABASE novector")  # owned by postgres: plain may not create in it
    url = postgres_server.replace("postgres@", "plain@") + "/novector"
    with pytest.raises(ConfigError, match="no pgvector extension"):  # a role that may not create it
        PgVectorIndex(url, "kb", embedder=encoders[0])
