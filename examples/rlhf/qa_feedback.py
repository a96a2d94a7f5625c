"""Pharmacy Q&A with simulated expert feedback: the questions, the candidate answers and the rubric grader.

The questions are the pharmacy knowledge base's (``agentladder data make pharmacy-kb``: each split has
its own phrasings). Each prompt shows two passages, the one that answers the question and a
distractor of another drug or policy, in a seeded order, with their ids; the specialist answers
from them and cites the passage it used as ``[passage id]``.

The expert is simulated by :func:`grade`, a documented rubric (``qa_rubric.md``) that prefers
correct, specific, cited, concise answers:

- **correct**: every number in the answer is in the answering passage, and at least 60 % of the
  answer's content words (4+ letters, outside the citation) are in the passage or the question;
  an answer that fails is graded 1 (under 30 % overlap: off the passage, or empty) or 2;
- a correct answer starts at 2 and gains one point for each of: **specific** (it quotes a number of
  the passage, or, for a passage without numbers, six of its content words), **cited** (it names the
  answering passage as ``[id]`` and no other), **concise** (at most 45 words). So 5 is correct,
  specific, cited and concise.

Candidate answers to a training question (:func:`candidates`) are what a help desk writes: the
passage's key sentences cited, the same uncited, the whole passage padded with pleasantries, a vague
deflection, the distractor's sentences, and the right sentences with a figure changed. Each is graded,
and two candidates of different grades make a pair (the higher chosen), as an expert ranking two
answers would. Recorded expert feedback in the same form (``{"prompt", "chosen", "rejected"}`` pairs,
``{"prompt", "completion", "grade", "reasons"}`` grades) is used the same way (``run_qa.py --pairs``,
``--grades``).
"""

from __future__ import annotations

import random
import re
from typing import Any

from agentladder.tasks.retrieval.corpus import build_corpus
from agentladder.tasks.retrieval.queries import generate_queries

SYSTEM = ("You are a pharmacy assistant. Answer the customer's question from the passages below, "
          "in one or two sentences, and cite the passage you used as [passage id].")
WORD = re.compile(r"[a-z]{4,}")
NUMBER = re.compile(r"\d+(?:\.\d+)?")
CITE = re.compile(r"\[([a-z0-9:_\-]+)\]")
STOP = {"with", "that", "this", "from", "your", "have", "what", "when", "which", "there", "their", "will",
        "should", "take", "about", "into", "than", "then", "them", "they", "been", "does", "also", "only",
        "passage", "answer", "question"}
PADDING = ("Thank you for your question! ", "I hope this helps, and please do not hesitate to ask us anything else. "
           "Our pharmacists are always happy to help you with your medicines.")
VAGUE = ("It depends on your situation; follow the label and talk to your pharmacist or doctor if you are unsure.",
         "Everyone is different, so please check with a healthcare professional before changing anything.")


def passages() -> dict[str, str]:
    """The knowledge base's passages by id."""
    return {p["id"]: p["text"] for p in build_corpus()}


def body(text: str) -> str:
    """A passage without its heading (``"Ibuprofen dosing: ..."`` -> ``"..."``)."""
    head, sep, rest = text.partition(": ")
    return rest if sep and len(head) < 40 else text


def sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.;])\s+(?=[A-Z])", body(text)) if s.strip()]


def key_answer(text: str) -> str:
    """The passage's first two sentences: what a good answer says."""
    return " ".join(sentences(text)[:2])


def _content(text: str) -> list[str]:
    return [w for w in WORD.findall(CITE.sub(" ", text.lower())) if w not in STOP]


def grade(answer: str, passage_id: str, passage: str, question: str = "") -> tuple[int, str]:
    """The rubric's grade (1-5) of ``answer`` and the reasons (see the module docstring)."""
    words = _content(answer)
    if not words:
        return 1, "no answer"
    known = set(_content(passage)) | set(_content(question))
    overlap = sum(w in known for w in words) / len(words)
    figures = set(NUMBER.findall(CITE.sub(" ", answer)))
    invented = figures - set(NUMBER.findall(passage))
    if invented or overlap < 0.6:
        why = f"states {', '.join(sorted(invented))}, not in the passage" if invented else "not what the passage says"
        return (1 if overlap < 0.3 else 2), f"wrong: {why}"
    passage_numbers = set(NUMBER.findall(passage))
    specific = bool(figures & passage_numbers) if passage_numbers else len(set(words) & known) >= 6
    cited_ids = set(CITE.findall(answer))
    cited = cited_ids == {passage_id}
    concise = len(answer.split()) <= 45
    reasons = ["correct", "specific" if specific else "vague",
               "cited" if cited else ("cites the wrong passage" if cited_ids else "no source"),
               "concise" if concise else "too long"]
    return 2 + specific + cited + concise, ", ".join(reasons)


def gold_score(completion: str, target: Any, metadata: dict[str, Any]) -> float:
    """The rubric grade as an RL reward (``{type: python, fn: qa_feedback:gold_score}``): the monitor's gold."""
    return float(grade(completion, metadata["passage_id"], metadata["passage"], metadata.get("question", ""))[0])


def questions(kb_dir: str | None, split: str, n: int, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` questions of ``split`` with their answering passage and a distractor, as prompt rows."""
    from pathlib import Path

    from agentladder.tasks.retrieval.kb import load_queries

    texts = passages()
    if kb_dir:
        rows = [{"id": q.id, "text": q.text, "relevant": list(q.relevant)}
                for q in load_queries(Path(kb_dir) / f"{split}.jsonl", set(texts))][:n]
    else:
        rows = generate_queries(split, n, seed)
    ids = sorted(texts)
    rng = random.Random(f"qa:{split}:{seed}")
    out = []
    for q in rows:
        pid = q["relevant"][0]
        other = rng.choice([i for i in ids if i.split(":")[:2] != pid.split(":")[:2]])
        shown = [pid, other] if rng.random() < 0.5 else [other, pid]
        context = "\n".join(f"[{i}] {texts[i]}" for i in shown)
        prompt = [{"role": "system", "content": SYSTEM},
                  {"role": "user", "content": f"Passages:\n{context}\n\nQuestion: {q['text']}"}]
        out.append({"id": q["id"], "prompt": prompt,
                    "metadata": {"passage_id": pid, "passage": texts[pid], "distractor": other,
                                 "question": q["text"]}})
    return out


def candidates(row: dict[str, Any], rng: random.Random) -> list[str]:
    """A help desk's answers of mixed quality to one question (see the module docstring)."""
    meta = row["metadata"]
    pid, text, other = meta["passage_id"], meta["passage"], meta["distractor"]
    good = key_answer(text)
    numbers = NUMBER.findall(good)
    changed = good
    if numbers:
        n = rng.choice(numbers)
        changed = re.sub(rf"\b{re.escape(n)}\b", str(int(float(n)) * 2 + 1), good, count=1)
    return [f"{good} [{pid}]", good, f"{PADDING[0]}{body(text)} {PADDING[1]} [{pid}]", f"{rng.choice(VAGUE)}",
            f"{key_answer(passages()[other])} [{other}]", f"{changed} [{pid}]"]


def sft_rows(rows: list[dict[str, Any]], seed: int = 0) -> list[dict[str, Any]]:
    """Demonstrations of mixed quality, as support logs are: half cited and concise, a quarter uncited,
    a quarter the whole passage padded."""
    rng = random.Random(f"qa-sft:{seed}")
    out = []
    for row in rows:
        c = candidates(row, rng)
        roll = rng.random()
        answer = c[0] if roll < 0.5 else (c[1] if roll < 0.75 else c[2])
        out.append({"id": row["id"], "messages": [*row["prompt"], {"role": "assistant", "content": answer}]})
    return out


def feedback(rows: list[dict[str, Any]], pairs_per_question: int = 1, seed: int = 0
             ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(pairs, grades)``: each question's candidates graded by the rubric; ``pairs_per_question`` pairs
    of two candidates of different grades (the higher chosen), and one graded candidate per question."""
    rng = random.Random(f"qa-feedback:{seed}")
    pairs, grades = [], []
    for row in rows:
        meta = row["metadata"]
        graded = [(a, *grade(a, meta["passage_id"], meta["passage"], meta["question"]))
                  for a in candidates(row, rng)]
        options = [(x, y) for x in graded for y in graded if x[1] > y[1]]
        for k, (hi, lo) in enumerate(rng.sample(options, min(pairs_per_question, len(options)))):
            pairs.append({"id": f"{row['id']}-p{k}", "prompt": row["prompt"], "chosen": hi[0], "rejected": lo[0],
                          "metadata": {"grades": [hi[1], lo[1]]}})
        answer, g, reasons = rng.choice(graded)
        grades.append({"id": f"{row['id']}-g", "prompt": row["prompt"], "completion": answer, "grade": g,
                       "reasons": reasons})
    return pairs, grades


__all__ = ["SYSTEM", "candidates", "feedback", "gold_score", "grade", "passages", "questions", "sft_rows"]
