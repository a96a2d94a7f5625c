"""The retrieval task: a pharmacy knowledge base, questions in customers' words, rankers and ranking metrics.

``agentladder data make pharmacy-kb --out kb/`` writes a folder in the documented form
(:mod:`~agentladder.tasks.retrieval.kb`); ``agentladder eval --task retrieval`` scores rankers on any such
folder (:mod:`agentladder.evals.retrieval`).
"""

from agentladder.tasks.retrieval.corpus import build_corpus
from agentladder.tasks.retrieval.kb import (
    CORPUS,
    Passage,
    Query,
    load_corpus,
    load_queries,
    load_split,
    write_pharmacy_kb,
)
from agentladder.tasks.retrieval.metrics import (
    KS,
    ndcg_at,
    query_scores,
    recall_at,
    reciprocal_rank,
)
from agentladder.tasks.retrieval.queries import generate_queries
from agentladder.tasks.retrieval.rankers import (
    BM25Ranker,
    DenseRanker,
    HybridRanker,
    make_ranker,
    rrf,
)

__all__ = [
    "CORPUS", "KS", "BM25Ranker", "DenseRanker", "HybridRanker", "Passage", "Query", "build_corpus",
    "generate_queries", "load_corpus", "load_queries", "load_split", "make_ranker", "ndcg_at", "query_scores",
    "recall_at", "reciprocal_rank", "rrf", "write_pharmacy_kb",
]
