"""The decision guide: which rung to climb next, with the data a team has, its accuracy and its target.

The phased approach, with the accuracy each phase usually reaches on a narrow agent component:

| phase | data it needs | usual accuracy |
| --- | --- | --- |
| prompt engineering | a few examples | 60-75 % |
| supervised fine-tuning | 500-5,000 labelled examples | 80-85 % |
| preference optimisation (DPO; KTO for thumbs up/down) | 1,000-10,000 preference pairs | 85-92 % |
| RL with verifiable rewards (GRPO / DAPO) | 10,000+ prompts or reasoning trajectories, and checks or a judge | 95-98 % |

The next phase is the cheapest whose usual ceiling the current accuracy has not reached
(``accuracy < 0.75``: prompts; ``< 0.85``: SFT; ``< 0.92``: preference; above: RL). Whether the team
can start it now depends on its data: labelled examples for SFT (or a teacher plus checks to distil
from); pairs for preference optimisation (or labelled examples, checks or a judge to build them from
the tuned model's own graded answers); a reward (checks or a judge) and enough prompts for RL. The
plan lists the phases from the next one to the first whose usual range reaches the target.
These bands are rules of thumb from practice, not guarantees: measure every rung (``agentladder climb``).

The component's type changes the first step. A ``classification`` component (its answer is one label
of a fixed set) starts with the classifier rung: a head on a frozen model's features, trained in
minutes on a CPU, always a valid label, with calibrated probabilities; the phased plan (SFT to answer
the label) follows only if the frozen features fall short. A ``retrieval`` component is improved by
fine-tuning its embedding model on (query, relevant passage) pairs, not by tuning a generator.
``generation`` and ``extraction`` components follow the phased plan above.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from agentladder.errors import ConfigError


@dataclass(frozen=True)
class Phase:
    name: str
    title: str
    low: float
    high: float
    """The accuracy this phase usually reaches."""
    data: str
    min_data: int
    max_data: int | None


PHASES: tuple[Phase, ...] = (
    Phase("prompt", "prompt engineering (instructions, output schema, few-shot examples)", 0.60, 0.75,
          "a few examples", 0, None),
    Phase("sft", "supervised fine-tuning (LoRA)", 0.80, 0.85, "labelled examples", 500, 5000),
    Phase("preference", "preference optimisation (DPO; KTO for thumbs up/down)", 0.85, 0.92, "preference pairs",
          1000, 10000),
    Phase("rl", "reinforcement learning with verifiable rewards (GRPO / DAPO)", 0.95, 0.98,
          "prompts or reasoning trajectories, with checks or a judge as the reward", 10000, None),
)
CEILINGS = {"prompt": 0.75, "sft": 0.85, "preference": 0.92}
"""Accuracy at which a phase counts as exhausted and the next one is recommended."""
COMPONENTS = ("classification", "extraction", "generation", "retrieval")
"""The component types :func:`recommend` knows."""
CLASSIFIER_MIN = 200
"""Labelled examples a head on frozen features usually wants (every class among them)."""
RETRIEVAL_MIN = 1000
"""(query, relevant passage) pairs an embedding fine-tune usually wants."""


@dataclass
class Recommendation:
    rung: str
    """``none`` (target met), ``prompt``, ``sft``, ``preference``, ``rl``, ``classifier`` or ``embedding``."""
    title: str
    ready: bool
    """The team has (or can make from what it has) the data this rung needs."""
    data_needed: str
    expected: tuple[float, float] | None
    command: str | None
    reasons: list[str] = field(default_factory=list)
    plan: list[str] = field(default_factory=list)
    """The phases from this one up to the first whose usual range reaches the target."""
    component: str = "generation"
    """The component's type: ``classification``, ``extraction``, ``generation`` or ``retrieval``."""

    def to_json(self) -> dict:
        return asdict(self)

    def text(self) -> str:
        lines = [f"component: {self.component}",
                 f"next rung: {self.title}" + ("" if self.ready else " (collect data first)")]
        if self.expected:
            lines.append(f"usually reaches: {self.expected[0]:.0%}-{self.expected[1]:.0%}")
        lines.append(f"data: {self.data_needed}")
        if self.command:
            lines.append(f"command: {self.command}")
        lines += ["why:"] + [f"  - {r}" for r in self.reasons]
        if self.plan:
            lines.append("plan to the target: " + " -> ".join(self.plan))
        return "\n".join(lines)


def phase_for(accuracy: float) -> Phase:
    """The cheapest phase whose usual ceiling ``accuracy`` has not reached."""
    for phase in PHASES[:-1]:
        if accuracy < CEILINGS[phase.name]:
            return phase
    return PHASES[-1]


def _plan(start: Phase, target: float) -> list[str]:
    names = [p.name for p in PHASES]
    plan = []
    for phase in PHASES[names.index(start.name):]:
        plan.append(phase.name)
        if phase.high >= target:
            break
    return plan


def recommend(*, accuracy: float, target: float, labeled: int = 0, pairs: int = 0, trajectories: int = 0,
              checks: bool = False, judge: bool = False, task: str = "TASK",
              component: str = "generation") -> Recommendation:
    """The next rung for a team with this data, accuracy and target; see the module docstring.

    ``labeled``: examples with the right answer; ``pairs``: preference pairs; ``trajectories``: prompts
    or reasoning trajectories for RL beyond the labelled ones; ``checks``: verifiable checks of an
    answer (a parser and grader); ``judge``: an LLM judge with a rubric. ``component``: the component's
    type (:data:`COMPONENTS`); for ``retrieval``, ``accuracy`` is its recall@k on validation and ``labeled``
    counts (query, relevant passage) pairs.
    """
    if component not in COMPONENTS:
        raise ConfigError(f"component {component!r}: choose one of {', '.join(COMPONENTS)}")
    for name, v in (("accuracy", accuracy), ("target", target)):
        if not 0.0 <= v <= 1.0:
            raise ConfigError(f"{name} is a share between 0 and 1 (0.78 for 78 %), got {v}")
    for name, n in (("labeled", labeled), ("pairs", pairs), ("trajectories", trajectories)):
        if n < 0:
            raise ConfigError(f"{name} cannot be negative, got {n}")
    if accuracy >= target:
        return Recommendation(
            rung="none", title="none: the target is met", ready=True, data_needed="none", expected=None,
            command=None, reasons=[f"accuracy {accuracy:.0%} already reaches the target {target:.0%}",
                                   "keep measuring on fresh data; feed the runtime's traces and reviews back "
                                   "as pairs when accuracy drifts"], component=component)
    if component == "classification":
        return _classifier(accuracy, target, labeled, task)
    if component == "retrieval":
        return _embedding(accuracy, target, labeled)
    phase = phase_for(accuracy)
    reward = checks or judge
    reasons = [f"accuracy {accuracy:.0%} is " + (
        f"below {CEILINGS[phase.name]:.0%}, the usual ceiling of {phase.title}" if phase.name in CEILINGS
        else f"past what preference optimisation usually reaches ({CEILINGS['preference']:.0%})")]
    plan = _plan(phase, target)
    if target > PHASES[-1].high:
        reasons.append(f"a target of {target:.0%} is above what the phased approach usually reaches "
                       f"({PHASES[-1].high:.0%}): expect to need a larger base model or better checks")
    ready, data, command = True, phase.data, None
    if phase.name == "prompt":
        if accuracy < phase.low:
            reasons.append(f"below {phase.low:.0%} even a prompt usually does better: check the task definition, "
                           "the output format and the examples before training anything")
        data = "a few labelled examples for the prompt; start collecting 500+ for SFT"
        command = f"agentladder eval --model MODEL --task {task} --shots 3"
    elif phase.name == "sft":
        ready, data, command = _sft(labeled, reward, reasons, task)
    elif phase.name == "preference":
        ready, data, command = _preference(labeled, pairs, reward, checks, judge, reasons, task)
    else:
        ready, data, command = _rl(labeled, trajectories, reward, checks, reasons, task)
    reasons.insert(0, f"a {component} component writes its answer: the phased plan (prompt, SFT, preference, RL)")
    return Recommendation(rung=phase.name, title=phase.title, ready=ready, data_needed=data,
                          expected=(phase.low, phase.high), command=command, reasons=reasons, plan=plan,
                          component=component)


def _classifier(accuracy: float, target: float, labeled: int, task: str) -> Recommendation:
    """A classification component: a head on frozen features first, fine-tuning only if that falls short."""
    reasons = [
        "a classification component answers with one label of a fixed set: a head on a frozen model's features "
        "trains in minutes on a CPU, always answers a valid label and gives calibrated probabilities, so it comes "
        "before any generative fine-tuning",
        f"accuracy {accuracy:.0%} is below the target {target:.0%}; there is no usual range for frozen features: "
        "how much of the label they carry depends on the model and the task, so measure the classifier on "
        "validation (the climb's classifier rung chooses its layer and C there)",
        "in a ladder it is a rung of kind: classifier after the prompted baseline (agentladder climb log-triage "
        "is one)",
        "if it falls short of the target, fine-tune next: SFT of the model to answer the label on the same rows"]
    command = (f"agentladder train classifier --features smollm2-135m --data labelled.jsonl "
               f"--validation validation.jsonl --task {task} --out runs/cls")
    if labeled >= CLASSIFIER_MIN:
        reasons.append(f"{labeled:,} labelled examples are enough to fit a head ({CLASSIFIER_MIN}+, every class "
                       "among them; more help the rare classes)")
        ready, data = True, f"{labeled:,} labelled examples (have)"
    else:
        missing = CLASSIFIER_MIN - labeled
        reasons.append(f"a head wants {CLASSIFIER_MIN}+ labelled examples with every class among them; {labeled:,} "
                       f"is {missing:,} short: prompt the model with a few examples meanwhile")
        ready, data = False, f"{missing:,} more labelled examples"
    return Recommendation(rung="classifier", title="classifier on frozen features (the classifier rung)",
                          ready=ready, data_needed=data, expected=None, command=command, reasons=reasons,
                          plan=["classifier", "sft"], component="classification")


EMBED_COMMAND = "agentladder train embed --model minilm --data kb/train.jsonl --out runs/embed1"


def _embedding(accuracy: float, target: float, labeled: int) -> Recommendation:
    """A retrieval component: fine-tune the embedding model (``agentladder train embed``)."""
    reasons = [
        "a retrieval component ranks passages by embedding similarity: what it retrieves is set by the embedding "
        "model, so the rung to climb is embedding fine-tuning (the retrieval rung), not a generator's",
        f"recall {accuracy:.0%} is below the target {target:.0%}: fine-tune the embedding model contrastively on "
        "(query, relevant passage) pairs, the other passages of a batch as negatives (sentence-transformers' "
        "MultipleNegativesRankingLoss), and measure recall@k on validation",
        "agentladder train embed does it (hard negatives mined with the base model, the learning rate chosen on "
        "validation); score it with agentladder eval --task retrieval (docs/retrieval.md)"]
    if labeled >= RETRIEVAL_MIN:
        reasons.append(f"{labeled:,} (query, passage) pairs are enough to start ({RETRIEVAL_MIN:,}+)")
        ready, data = True, f"{labeled:,} (query, relevant passage) pairs (have)"
    else:
        missing = RETRIEVAL_MIN - labeled
        reasons.append(f"{labeled:,} (query, passage) pairs is {missing:,} short of {RETRIEVAL_MIN:,}: log the "
                       "queries users ask and the passages that answered them")
        ready, data = False, f"{missing:,} more (query, relevant passage) pairs"
    return Recommendation(rung="embedding", title="embedding fine-tuning (the retrieval rung)", ready=ready,
                          data_needed=data, expected=None, command=EMBED_COMMAND, reasons=reasons, plan=["embedding"],
                          component="retrieval")


def _sft(labeled: int, reward: bool, reasons: list[str], task: str) -> tuple[bool, str, str | None]:
    command = "agentladder train sft --data labelled.jsonl --lora --out runs/sft"
    if labeled >= 500:
        reasons.append(f"{labeled:,} labelled examples are enough for SFT (500-5,000)"
                       + ("; beyond 5,000 SFT gains little: keep the rest for evaluation and pairs"
                          if labeled > 5000 else ""))
        return True, f"{labeled:,} labelled examples (have)", command
    missing = 500 - labeled
    reasons.append(f"SFT wants 500+ labelled examples; {labeled:,} is {missing:,} short")
    if reward:
        reasons.append("with checks or a judge you can distil instead: answer prompts with a stronger teacher "
                       "and keep the answers your checks accept")
        return False, f"{missing:,} more labelled examples, or distilled ones", \
            "agentladder data distill --teacher TEACHER --prompts prompts.jsonl --out sft.jsonl"
    return False, f"{missing:,} more labelled examples", command


def _preference(labeled: int, pairs: int, reward: bool, checks: bool, judge: bool, reasons: list[str],
                task: str) -> tuple[bool, str, str | None]:
    command = "agentladder train dpo --model runs/sft --data pairs.jsonl --lora --out runs/dpo"
    if pairs >= 1000:
        reasons.append(f"{pairs:,} preference pairs are enough (1,000-10,000)")
        return True, f"{pairs:,} preference pairs (have)", command
    build = ("agentladder data pairs --model runs/sft --task " + task + " --k 4 --with-target --out pairs.jsonl")
    if reward:
        how = "checks" if checks else "a judge"
        reasons.append(f"{pairs:,} pairs is short of 1,000, but {how} can grade the tuned model's own answers: "
                       "sample 4 per prompt, best against worst")
        return True, "1,000+ pairs built from graded samples of the tuned model", build
    if labeled >= 1000:
        reasons.append(f"{pairs:,} pairs is short of 1,000; your {labeled:,} labelled answers can be the chosen side "
                       "against the tuned model's wrong answers")
        return True, "1,000+ pairs: labelled answer against the model's wrong one", build
    reasons.append(f"{pairs:,} pairs is short of 1,000 and there is no grader to build them: collect human "
                   "preferences, or thumbs up/down for KTO")
    return False, f"{1000 - pairs:,} more preference pairs (or marked responses for KTO)", command


def _rl(labeled: int, trajectories: int, reward: bool, checks: bool, reasons: list[str],
        task: str) -> tuple[bool, str, str | None]:
    command = f"agentladder train rl --preset dapo --model runs/dpo --task {task} --out runs/rl"
    prompts = labeled + trajectories
    if not reward:
        reasons.append("RL needs a reward: write verifiable checks of an answer, or set up a judge with a rubric")
        return False, "a reward (checks or a judge) and 10,000+ prompts", command
    reasons.append("GRPO/DAPO need " + ("verifiable checks, which you have" if checks
                                       else "a reward; a judge works, verifiable checks are sturdier"))
    if prompts >= 10000:
        reasons.append(f"{prompts:,} prompts are enough for RL (10,000+)")
        return True, f"{prompts:,} prompts with a reward (have)", command
    reasons.append(f"{prompts:,} prompts is short of 10,000: generate or collect more (each prompt is sampled "
                   "many times, so variety matters more than answers)")
    return False, f"{10000 - prompts:,} more prompts", command


__all__ = ["COMPONENTS", "PHASES", "Phase", "Recommendation", "phase_for", "recommend"]
