"""Where a ladder rung's data comes from: the ``data:`` block of a rung (generated rows, a file, a teacher's
answers, the starting model's own graded answers), checked when the ladder file is read."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agentladder.data.pairs import Pairing


class Strict(BaseModel):
    """A ladder file's section: an unknown field is an error, reported with its line."""

    model_config = ConfigDict(extra="forbid")


# -- where a rung's data comes from ---------------------------------------------------------------
class GenerateData(Strict):
    """Rows of the task's own generated split: SFT conversations (the target as the answer) or RL prompts.

    The rows are fresh: none an earlier rung drew or a held-out split holds (:mod:`agentladder.ladder.fresh`).
    """

    source: Literal["generate"]
    rows: int = Field(ge=1)
    """SFT: conversations; RL: prompts drawn (before the ``filter_k`` filter)."""
    split: str = "train"
    seed: int | None = None
    """[default: a stream of the rung's own, from the ladder's seed and the rung's name]"""
    balance: str | None = None
    """SFT and RL: a target field whose values are drawn more evenly (the square root of their counts), so rare
    cases (``doses_per_day`` of every 4 hours, a daily cap) are seen more often. An RL rung draws its prompts
    (before ``filter_k``) this way, each row at most once. The evaluation split keeps the task's own mix."""
    filter_k: int | None = Field(None, ge=2)
    """RL only: answer each prompt ``filter_k`` times with the rung's starting model and keep only those it
    sometimes fails (a pass rate strictly between 0 and 1); the rest teach a group-relative advantage nothing.
    The yield is reported with the rung."""
    filter_temperature: float = Field(1.0, gt=0)
    """RL only: the sampling temperature of the filter's answers."""
    greedy_errors: int = Field(0, ge=0)
    """RL only, with ``filter_k``: also take the starting model's greedy answer to each prompt, and keep every
    prompt whose greedy answer is wrong while some sample is right (an error the model makes when it decodes
    as it is evaluated, and can already fix) this many times, even where every sample is right [default 0:
    no greedy answers]. The filter's yield then counts them."""
    always_wrong: bool = False
    """RL only, with ``filter_k``: also keep the prompts no sample answers right (after the others). Only a
    trainer that puts the reference answer into such a group learns from them, so the rung's ``train`` needs
    ``reference_guidance: true``; the filter's yield then counts them."""
    batch_size: int = Field(64, ge=1)
    """RL only: answers the filter generates at a time."""
    max_new_tokens: int | None = Field(None, ge=1)
    """RL only: the filter's budget per answer [default: the task's]."""


class FileData(Strict):
    """A JSONL file you already have, in the rung's format (conversations, pairs, marked rows, task rows)."""

    source: Literal["file"]
    path: str


class DistillData(Strict):
    """SFT conversations answered by a teacher model, kept only where the task's grader accepts the answer."""

    source: Literal["distill"]
    teacher: str
    """Alias, run folder or hub id of the teacher."""
    rows: int = Field(ge=1)
    """Prompts to answer (from the task's generated split)."""
    split: str = "train"
    seed: int | None = None
    keep: Literal["correct", "all"] = "correct"
    """``correct``: only answers the task's reward gives full marks, exact match for the built-in tasks
    (rejection sampling); ``all``: every answer."""
    max_new_tokens: int | None = Field(None, ge=1)
    batch_size: int = Field(8, ge=1)


class PairsData(Strict):
    """Preference pairs (or KTO rows) from the rung's starting model: ``k`` sampled answers per fresh prompt,
    graded by the task's reward, best against worst (:func:`agentladder.evals.sampling.pairs_from_task`)."""

    source: Literal["pairs"]
    rows: int = Field(ge=1)
    """Fresh prompts to answer (none an earlier rung drew or a held-out split holds)."""
    k: int = Field(4, ge=0)
    temperature: float = Field(1.0, ge=0)
    with_target: bool = True
    """Add the task's reference answer as one more graded candidate, so every wrong prompt gives a pair."""
    greedy: bool = False
    """Errors first: add the model's greedy answer as a candidate, the rejected side wherever it is wrong
    (the model's actual mistake), and put the prompts it gets wrong first."""
    pairs: int | None = Field(None, ge=1)
    """Keep at most this many pairs (the model's errors first with ``greedy``) [default: all]."""
    pairing: Pairing = "best_vs_worst"
    """One pair a prompt, best against worst; or ``each_worse``: the best against every distinct answer scoring
    below it (a dpo rung only)."""
    split: str = "train"
    seed: int | None = None
    batch_size: int = Field(16, ge=1)
    max_new_tokens: int | None = Field(None, ge=1)
    """Generation budget per answer [default: the task's]."""

    @model_validator(mode="after")
    def _candidates(self) -> PairsData:
        if self.k + self.greedy + self.with_target < 2:
            raise ValueError("k: a pair needs two candidates: sample k >= 2, or add greedy or with_target")
        return self


DataSpec = Annotated[GenerateData | FileData | DistillData | PairsData, Field(discriminator="source")]
DATA_SOURCES = ("generate", "file", "distill", "pairs")
"""The tags of :data:`DataSpec`, which pydantic puts into an error's location."""

SOURCES: dict[str, tuple[str, ...]] = {
    "baseline": (),
    "sft": ("generate", "file", "distill"),
    "dpo": ("pairs", "file"),
    "kto": ("pairs", "file"),
    "rl": ("generate", "file"),
    "classifier": ("generate", "file"),
    "embed": ("file",),
    "reward_model": ("pairs", "file"),
    "judge": ("file",),
}


__all__ = ["DATA_SOURCES", "SOURCES", "DataSpec", "DistillData", "FileData", "GenerateData", "PairsData", "Strict"]
