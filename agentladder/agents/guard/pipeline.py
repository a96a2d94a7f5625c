"""One guard pipeline: ``Guard.check(text, where=...)`` finds personal data, denied topics and prompt
injection, masks what the policy masks and says whether the text is blocked, and by which rule.

The agents runtime calls it on the user's input, on every answer of the model and on every tool
result (``Agent(..., guard=Guard.from_yaml("guard.yaml"))``); a gateway calls the same method per
request and response, per key or team (``account=``), and reads the cost from :meth:`Guard.usage`.

A check runs, in order: the PII detector (patterns, then NER), the injection detector (where the
policy looks for injection), the denied topics (on input and output), then masking. Every detector
reads the :class:`~agentladder.agents.guard.text.TextView` of the text, and every span it reports is
a span of the original text in characters.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from agentladder.agents.guard.embed import embed, segments
from agentladder.agents.guard.injection import InjectionDetector, load_injection_detector
from agentladder.agents.guard.masking import Placeholders, apply_masks
from agentladder.agents.guard.ner import NER
from agentladder.agents.guard.pii import PIIDetector
from agentladder.agents.guard.policy import WHERE, GuardPolicy, load_policy, parse_policy
from agentladder.agents.guard.text import TextView
from agentladder.agents.guard.topics import TopicDetector, load_topic_detector
from agentladder.errors import AgentladderError, ConfigError


@dataclass(frozen=True)
class Finding:
    """One thing the guard found: personal data, a denied topic or an injection."""

    kind: str
    """``pii``, ``topic`` or ``injection``."""
    type: str
    """The entity type (``SSN``), the topic's name, or ``INJECTION``."""
    start: int
    """Start of the span in the checked text, in characters (the whole text for a topic or a classifier's verdict)."""
    end: int
    score: float
    rule: str
    """The rule that fired: ``pii.ssn.ranges``, ``denied_topic.NAME.similarity``, ``injection.heuristic.NAME``..."""
    action: str
    """``mask``, ``replace``, ``block`` or ``flag``."""

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "score": round(self.score, 4)}


@dataclass
class GuardResult:
    """What one check found and decided. ``text`` is what may be shown, recorded or exported."""

    text: str
    """The checked text with personal data masked (also when the text is blocked)."""
    where: str
    policy: str
    findings: list[Finding] = field(default_factory=list)
    blocked: bool = False
    rule: str | None = None
    """The rule of the first finding that blocked the text."""
    message: str | None = None
    """Why the text was blocked, in one sentence (no personal data in it)."""
    seconds: float = 0.0
    characters: int = 0
    """Length of the checked text (the unit the guard's cost is counted in)."""

    @property
    def intervened(self) -> bool:
        """Whether anything was found (masked, flagged or blocked)."""
        return bool(self.findings)

    def audit_data(self) -> dict[str, Any]:
        """The audit row's data: policy, place, decision, rule and findings (types, spans, scores), never the text."""
        return {"policy": self.policy, "where": self.where, "blocked": self.blocked, "rule": self.rule,
                "findings": [f.to_json() for f in self.findings], "characters": self.characters,
                "ms": round(self.seconds * 1000, 3)}

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, **self.audit_data(), "message": self.message}

    def openai_error(self) -> dict[str, Any]:
        """The body of an OpenAI-style error for a blocked request (HTTP 400), for a gateway to return."""
        return {"error": {"message": self.message or "blocked by the guard", "type": "invalid_request_error",
                          "param": "messages" if self.where == "input" else None, "code": "content_policy_violation",
                          "guard": {"policy": self.policy, "rule": self.rule, "where": self.where}}}


class GuardBlocked(AgentladderError, RuntimeError):
    """A text the guard refused: ``.result`` holds the policy, the rule and the masked text."""

    def __init__(self, result: GuardResult):
        self.result = result
        super().__init__(f"guard {result.policy!r} blocked the {result.where.replace('_', ' ')}: {result.message}")


@dataclass
class GuardUsage:
    """What checks cost: the counter a chargeback report reads (per account, or in total)."""

    checks: int = 0
    characters: int = 0
    seconds: float = 0.0
    blocked: int = 0
    masked: int = 0
    """Personal-data spans masked or replaced (also in a blocked text: what is recorded of it is masked)."""
    findings: dict[str, int] = field(default_factory=dict)
    """Findings by kind (``pii``, ``topic``, ``injection``)."""

    def add(self, result: GuardResult) -> None:
        self.checks += 1
        self.characters += result.characters
        self.seconds += result.seconds
        self.blocked += int(result.blocked)
        self.masked += sum(f.kind == "pii" for f in result.findings)  # blocked ones too: masked where recorded
        for f in result.findings:
            self.findings[f.kind] = self.findings.get(f.kind, 0) + 1


@dataclass
class Scan:
    """A check's raw scores before any strength is applied (what ``guard eval`` needs at every strength)."""

    pii: list[Finding]
    injection: tuple[float, str, tuple[int, int] | None] | None
    topics: list[tuple[str, float, str]]


class Guard:
    """A policy and its detectors. See the module docstring.

    ``ner`` overrides the policy's NER back end (a name or an object with ``find``); ``train``
    allows building a missing cached classifier on first use (else heuristics alone);
    ``progress`` hears what is being built.
    """

    def __init__(self, policy: GuardPolicy | dict[str, Any], *, ner: NER | str | None = None, train: bool = True,
                 progress: Callable[[str], None] | None = None):
        self.policy = policy if isinstance(policy, GuardPolicy) else parse_policy(policy, source="policy")
        self.train = train
        self.progress = progress
        self.pii = PIIDetector(self.policy.pii, ner) if self.policy.pii is not None else None
        self.placeholders = Placeholders()
        self._injection: InjectionDetector | None = None
        self._topics: TopicDetector | None = None
        self._lock = threading.Lock()
        self._usage: dict[str | None, GuardUsage] = {}

    @classmethod
    def from_yaml(cls, path: str | os.PathLike, **kwargs: Any) -> Guard:
        """A guard from a policy file (``guard.yaml``); a bad file raises one file:line:field error."""
        return cls(load_policy(Path(path)), **kwargs)

    @property
    def name(self) -> str:
        return self.policy.name

    # -- detectors, built on first use ---------------------------------------------------------------
    def injection_detector(self) -> InjectionDetector:
        with self._lock:
            if self._injection is None:
                self._injection = load_injection_detector(train=self.train, progress=self.progress)
            return self._injection

    def topic_detector(self) -> TopicDetector:
        with self._lock:
            if self._topics is None:
                self._topics = load_topic_detector(self.policy.denied_topics, progress=self.progress)
            return self._topics

    def warm(self) -> Guard:
        """Build every detector the policy uses now (the NER model, the classifiers, the thresholds) rather
        than on the first check: a server calls it before it takes requests."""
        if self.pii is not None:
            _ = self.pii.ner
        for where in self.policy.apply_to:
            self.scan("warm up", where)
        return self

    # -- checking ------------------------------------------------------------------------------------
    def applies(self, where: str) -> bool:
        if where not in WHERE:
            raise ConfigError(f"where must be one of {', '.join(WHERE)}, not {where!r}")
        return where in self.policy.apply_to

    def scan(self, text: str, where: str = "input") -> Scan:
        """The raw findings and scores of ``text`` (no strength applied, nothing masked)."""
        if not isinstance(text, str):
            raise ConfigError(f"the guard checks text, not {type(text).__name__}")
        view = TextView.of(text)
        pii: list[Finding] = []
        if self.pii is not None:
            for h in self.pii.find(view.view):
                start, end = view.span(h.start, h.end)
                pii.append(Finding("pii", h.type, start, end, h.score, h.rule, self.policy.pii.action_for(h.type)))
        want_injection = self.policy.injection is not None and where in self.policy.injection.where
        want_topics = bool(self.policy.denied_topics) and where in ("input", "output")
        detector = self.injection_detector() if want_injection else None
        topic_pieces = segments(view.view) if want_topics else []
        injection_pieces = detector.pieces(view.view) if detector is not None and detector.head is not None else []
        shared = injection_pieces == topic_pieces  # a short text is one piece for both: embed it once
        vectors = embed(topic_pieces + ([] if shared else injection_pieces))
        injection = None
        if detector is not None:
            s = detector.score(view.view, vectors if shared else vectors[len(topic_pieces):])
            injection = (s.score, s.rule, view.span(*s.span) if s.span else None)
        topics = [(s.topic, s.score, s.rule) for s in self.topic_detector().scores(vectors[:len(topic_pieces)])] \
            if want_topics else []
        return Scan(pii, injection, topics)

    def decide(self, text: str, scan: Scan, where: str, *, conversation_id: str | None = None,
               strength: str | None = None) -> GuardResult:
        """Apply the policy (or one ``strength`` for every detector) to a scan: findings, masks, the decision."""
        findings = list(scan.pii)
        policy = self.policy
        if scan.injection is not None and policy.injection is not None:
            score, rule, span = scan.injection
            if score >= self.injection_detector().thresholds[strength or policy.injection.strength]:
                start, end = span or (0, len(text))
                findings.append(Finding("injection", "INJECTION", start, end, score, rule, policy.injection.action))
        for name, score, rule in scan.topics:
            topic = next(t for t in policy.denied_topics if t.name == name)
            if score >= self.topic_detector().threshold(topic, strength):
                findings.append(Finding("topic", name, 0, len(text), score, rule, "block"))
        masks = []
        for f in scan.pii:
            if f.action == "replace":
                masks.append((f.start, f.end, self.placeholders.placeholder(conversation_id or "", f.type,
                                                                             text[f.start:f.end])))
            else:
                masks.append((f.start, f.end, f"<{f.type}>"))
        blocking = next((f for f in findings if f.action == "block"), None)
        result = GuardResult(apply_masks(text, masks), where, policy.name, findings, blocking is not None,
                             blocking.rule if blocking else None, _message(blocking), 0.0, len(text))
        return result

    def check(self, text: str, where: str = "input", *, conversation_id: str | None = None,
              account: str | None = None) -> GuardResult:
        """Check one text. ``conversation_id`` keeps ``replace`` placeholders consistent across a conversation;
        ``account`` (a key or team) is what the cost is counted against."""
        start = time.perf_counter()
        if not self.applies(where):
            return self._count(GuardResult(text, where, self.policy.name, characters=len(text)), account)
        result = self.decide(text, self.scan(text, where), where, conversation_id=conversation_id)
        result.seconds = time.perf_counter() - start
        return self._count(result, account)

    def check_value(self, value: Any, where: str = "input", *, conversation_id: str | None = None,
                    account: str | None = None, raise_blocked: bool = True) -> tuple[Any, list[GuardResult]]:
        """Check every string inside ``value`` (dicts, lists, pydantic models); the value with them masked, and
        the results that found something. A blocked string raises :class:`GuardBlocked` (with
        ``raise_blocked=False`` the masked value comes back and the caller reads ``blocked`` in the results)."""
        results: list[GuardResult] = []

        def walk(v: Any) -> Any:
            if isinstance(v, str):
                r = self.check(v, where, conversation_id=conversation_id, account=account)
                if r.intervened:
                    results.append(r)
                if r.blocked and raise_blocked:
                    raise GuardBlocked(r)
                return r.text
            if isinstance(v, BaseModel):
                return type(v).model_construct(**{k: walk(x) for k, x in v.__dict__.items()})
            if isinstance(v, dict):
                return {k: walk(x) for k, x in v.items()}
            if isinstance(v, (list, tuple)):
                return type(v)(walk(x) for x in v)
            return v

        return walk(value), results

    def _count(self, result: GuardResult, account: str | None) -> GuardResult:
        with self._lock:
            for key in {None, account}:
                self._usage.setdefault(key, GuardUsage()).add(result)
        return result

    def usage(self, account: str | None = None) -> GuardUsage:
        """The cost so far: in total, or of one ``account``."""
        with self._lock:
            got = self._usage.get(account, GuardUsage())
            return GuardUsage(got.checks, got.characters, got.seconds, got.blocked, got.masked, dict(got.findings))

    def forget(self, conversation_id: str) -> None:
        """Drop a conversation's placeholder table (its ``<PERSON_1>`` may name someone else next time)."""
        self.placeholders.forget(conversation_id)

    def __repr__(self) -> str:
        return f"Guard({self.policy.name!r})"


def _message(finding: Finding | None) -> str | None:
    if finding is None:
        return None
    if finding.kind == "topic":
        return f"the request is on a denied topic ({finding.type})"
    if finding.kind == "injection":
        return f"possible prompt injection ({finding.rule})"
    return f"personal data that this policy does not allow ({finding.type})"
