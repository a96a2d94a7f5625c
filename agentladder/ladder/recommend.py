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


@dataclass
class Recommendation:
    rung: str
    """``none`` (target met), ``prompt``, ``sft``, ``preference`` or ``rl``."""
    title: str
    ready: bool
    """The team has (or can make from what it has) the data this rung needs."""
    data_needed: str
    expected: tuple[float, float] | None
    command: str | None
    reasons: list[str] = field(default_factory=list)
    plan: list[str] = field(default_factory=list)
    """The phases from this one up to the first whose usual range reaches the target."""

    def to_json(self) -> dict:
        return asdict(self)

    def text(self) -> str:
        lines = [f"next rung: {self.title}" + ("" if self.ready else " (collect data first)")]
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
              checks: bool = False, judge: bool = False, task: str = "TASK") -> Recommendation:
    """The next rung for a team with this data, accuracy and target; see the module docstring.

    ``labeled``: examples with the right answer; ``pairs``: preference pairs; ``trajectories``: prompts
    or reasoning trajectories for RL beyond the labelled ones; ``checks``: verifiable checks of an
    answer (a parser and grader); ``judge``: an LLM judge with a rubric.
    """
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
                                   "as pairs when accuracy drifts"])
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
    return Recommendation(rung=phase.name, title=phase.title, ready=ready, data_needed=data,
                          expected=(phase.low, phase.high), command=command, reasons=reasons, plan=plan)


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


__all__ = ["PHASES", "Phase", "Recommendation", "phase_for", "recommend"]
