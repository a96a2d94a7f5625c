"""A generated long-term memory benchmark: facts stated in one session, changed in a later one, asked later still.

Each simulated user of a pharmacy assistant states facts about themselves in session 1 (their pharmacy,
an allergy, a medicine and its dose, their doctor, their insurer, how to reach them); in session 2 some
of those facts change ("I switched to ...") and unrelated small talk comes in; in session 3 the user
asks about each fact. Every user shares the store with the others, whose facts are the distractors.

For each question, from the user's memory's top hit:

- ``recall``: the hit holds the fact's *current* value;
- ``stale``: the hit holds a value the user has since changed (asked only of changed facts);
- ``leak``: the hit belongs to another user (isolation makes this 0 by construction; it is still checked).

Statements land through :meth:`~agentladder.agents.memory.Memory.remember`, whose threshold decides whether
a statement changes an old fact or adds a new one; ``validation`` and ``test`` users are written in
their own families of phrasings, and the threshold is chosen on ``validation`` only.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from agentladder.agents.memory import Memory
from agentladder.agents.store import Store
from agentladder.errors import ConfigError

VALUES = {
    "pharmacy": ["the Main Street pharmacy", "the Elm Road pharmacy", "the pharmacy at Northgate mall",
                 "the hospital outpatient pharmacy", "the Riverside drugstore"],
    "allergy": ["penicillin", "sulfa drugs", "aspirin", "codeine", "latex"],
    "medicine": ["sertraline 50 mg", "metformin 500 mg", "lisinopril 10 mg", "atorvastatin 20 mg",
                 "levothyroxine 75 mcg", "omeprazole 20 mg"],
    "doctor": ["Dr. Patel", "Dr. Okafor", "Dr. Lindqvist", "Dr. Moreau", "Dr. Tanaka"],
    "insurance": ["BlueCross", "Aetna", "Medicare Part D", "Cigna", "UnitedHealthcare"],
    "contact": ["text messages", "email", "a phone call in the morning", "a phone call after 6 pm"],
}

PHRASES = {
    "validation": {
        "state": {"pharmacy": "I pick up my prescriptions at {v}.", "allergy": "I'm allergic to {v}.",
                  "medicine": "I take {v} every day.", "doctor": "My prescriber is {v}.",
                  "insurance": "My insurance is {v}.", "contact": "Please reach me by {v}."},
        "change": {"pharmacy": "I moved my prescriptions to {v}.", "allergy": "Turns out my allergy is to {v}, not what I said.",
                   "medicine": "My doctor changed me to {v} daily.", "doctor": "I see {v} now for prescriptions.",
                   "insurance": "I switched my insurance to {v}.", "contact": "From now on contact me by {v}."},
        "ask": {"pharmacy": "Which pharmacy do I use?", "allergy": "What am I allergic to?",
                "medicine": "What medicine do I take daily?", "doctor": "Who prescribes my medicine?",
                "insurance": "Which insurance do I have?", "contact": "How do I like to be contacted?"},
        "chat": ["The weather has been awful this week.", "My grandson starts school on Monday.",
                 "I've been walking more in the evenings."],
    },
    "test": {
        "state": {"pharmacy": "My usual pharmacy is {v}.", "allergy": "{v} gives me a bad allergic reaction.",
                  "medicine": "I'm on {v} once a day.", "doctor": "{v} is my doctor.",
                  "insurance": "I'm covered by {v}.", "contact": "The best way to reach me is {v}."},
        "change": {"pharmacy": "Please send everything to {v} from now on.",
                   "allergy": "Correction: the allergy is actually {v}.",
                   "medicine": "My dose was changed, now it's {v} a day.", "doctor": "My new doctor is {v}.",
                   "insurance": "New insurance card: I'm with {v} now.", "contact": "Actually I prefer {v} now."},
        "ask": {"pharmacy": "Where should my refill go?", "allergy": "Do I have any drug allergies?",
                "medicine": "Remind me what I'm taking every day?", "doctor": "What's my doctor's name again?",
                "insurance": "Who is my insurer?", "contact": "What's the best way to get in touch with me?"},
        "chat": ["We went to the lake at the weekend.", "My knee is a bit better today.",
                 "I finally fixed the garden fence."],
    },
}

THRESHOLDS = (0.45, 0.55, 0.65, 0.75, 0.85)
"""The ``remember`` thresholds tried on validation."""


@dataclass
class Question:
    user: str
    slot: str
    text: str
    current: str
    outdated: str | None


def scenario(split: str, n_users: int, seed: int = 0) -> tuple[list[tuple[str, list[str]]], list[Question]]:
    """``([(user, [statements in session order]), ...], questions)`` of ``split``."""
    if split not in PHRASES:
        raise ConfigError(f"unknown split {split!r}: choose validation or test")
    rng = random.Random(f"memory-bench:{split}:{seed}")
    phrases, users, questions = PHRASES[split], [], []
    for u in range(n_users):
        user = f"{split}-user-{u:03d}"
        values = {slot: rng.choice(options) for slot, options in VALUES.items()}
        said = [phrases["state"][slot].format(v=v) for slot, v in values.items()]
        said.append(rng.choice(phrases["chat"]))
        outdated: dict[str, str] = {}
        for slot in rng.sample(list(VALUES), 2):
            new = rng.choice([v for v in VALUES[slot] if v != values[slot]])
            outdated[slot], values[slot] = values[slot], new
            said.append(phrases["change"][slot].format(v=new))
        said.append(rng.choice(phrases["chat"]))
        users.append((user, said))
        questions += [Question(user, slot, phrases["ask"][slot], values[slot], outdated.get(slot)) for slot in VALUES]
    return users, questions


def run_benchmark(split: str, n_users: int = 30, *, threshold: float | None = None, embedder: str | None = None,
                  seed: int = 0, store: str = ":memory:") -> dict[str, float]:
    """Play ``split``'s sessions into a fresh memory and score the questions: recall, stale, leak, updates."""
    users, questions = scenario(split, n_users, seed)
    memory = Memory(Store(store), embedder=embedder, **({} if threshold is None else {"threshold": threshold}))
    for user, said in users:
        for text in said:
            memory.remember(text, user=user)
    owners = {fid: user for user, _ in users for fid in memory.facts(user=user)}
    recall = stale = leak = changed = 0
    for q in questions:
        top = memory.search(q.text, user=q.user, k=1)
        hit = top[0] if top else None
        recall += bool(hit and q.current in hit.text)
        leak += bool(hit and owners.get(hit.id) != q.user)
        if q.outdated is not None:
            changed += 1
            stale += bool(hit and q.outdated in hit.text)
    facts = sum(len(memory.facts(user=u)) for u, _ in users)
    return {"recall": recall / len(questions), "stale": stale / max(changed, 1), "leak": leak / len(questions),
            "questions": len(questions), "facts_per_user": facts / len(users)}


def choose_threshold(n_users: int = 30, *, embedder: str | None = None, seed: int = 0,
                     thresholds: tuple[float, ...] = THRESHOLDS) -> tuple[float, dict[float, dict[str, float]]]:
    """The threshold with the best validation recall (ties: less stale, then the higher threshold)."""
    tried = {t: run_benchmark("validation", n_users, threshold=t, embedder=embedder, seed=seed) for t in thresholds}
    best = max(tried, key=lambda t: (tried[t]["recall"], -tried[t]["stale"], t))
    return best, tried


__all__ = ["THRESHOLDS", "Question", "choose_threshold", "run_benchmark", "scenario"]
