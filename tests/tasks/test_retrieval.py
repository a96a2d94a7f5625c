"""The pharmacy knowledge base, its splits, its bad-input errors, the ranking metrics and the rankers."""

import json
import math

import pytest

from agentladder.errors import DataError, MissingFileError, OutputExistsError
from agentladder.tasks.medication.formulary import formulary, interactions
from agentladder.tasks.retrieval import (
    BM25Ranker,
    build_corpus,
    generate_queries,
    load_split,
    ndcg_at,
    query_scores,
    recall_at,
    reciprocal_rank,
    rrf,
    write_pharmacy_kb,
)
from agentladder.tasks.retrieval.metrics import paired_gain
from agentladder.tasks.retrieval.queries import ALIASES, TEMPLATES, misspell


def test_corpus_covers_the_tables_with_unique_ids():
    corpus = build_corpus()
    ids = [row["id"] for row in corpus]
    assert len(ids) == len(set(ids)) == 4 * len(formulary()) + len(interactions()) + 10
    assert set(ALIASES) == set(formulary())
    texts = " ".join(row["text"] for row in corpus).lower()
    for aliases in ALIASES.values():  # passages name drugs by their generic names only
        assert not any(f" {a.lower()} " in texts for a in aliases if len(a) > 4 and a.lower() not in formulary())


def test_splits_share_no_question_and_are_written_in_their_own_families():
    splits = {s: generate_queries(s, n) for s, n in (("train", 3000), ("validation", 300), ("test", 500))}
    texts = {s: {" ".join(q["text"].lower().split()) for q in rows} for s, rows in splits.items()}
    assert all(len(texts[s]) == len(splits[s]) for s in splits)
    assert not texts["train"] & texts["validation"] and not texts["train"] & texts["test"]
    assert not texts["validation"] & texts["test"]
    templates = {s: {t for family in TEMPLATES[s].values() for t in family} for s in TEMPLATES}
    assert not templates["train"] & templates["test"] and not templates["validation"] & templates["test"]
    ids = {row["id"] for row in build_corpus()}
    assert all(set(q["relevant"]) <= ids for rows in splits.values() for q in rows)
    kinds = {q["relevant"][0].split(":")[0] for q in splits["test"]}
    assert kinds == {"drug", "interaction", "policy"}
    assert generate_queries("test", 50) == splits["test"][:50]  # a larger draw extends a smaller one


def test_questions_use_customers_words():
    rows = generate_queries("train", 3000)
    words = " ".join(q["text"].lower() for q in rows)
    for term in ("tylenol", "z-pak", "water pill", "hctz", "zoloft"):
        assert term in words
    generic = sum(any(d in q["text"].lower() for d in formulary()) for q in rows) / len(rows)
    assert generic < 0.5


def test_misspell_changes_one_slip():
    import random

    rng = random.Random(0)
    for word in ("sertraline", "Lipitor", "amoxicillin"):
        slip = misspell(word, rng)
        assert slip != word and abs(len(slip) - len(word)) <= 1 and slip[0] == word[0]
    assert misspell("ASA", rng) == "ASA"


def test_ranking_metrics_by_hand():
    ranked = ["a", "b", "c", "d"]
    assert recall_at(ranked, {"c"}, 1) == 0 and recall_at(ranked, {"c"}, 5) == 1
    assert recall_at(ranked, {"a", "z"}, 5) == 0.5
    assert reciprocal_rank(ranked, {"c"}) == pytest.approx(1 / 3) and reciprocal_rank(ranked, {"z"}) == 0
    assert ndcg_at(ranked, {"a"}) == 1.0
    assert ndcg_at(ranked, {"b", "d"}) == pytest.approx((1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3)))
    assert set(query_scores(ranked, {"b"})) == {"recall@1", "recall@5", "recall@10", "mrr", "ndcg@10"}
    gain = paired_gain([0, 0, 1, 1], [1, 1, 1, 1])
    assert gain.value == 0.5 and gain.low <= 0.5 <= gain.high


def test_rrf_and_bm25():
    assert [pid for pid, _ in rrf([[("a", 9), ("b", 8)], [("b", 3), ("c", 2)]], 3)] == ["b", "a", "c"]
    ranker = BM25Ranker()
    ranker.fit(["x", "y", "z"], ["warfarin raises bleeding risk", "store tablets dry", "refill policy"])
    top = ranker.rank(["bleeding on warfarin", "where to store my tablets"], 2)
    assert top[0][0][0] == "x" and top[1][0][0] == "y"


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_bad_knowledge_base_rows_name_file_line_and_field(tmp_path):
    corpus, queries = tmp_path / "corpus.jsonl", tmp_path / "test.jsonl"
    _write(queries, [{"id": "q1", "text": "x?", "relevant": ["p1"]}])
    _write(corpus, [{"id": "p1", "text": "a"}, {"text": "no id"}])
    with pytest.raises(DataError, match=r"corpus.jsonl:2: id: missing"):
        load_split(tmp_path / "test")
    _write(corpus, [{"id": "p1", "text": "a"}, {"id": "p1", "text": "b"}])
    with pytest.raises(DataError, match=r"corpus.jsonl:2: id: duplicate id 'p1' \(first on line 1\)"):
        load_split(tmp_path / "test")
    _write(corpus, [{"id": "p1", "text": "a"}, {"id": "p2", "text": "b"}])
    _write(queries, [{"id": "q1", "text": "x?", "relevant": ["p1"]}, {"id": "q2", "text": "y?", "relevant": ["p2", "p9"]}])
    with pytest.raises(DataError, match=r"test.jsonl:2: relevant\[1\]: unknown passage id 'p9'"):
        load_split(tmp_path / "test")
    _write(queries, [{"id": "q1", "text": "x?", "relevant": []}])
    with pytest.raises(DataError, match=r"test.jsonl:1: relevant: expected a non-empty list"):
        load_split(tmp_path / "test.jsonl")
    with pytest.raises(MissingFileError):
        load_split(tmp_path / "validation")


def test_write_pharmacy_kb_refuses_to_overwrite(tmp_path):
    counts = write_pharmacy_kb(tmp_path / "kb", sizes={"train": 40, "validation": 20, "test": 30})
    assert counts == {"corpus": len(build_corpus()), "train": 40, "validation": 20, "test": 30}
    passages, queries = load_split(tmp_path / "kb" / "test")
    assert len(queries) == 30 and len(passages) == counts["corpus"]
    with pytest.raises(OutputExistsError):
        write_pharmacy_kb(tmp_path / "kb")
