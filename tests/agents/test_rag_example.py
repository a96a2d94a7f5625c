"""The self-evaluating RAG example (examples/rag): its loop's branches with scripted models, and its graders."""

import json
import sys
from pathlib import Path

import pytest

from agentladder.agents import ScriptedChat, VectorIndex
from agentladder.models.tiny import write_tiny_encoder
from agentladder.tasks.retrieval.kb import Passage, Query

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "rag"

PASSAGES = [
    {"id": "warfarin:dosing", "text": "Warfarin dosing: usually 2 to 10 mg once a day, adjusted to the INR blood test."},
    {"id": "warfarin:storage", "text": "Store warfarin at room temperature away from light and moisture."},
    {"id": "policy:refills", "text": "Refills can be ordered once 75 percent of the supply has been used."},
]
QUESTION = "how much coumadin do i take"
GOOD = "Usually 2 to 10 mg of warfarin once a day, adjusted to your INR blood test [warfarin:dosing]."
BAD = "Take 50 mg every hour [warfarin:storage] [made:up]."


@pytest.fixture(scope="module")
def rag():
    # Other examples have modules named evaluate and rag too: drop any already imported before loading ours.
    saved = {name: sys.modules.pop(name) for name in ("evaluate", "rag") if name in sys.modules}
    sys.path.insert(0, str(EXAMPLE))
    try:
        import evaluate
        import rag

        yield rag, evaluate
    finally:
        sys.path.remove(str(EXAMPLE))
        for name in ("evaluate", "rag"):
            sys.modules.pop(name, None)
        sys.modules.update(saved)


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    words = [p["text"] for p in PASSAGES] + [QUESTION]
    encoder = write_tiny_encoder(tmp_path_factory.mktemp("enc") / "e", words, seed=3)
    index = VectorIndex(":memory:", "kb", embedder=encoder)
    index.add(PASSAGES)
    return index


def verdict(f: int, r: int, reason: str = "ok") -> str:
    return json.dumps({"faithfulness": f, "relevance": r, "reason": reason})


def test_a_good_answer_passes_at_once(rag, index):
    answerer, judge = ScriptedChat([GOOD]), ScriptedChat([verdict(5, 5)])
    result = rag[0].RagAgent(index, answerer=answerer, judge=judge, k=3, threshold=4).ask(QUESTION)
    assert result.status == "answered" and result.answer == GOOD and result.citations == ["warfarin:dosing"]
    assert set(result.passages) == {p["id"] for p in PASSAGES}  # all three retrieved (k = 3), shown to both
    prompt = answerer.calls[0][-1].content
    assert all(f"[{p['id']}] {p['text']}" in prompt for p in PASSAGES) and QUESTION in prompt
    assert GOOD in judge.calls[0][-1].content and len(answerer.calls) == 1
    assert answerer.calls[0][2].content == rag[0].ANSWER_SHOT[1]  # the worked example, after the system turn
    assert judge.calls[0][2].content == rag[0].JUDGE_SHOT[1]


def test_a_failed_answer_is_revised_with_the_judges_reason(rag, index):
    answerer = ScriptedChat([BAD, GOOD])
    judge = ScriptedChat([verdict(1, 4, "the dose is not in the passages"), verdict(5, 5)])
    result = rag[0].RagAgent(index, answerer=answerer, judge=judge, k=3, threshold=4).ask(QUESTION)
    assert result.status == "revised" and result.answers == [BAD, GOOD] and result.answer == GOOD
    revise = answerer.calls[1][-1].content
    assert BAD in revise and "faithfulness 1/5" in revise and "the dose is not in the passages" in revise
    assert [v.faithfulness for v in result.verdicts] == [1, 5]


def test_a_revision_that_fails_again_is_escalated(rag, index):
    answerer = ScriptedChat([BAD, BAD])
    judge = ScriptedChat([verdict(2, 2), verdict(3, 5)])  # 3 < threshold 4 still fails
    result = rag[0].RagAgent(index, answerer=answerer, judge=judge, k=3, threshold=4).ask(QUESTION)
    assert result.status == "escalated" and len(result.answers) == 2
    assert result.citations == ["warfarin:storage"]  # made:up was never retrieved, so it is no citation
    # the same answers pass with a lower threshold: the threshold decides
    again = rag[0].RagAgent(index, answerer=ScriptedChat([BAD]), judge=ScriptedChat([verdict(3, 5)]),
                            k=3, threshold=3).ask(QUESTION)
    assert again.status == "answered"


def test_a_judge_without_a_valid_verdict_fails_the_answer(rag, index):
    judge = ScriptedChat([], default="I think it is fine")  # never a JSON object, even after the retry
    result = rag[0].RagAgent(index, answerer=ScriptedChat([GOOD, GOOD]), judge=judge, k=3).ask(QUESTION)
    assert result.status == "escalated" and result.verdicts == [None, None]


def test_the_graders(rag):
    _, ev = rag
    corpus = [Passage(p["id"], p["text"]) for p in PASSAGES]
    words = {p.id: ev.content_words(p.text) for p in corpus}
    query = Query("q1", QUESTION, ("warfarin:dosing",))
    passages = {p["id"]: p["text"] for p in PASSAGES[:2]}

    def graded(answer, cites):
        return ev.grade(rag[0].RagResult(QUESTION, answer, cites, passages, answers=[answer]), query, words)

    good = graded(GOOD, ["warfarin:dosing"])
    assert good["correct"] and good["closest_passage"] == "warfarin:dosing" and good["supported"] == 1.0
    wrong = graded("Keep it at room temperature, away from light [warfarin:dosing].", ["warfarin:dosing"])
    assert not wrong["correct"] and wrong["closest_passage"] == "warfarin:storage"  # the citation is not read
    empty = graded("I do not know.", [])
    assert not empty["correct"] and empty["supported"] == 0.0
    invented = graded("Warfarin cures headaches quickly.", [])
    assert invented["supported"] == pytest.approx(1 / 4)  # only 'warfarin' is in the passages
    rows = [{**good, "first_correct": True}, {**wrong, "first_correct": False, "status": "escalated",
                                              "judge_pass": False, "cited_relevant": 1}]
    rows[0]["verdicts"], rows[1]["verdicts"] = [{"faithfulness": 5, "relevance": 5}], [None]
    s = ev.summarise(rows)
    assert s["correct"] == 0.5 and s["citation_precision"] == 1.0 and s["escalated"] == 0.5
    assert ev.judge_agreement(rows) == {t: 1.0 for t in range(1, 6)}
