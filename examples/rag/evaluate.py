"""Score the self-evaluating RAG agent on a knowledge base's queries, one embedder or several side by side.

    agentladder data make pharmacy-kb --out kb/
    python examples/rag/evaluate.py --data kb/validation --embedder minilm --k 3 --k 5 --n 40 --out rag-val
    python examples/rag/evaluate.py --data kb/test --embedder minilm --embedder runs/embed1 --k 5 \\
        --threshold 4 --n 100 --out rag-test

The answering model and the judge are ``--model`` (default the packaged SmolLM2-135M). Graded per query,
from nothing but the knowledge-base folder (the passages and each query's ``relevant`` ids), so any
folder in the documented form is scored and no generator template is consulted:

- ``correct``: the answer's content words (lower-case words and numbers, English stop words, the
  bracketed citations and the question's own words removed, so restating the question earns nothing;
  at least 3 of them) overlap one of the query's relevant passages more
  than any other passage of the corpus (set F1 of content words). An answer that says nothing, or
  that restates another passage (another drug's dose, the storage instead of the dosing), is wrong;
- ``supported``: the share of the answer's content words found in the retrieved passages or the
  question (a lexical faithfulness grade, independent of the judge);
- ``judge_pass``: the judge passed the final answer (its faithfulness and relevance both at least
  the threshold);
- ``citation_precision``: over every id the answers cite, the share that is relevant to the query;
  ``cites``: answers citing at least one retrieved id; ``recall@k``: a relevant passage was retrieved;
- ``revised``, ``escalated``: how the loop ended.

Each run writes ``OUT/EMBEDDER-kK.jsonl`` (one row per query, resumed when the command runs again)
and ``OUT/summary.json``. ``--choose`` (on validation) also reports, for thresholds 1-5, how often the
judge's verdict on the first answer agrees with ``correct``: the threshold to keep is the most
agreeing one.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rag import CITATION, RagAgent, RagResult  # noqa: E402
from rich.progress import Progress  # noqa: E402
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS  # noqa: E402

from agentladder.agents import VectorIndex  # noqa: E402
from agentladder.data.io import write_jsonl  # noqa: E402
from agentladder.tasks.retrieval.kb import Passage, Query, load_split  # noqa: E402

MIN_CONTENT = 3


def content_words(text: str) -> set[str]:
    """Lower-case words and numbers of ``text``, without English stop words and ``[citation]`` ids."""
    return {w for w in re.findall(r"[a-z0-9]+", CITATION.sub(" ", text).lower()) if w not in ENGLISH_STOP_WORDS}


def _f1(a: set[str], b: set[str]) -> float:
    common = len(a & b)
    return 0.0 if not common else 2 * common / (len(a) + len(b))


def grade(result: RagResult, query: Query, corpus_words: dict[str, set[str]]) -> dict[str, Any]:
    """The per-query grades of the module docstring."""
    words = content_words(result.answer) - content_words(query.text)  # what the answer adds to the question
    best = max(corpus_words, key=lambda pid: _f1(words, corpus_words[pid])) if words else None
    allowed = set().union(*(content_words(t) for t in result.passages.values()), content_words(query.text))
    return {
        "id": query.id, "question": query.text, "relevant": list(query.relevant), "answer": result.answer,
        "answers": result.answers, "status": result.status, "citations": result.citations,
        "retrieved": list(result.passages),
        "verdicts": [v.model_dump() if v is not None else None for v in result.verdicts],
        "correct": bool(words) and len(words) >= MIN_CONTENT and best in query.relevant,
        "closest_passage": best,
        "supported": len(words & allowed) / len(words) if words else 0.0,
        "judge_pass": result.status != "escalated",
        "cited_relevant": sum(c in query.relevant for c in result.citations),
        "retrieved_relevant": any(p in query.relevant for p in result.passages),
    }


def summarise(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Means over queries (citation precision over all citations)."""
    n = len(rows)
    cited = sum(len(r["citations"]) for r in rows)
    return {
        "n": n,
        "correct": sum(r["correct"] for r in rows) / n,
        "supported": sum(r["supported"] for r in rows) / n,
        "judge_pass": sum(r["judge_pass"] for r in rows) / n,
        "citation_precision": sum(r["cited_relevant"] for r in rows) / cited if cited else 0.0,
        "cites": sum(bool(r["citations"]) for r in rows) / n,
        "recall@k": sum(r["retrieved_relevant"] for r in rows) / n,
        "revised": sum(r["status"] == "revised" for r in rows) / n,
        "escalated": sum(r["status"] == "escalated" for r in rows) / n,
    }


def judge_agreement(rows: list[dict[str, Any]]) -> dict[int, float]:
    """For each threshold 1-5: how often 'the judge passes the first answer' equals 'the first answer is correct'.

    Uses the first answer and its verdict only, which do not depend on the threshold the run used.
    """
    out = {}
    for t in range(1, 6):
        agree = 0
        for r in rows:
            v = r["verdicts"][0]
            passed = v is not None and min(v["faithfulness"], v["relevance"]) >= t
            agree += passed == r["first_correct"]
        out[t] = agree / len(rows)
    return out


def run(agent: RagAgent, queries: list[Query], corpus: list[Passage], path: Path,
        progress: Progress | None = None) -> list[dict[str, Any]]:
    """Every query through ``agent``, graded; rows already in ``path`` are kept (a killed run resumes)."""
    corpus_words = {p.id: content_words(p.text) for p in corpus}
    rows = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    done = {r["id"] for r in rows}
    task = progress.add_task(path.stem, total=len(queries), completed=len(done)) if progress else None
    for q in queries:
        if q.id in done:
            continue
        result = agent.ask(q.text)
        row = grade(result, q, corpus_words)
        first = RagResult(q.text, result.answers[0], [], result.passages)
        row["first_correct"] = grade(first, q, corpus_words)["correct"]
        rows.append(row)
        write_jsonl(path, rows)
        if progress is not None:
            progress.advance(task)
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="a query file of a knowledge-base folder (kb/test)")
    ap.add_argument("--embedder", action="append", required=True)
    ap.add_argument("--model", default="smollm2-135m", help="the answering model and its judge")
    ap.add_argument("--k", type=int, action="append", help="passages retrieved (repeat to compare)")
    ap.add_argument("--threshold", type=int, default=4, help="the judge's passing grade (1-5)")
    ap.add_argument("--n", type=int, default=100, help="the first N queries")
    ap.add_argument("--choose", action="store_true", help="also report the judge's agreement per threshold")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    corpus, queries = load_split(args.data)
    queries = queries[: args.n]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {}
    with Progress() as progress:
        for embedder in args.embedder:
            index = VectorIndex(":memory:", "kb", embedder=embedder)
            index.add({"id": p.id, "text": p.text} for p in corpus)
            for k in args.k or [5]:
                agent = RagAgent(index, answerer=args.model, k=k, threshold=args.threshold)
                name = f"{Path(embedder).name}-k{k}"
                rows = run(agent, queries, corpus, out / f"{name}.jsonl", progress)
                summary[name] = summarise(rows)
                if args.choose:
                    summary[name]["judge_agreement"] = judge_agreement(rows)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
