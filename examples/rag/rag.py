"""A self-evaluating RAG agent: retrieve, answer with citations, judge, revise once or escalate.

    from rag import RagAgent
    rag = RagAgent(index, answerer="smollm2-135m", judge="smollm2-135m", k=5, threshold=4)
    result = rag.ask("how should I store my Synthroid")
    result.status      # "answered", "revised" or "escalated"
    result.answer, result.citations, result.verdicts

1. **Retrieve**: ``retriever_tool(index, k)`` is called with the question, every time (a 135M model
   does not call tools reliably, and a RAG answer should always rest on passages); its ``[id] text``
   lines are the context.
2. **Answer**: the answering agent sees the passages and the question and is told to use only the
   passages and to cite the ids it used in square brackets. Citations are read back from the answer
   (only ids that were retrieved count).
3. **Judge**: a judge agent (any model; the same one by default) grades the answer on two 1-5
   scales, ``faithfulness`` (every claim is stated in the passages) and ``relevance`` (it answers the
   question), as a JSON object validated by pydantic. The answer passes when both are at least
   ``threshold``. A judge whose reply stays invalid fails the answer: it could not be checked.
4. **Revise or escalate**: a failed answer is rewritten once, the judge's scores and reason shown to the
   answering model; when the revision fails too the case is escalated (``status="escalated"``, for a
   pharmacist) with everything the agent saw and said.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field

from agentladder.agents import Agent, OutputValidationError, retriever_tool

ANSWER_SYSTEM = (
    "You are a pharmacy assistant. Answer the customer's question using only the passages below. "
    "After each sentence, cite the id of the passage it comes from in square brackets, like "
    "[drug:ibuprofen:dosing]. If the passages do not answer the question, say so. Be brief.")

JUDGE_SYSTEM = (
    "You grade a pharmacy assistant's answer. Faithfulness: 5 when every statement of the answer is "
    "stated in the passages, 1 when it invents facts. Relevance: 5 when it answers the question asked, "
    "1 when it does not. Reply with only a JSON object: "
    '{"faithfulness": 1-5, "relevance": 1-5, "reason": "one sentence"}.')

CITATION = re.compile(r"\[([^\[\]\s]+)\]")

ANSWER_SHOT = (
    "Passages:\n[drug:ibuprofen:storage] Store ibuprofen at room temperature, away from moisture.\n"
    "[policy:hours] The pharmacy is open from 9 to 6.\n\nQuestion: where do i keep advil",
    "Keep ibuprofen (Advil) at room temperature, away from moisture [drug:ibuprofen:storage].")
JUDGE_SHOT = (
    "Passages:\n[drug:ibuprofen:storage] Store ibuprofen at room temperature, away from moisture.\n\n"
    "Question: where do i keep advil\n\nAnswer: Keep it in the fridge [drug:ibuprofen:storage].",
    '{"faithfulness": 1, "relevance": 5, "reason": "the passage says room temperature, not the fridge"}')
"""One worked example each, shown as an earlier turn (``shots=True``): a small model copies the form."""


class Verdict(BaseModel):
    """The judge's grades of one answer."""

    faithfulness: int = Field(ge=1, le=5)
    relevance: int = Field(ge=1, le=5)
    reason: str = ""


@dataclass
class RagResult:
    """One question's run: the final answer, what it cites, every verdict, and how it ended."""

    question: str
    answer: str
    citations: list[str]
    passages: dict[str, str]
    verdicts: list[Verdict | None] = field(default_factory=list)
    """The judge's verdict of each answer (the first, then the revision); ``None``: no valid verdict."""
    answers: list[str] = field(default_factory=list)
    status: str = "answered"
    """``answered`` (the first answer passed), ``revised`` (the revision passed) or ``escalated``."""


def parse_passages(text: str) -> dict[str, str]:
    """The retriever tool's ``[id] text`` lines as ``{id: text}``."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"\[([^\]]+)\] (.*)", line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


def citations(answer: str, retrieved: dict[str, str]) -> list[str]:
    """The retrieved ids the answer cites, in first-cited order (anything else in brackets is ignored)."""
    seen: list[str] = []
    for pid in CITATION.findall(answer):
        if pid in retrieved and pid not in seen:
            seen.append(pid)
    return seen


def _context(passages: dict[str, str]) -> str:
    return "\n".join(f"[{pid}] {text}" for pid, text in passages.items())


class RagAgent:
    """The loop of the module docstring over ``index`` (a ``VectorIndex`` or ``PgVectorIndex``)."""

    def __init__(self, index: Any, *, answerer: Any, judge: Any = None, k: int = 5, threshold: int = 4,
                 hybrid: bool = False, max_new_tokens: int = 96, shots: bool = True):
        self.retrieve = retriever_tool(index, k, hybrid=hybrid)
        self.threshold = threshold
        self.answerer = Agent(answerer, system=ANSWER_SYSTEM, name="rag_answerer", max_new_tokens=max_new_tokens,
                              examples=[ANSWER_SHOT] if shots else [])
        self.judge = Agent(judge if judge is not None else answerer, system=JUDGE_SYSTEM, output=Verdict,
                           name="rag_judge", max_retries=1, output_instructions=False, max_new_tokens=64,
                           examples=[JUDGE_SHOT] if shots else [])

    def passes(self, verdict: Verdict | None) -> bool:
        """Both grades at least the threshold (no valid verdict: fails)."""
        return verdict is not None and min(verdict.faithfulness, verdict.relevance) >= self.threshold

    def grade(self, question: str, passages: dict[str, str], answer: str) -> Verdict | None:
        """The judge's verdict, ``None`` when its reply stays invalid."""
        prompt = f"Passages:\n{_context(passages)}\n\nQuestion: {question}\n\nAnswer: {answer}"
        try:
            return self.judge.run(prompt).output
        except OutputValidationError:
            return None

    def ask(self, question: str) -> RagResult:
        """Retrieve, answer, judge; revise once, then escalate (see the module docstring)."""
        passages = parse_passages(self.retrieve.fn(query=question))
        context = f"Passages:\n{_context(passages)}\n\nQuestion: {question}"
        result = RagResult(question, "", [], passages)
        answer = self.answerer.run(context).output
        for attempt in range(2):
            verdict = self.grade(question, passages, answer)
            result.answers.append(answer)
            result.verdicts.append(verdict)
            if self.passes(verdict):
                result.status = "answered" if attempt == 0 else "revised"
                break
            if attempt == 0:
                why = (f"faithfulness {verdict.faithfulness}/5, relevance {verdict.relevance}/5: {verdict.reason}"
                       if verdict is not None else "the answer could not be checked")
                answer = self.answerer.run(
                    f"{context}\n\nYour earlier answer was: {answer}\nA reviewer found it lacking ({why}). "
                    "Rewrite it using only the passages, citing their ids in square brackets.").output
        else:
            result.status = "escalated"
        result.answer = result.answers[-1]
        result.citations = citations(result.answer, passages)
        return result
