"""Tuned judges: SFT of a model on expert grades so it grades 1-5 in the judge format the evals parse.

:func:`train_judge` reads graded answers (:class:`~agentladder.data.schema.GradedResponse`:
``prompt``, ``completion``, integer ``grade``, ``reasons``; a ``metadata.reference`` answer is shown
to the judge when present) and a rubric file (:func:`~agentladder.data.feedback.load_rubric`). Each
row becomes one SFT conversation: the exact prompt :class:`~agentladder.rewards.JudgeReward` and the
evals' judge send (:func:`~agentladder.rewards.single_prompt`: the system instruction, the rubric, the
request, the answer), answered by the verdict ``{"score": grade, "reason": reasons}`` that
:func:`~agentladder.rewards.parse_verdict` reads. Training is :func:`~agentladder.train.sft` (the
shared loop: checkpoints, resume, LoRA or full); the rows it trains on are ``judge_rows.jsonl`` in the
run folder.

When the run is finished, the held-out rows (``validation``, or a seeded ``validation_share`` of the
prompts, split by prompt) are graded greedily by the tuned judge and, with ``compare_untuned``, by
the starting model prompted the same way; their agreement with the reference grades
(:func:`~agentladder.rewards.agreement.agreement`: exact, within one, Spearman's rho, quadratic
kappa, share parsed) goes into ``judge.json`` with the rubric and the scale, written last. A folder
with a ``judge.json`` is a judge reward's provider as it is: ``{type: judge, provider: runs/judge1}``
takes its rubric and scale from there.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from agentladder.data.feedback import load_feedback, load_rubric
from agentladder.data.io import atomic_write_text, write_jsonl
from agentladder.data.schema import Conversation, GradedResponse, Message
from agentladder.errors import ConfigError, DataError
from agentladder.models.providers import make_provider
from agentladder.rewards.agreement import agreement
from agentladder.rewards.judge import JUDGE_MANIFEST
from agentladder.rewards.judging import parse_verdict, single_prompt
from agentladder.train.loop import TrainResult
from agentladder.train.reward_model import split_rows
from agentladder.train.run import RUN_CONFIG
from agentladder.train.sft import SFTConfig, sft

ROWS = "judge_rows.jsonl"


class JudgeConfig(SFTConfig):
    """A tuned judge: SFT's settings, with graded answers as ``data`` and a rubric file."""

    rubric: str
    """The rubric file (free text with one ``N: ...`` line per grade), or ``@FILE``."""
    validation: str | None = None
    """Held-out graded answers [default: ``validation_share`` of the prompts of ``data``]."""
    validation_share: float = Field(0.2, ge=0, lt=1)
    """Share of ``data``'s prompts held out when no ``validation`` file is given."""
    grade_min: int = 1
    """The low end of the grades' scale."""
    grade_max: int = 5
    """The high end of the grades' scale."""
    compare_untuned: bool = True
    """Also grade the held-out rows with the starting model prompted the same way."""
    max_new_tokens: int = Field(96, ge=8)
    """Generation budget of a verdict on the held-out rows."""

    @model_validator(mode="after")
    def _check_scale(self) -> JudgeConfig:
        if not self.grade_min < self.grade_max:
            raise ValueError(f"grade_max: must be above grade_min ({self.grade_min}), got {self.grade_max}")
        return self

    @property
    def scale(self) -> tuple[int, int]:
        return (self.grade_min, self.grade_max)


def _request(prompt: Sequence[Message]) -> str:
    return next((m.content or "" for m in reversed(prompt) if m.role == "user"), "")


def _answer(messages: Sequence[Message]) -> str:
    return "\n".join(m.content or "" for m in messages if m.role == "assistant")


def judge_prompt(row: GradedResponse, rubric: str, scale: tuple[int, int]) -> list[Message]:
    """The judge's prompt for one graded answer: exactly what the judge reward and the evals send."""
    reference = row.metadata.get("reference")
    return single_prompt(rubric, _request(row.prompt), _answer(row.completion),
                         None if reference is None else str(reference), scale)


def judge_conversation(row: GradedResponse, rubric: str, scale: tuple[int, int]) -> Conversation:
    """One SFT row: the judge's prompt answered by the expert's verdict."""
    verdict = json.dumps({"score": int(row.grade), "reason": row.reasons or ""})
    return Conversation(id=row.id, messages=[*judge_prompt(row, rubric, scale),
                                             Message(role="assistant", content=verdict)])


def grade_rows(judge: str, rows: Sequence[GradedResponse], rubric: str, scale: tuple[int, int],
               max_new_tokens: int = 96) -> list[float | None]:
    """Each row's grade from ``judge`` (greedy; ``None`` where the verdict does not parse)."""
    provider = make_provider(judge)
    try:
        replies = provider.complete([judge_prompt(r, rubric, scale) for r in rows], max_new_tokens=max_new_tokens,
                                    temperature=0.0, stop_at_json=True)
    finally:
        provider.close()
    verdicts = [parse_verdict(text, scale) for text in replies]
    return [None if v is None else v.score for v in verdicts]


def _graded(path: str, scale: tuple[int, int]) -> list[GradedResponse]:
    rows = [r for r in load_feedback(path, scale=scale, kinds=("grades",)) if isinstance(r, GradedResponse)]
    for i, r in enumerate(rows):
        if r.grade != int(r.grade):
            raise DataError(path, None, "grade", f"row {i + 1}: a judge grades in whole numbers, got {r.grade:g}")
    return rows


@dataclass
class JudgeResult(TrainResult):
    agreement: dict[str, Any] | None = None
    """``{"tuned": figures, "untuned": figures}`` on the held-out rows (None while unfinished or without them)."""


def train_judge(config: JudgeConfig | None = None, /, *, resume: bool = False, **kwargs: Any) -> JudgeResult:
    """Tune a judge (see the module docstring); ``train_judge(model=..., data=..., rubric=..., out_dir=...)``
    works as well as a config. With ``resume=True`` an interrupted run continues."""
    out = Path(config.out_dir if config else kwargs["out_dir"])
    if resume:
        saved = out / "judge_config.json"
        if not saved.exists():
            raise ConfigError(f"{out} holds no judge run to resume (no judge_config.json)")
        config = JudgeConfig.model_validate_json(saved.read_text())
    config = config or JudgeConfig(**kwargs)
    if not resume and (out / JUDGE_MANIFEST).exists():
        raise ConfigError(f"{out} already holds a judge: choose another output folder")
    rubric = load_rubric(config.rubric.removeprefix("@"), config.scale)
    rows = _graded(config.data, config.scale)
    if config.validation:
        train_rows, held = rows, _graded(config.validation, config.scale)
    else:
        train_rows, held = split_rows(rows, config.validation_share, config.seed)  # type: ignore[arg-type]
    out.mkdir(parents=True, exist_ok=True)
    if not resume:
        write_jsonl(out / ROWS, [judge_conversation(r, rubric, config.scale) for r in train_rows])
        atomic_write_text(out / "judge_config.json", config.model_dump_json(indent=2))
    fields = {k: getattr(config, k) for k in SFTConfig.model_fields if k != "data"}
    result = sft(SFTConfig(**fields, data=str(out / ROWS)), resume=resume and (out / RUN_CONFIG).exists())
    if not (out / "agentladder.json").exists():  # not finished (stopped part-way)
        return JudgeResult(result.steps, result.final_loss, result.history, result.out_dir)
    figures: dict[str, Any] = {}
    if held:
        reference = [r.grade for r in held]
        figures["tuned"] = agreement(grade_rows(str(out), held, rubric, config.scale, config.max_new_tokens),
                                     reference, config.scale)
        if config.compare_untuned:
            figures["untuned"] = agreement(grade_rows(config.model, held, rubric, config.scale,
                                                      config.max_new_tokens), reference, config.scale)
    manifest = {"format": "agentladder-judge", "version": 1, "rubric": rubric, "scale": list(config.scale),
                "base_model": config.model, "rows": len(train_rows), "held_out_rows": len(held),
                "validation": config.validation or f"{config.validation_share:g} of the prompts",
                "agreement": figures}
    atomic_write_text(out / JUDGE_MANIFEST, json.dumps(manifest, indent=2) + "\n")
    return JudgeResult(result.steps, result.final_loss, result.history, result.out_dir, figures)


__all__ = ["JudgeConfig", "JudgeResult", "grade_rows", "judge_conversation", "judge_prompt", "train_judge"]
