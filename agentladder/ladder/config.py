"""A ladder file: the task, the base model, each rung's data and settings, and the gate.

```yaml
name: medication
task: medication-directions
base_model: smollm2-135m
eval: {rows: 200}                      # the held-out split every rung is scored on
gate: {metric: exact_match, target: 0.95, min_gain: 0.01}
rungs:
  - {name: baseline, kind: baseline, shots: 3}
  - name: sft
    kind: sft
    data: {source: generate, rows: 400}
    train: {max_steps: 60, lora: true, learning_rate: 1.0e-3}
  - name: dpo
    kind: dpo
    data: {source: pairs, rows: 200, k: 4}
    train: {max_steps: 30, lora: true}
  - name: rl
    kind: rl
    data: {source: generate, rows: 400}
    train: {preset: dapo, max_steps: 20, group_size: 4}
```

``train`` holds the fields of the rung's trainer config (:class:`~agentladder.train.sft.SFTConfig`,
:class:`~agentladder.train.preference.PreferenceConfig`, :class:`~agentladder.train.rl_config.RLConfig`)
except those the ladder fills in (``model``, ``data``, ``out_dir``, ``task``). They are checked when the
file is read, so a bad field is reported as ``ladder.yaml:14: rungs[1].train.max_steps: ...``.

Paths of data files are relative to the ladder file; ``out_dir`` and ``registry`` to the current folder.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, model_validator

from agentladder.data.io import yaml_line
from agentladder.errors import DataError, MissingFileError, data_error, first_error
from agentladder.ladder.data_specs import (
    DATA_SOURCES,
    SOURCES,
    DataSpec,
    DistillData,
    FileData,
    GenerateData,
    PairsData,
    Strict,
)
from agentladder.ladder.overrides import override_items, set_dotted
from agentladder.models.loading import DEFAULT_MODEL
from agentladder.tasks import get_task
from agentladder.tasks.classification import ClassificationTask
from agentladder.train.classifier import C_VALUES
from agentladder.train.judge import JudgeConfig
from agentladder.train.preference import RENAMED, PreferenceConfig
from agentladder.train.reward_model import RewardConfig
from agentladder.train.rl_config import RLConfig
from agentladder.train.sft import SFTConfig

RungKind = Literal["baseline", "sft", "dpo", "kto", "rl", "classifier", "embed", "reward_model", "judge"]

RETRIEVAL = "retrieval"
"""The task of a ladder of embedding models (``baseline`` and ``embed`` rungs, scored by ranking metrics)."""
FEEDBACK_KINDS = ("reward_model", "judge")
"""Rungs that make a learned reward (a reward model, a tuned judge) for a later RL rung, not a policy: they are
gated on their own held-out figures and never become the champion."""
ACCEPT_DEFAULTS = {"reward_model": ("accuracy", 0.6), "judge": ("quadratic_kappa", 0.2)}


_FILLED = {"model", "data", "out_dir", "task", "loss"}
"""Trainer fields the ladder sets itself (``loss`` comes from the rung's kind, or ``train.loss`` for dpo)."""


class ClassifierSettings(Strict):
    """The ``train`` fields of a ``classifier`` rung: :func:`~agentladder.train.classifier.train_classifier`'s options.

    Every ``layers`` (and with ``concat`` all of them side by side) x ``heads`` (the logistic one at each of
    ``c_values``) configuration is fitted on the rung's training rows and scored on ``validation`` (the
    ladder's own validation split by default); the best by macro-F1 is saved, in the final form that
    validation prefers.
    """

    features: str | None = None
    """The frozen feature model: a causal LM (alias, folder, LoRA run folder, hub id) or ``sentence:minilm`` /
    ``sentence:PATH`` [default: the rung's starting model; a classifier's own feature model when it starts
    from a classifier]."""
    layers: list[int] | None = Field(None, min_length=1)
    """Hidden-states indices to choose from [default: 1/4, 1/2, 3/4 and all of the depth]."""
    pooling: Literal["mean", "last"] = "mean"
    c_values: list[Annotated[float, Field(gt=0)]] = Field(default_factory=lambda: list(C_VALUES), min_length=1)
    """Regularisation strengths tried (inverse: smaller is stronger)."""
    heads: list[Literal["logistic", "mlp"]] = Field(default_factory=lambda: ["logistic"], min_length=1)
    """Heads tried on each feature candidate: balanced logistic regression (each C), the small MLP."""
    concat: bool = False
    """Also try the candidate layers side by side as one more feature candidate."""
    validation: Literal["ladder", "holdout"] = "ladder"
    """What chooses the layer and C: ``ladder``, the climb's validation split (the one the gate decides on);
    ``holdout``, a stratified ``validation_share`` of the rung's training rows, which leaves the ladder's
    validation split to the gate alone."""
    validation_share: float = Field(0.2, gt=0, lt=1)
    calibrate: bool = True
    max_length: int = Field(256, ge=1)
    batch_size: int = Field(16, ge=1)
    cache_dir: str | None = None
    """Feature cache folder [default: ``$AGENTLADDER_HOME/features``]."""
    seed: int | None = None
    """[default: the ladder's seed]"""


class EmbedSettings(Strict):
    """The ``train`` fields of an ``embed`` rung: :func:`~agentladder.train.embed.train_embed`'s options.

    Each learning rate trains a candidate from the rung's starting embedder; the best on the climb's validation
    queries (recall@5, ties by MRR) is the rung's model, and the gate then judges it on the same split.
    """

    lrs: list[Annotated[float, Field(gt=0)]] = Field(default_factory=lambda: [2e-5, 5e-5, 1e-4], min_length=1)
    epochs: int = Field(1, ge=1)
    batch_size: int = Field(32, ge=2)
    hard_negatives: int = Field(1, ge=0)
    max_rows: int | None = Field(None, ge=1)
    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    seed: int | None = None
    """[default: the ladder's seed]"""


# -- the gate -------------------------------------------------------------------------------------
class Guard(Strict):
    """A domain metric a rung may not worsen by more than ``max_drop`` against the model it would replace."""

    metric: str
    max_drop: float = Field(0.0, ge=0)
    higher_is_better: bool = True


class Gate(Strict):
    """When a rung is kept, and when the climb ends."""

    metric: str | None = None
    """The headline metric [default: the task's headline, ``exact_match`` for medication directions]."""
    target: float
    """The climb ends at the first kept rung whose metric reaches this."""
    min_gain: float = 0.0
    """A rung is kept (becomes the model the next rung starts from) only if it beats the current one
    by at least this much; a rung that reaches the target is kept whenever it gains at all."""
    higher_is_better: bool = True
    guards: list[Guard] = Field(default_factory=list)
    """Domain metrics a kept rung must not worsen (beyond their allowance)."""
    stop_on_stall: bool = False
    """End the climb at the first rung that is not kept, instead of trying the next one."""
    max_p: float | None = Field(default=None, gt=0.0, le=1.0)
    """Keep a rung only when it is also a significant step up: McNemar's exact paired test against the
    champion on the deciding split's rows gives p below this (0.05, say). A gain the paired test cannot tell
    from churn (as many rows lost as won) is then not kept. Needs a pass or fail per row of the gate metric."""


class Accept(Strict):
    """The gate of a ``reward_model`` or ``judge`` rung, on its held-out feedback rows (the ``train.validation``
    file, else a held-out share of the rung's rows): the figure and the least value it must reach. A judge must
    also agree with the reference grades at least as well as its untuned starting model."""

    metric: str | None = None
    """A reward model: ``accuracy`` (pairwise), ``ece``, ``brier``; a judge: ``quadratic_kappa``, ``exact``,
    ``within_one``, ``spearman`` [default: accuracy; quadratic_kappa]."""
    min: float | None = None
    """[default: 0.6 for a reward model's accuracy, 0.2 for a judge's kappa]; for ``ece`` and ``brier`` a most."""


class Control(Strict):
    """A control run beside a ``dpo`` rung: what its pairs teach without their rejected side.

    ``kind: sft`` fine-tunes the rung's starting model on the chosen answer of every pair (one conversation a
    pair, so an answer chosen against several rejected ones is seen as often as the rung sees it), with the
    rung's own adapter, learning rate, schedule, steps, pairs a step and length. The control is scored on every
    split the rung is scored on, with the paired test between the two; a loss whose objective contains the
    chosen answer's NLL (``dpo_nll``, ``orpo``) gains over the model it started from through that term alone,
    and only the control tells the two apart."""

    kind: Literal["sft"] = "sft"
    gate: bool = False
    """Keep the rung only when it also beats its control on the validation split (by the rung's ``min_gain``,
    and by more than nothing); else the control is reported and the gate judges the rung as usual."""


# -- rungs ----------------------------------------------------------------------------------------
class Rung(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    """Unique within the ladder; names the rung's folder."""
    kind: RungKind
    start: str = "champion"
    """The model this rung starts from: ``champion`` (the best kept so far), ``base``, or an earlier rung's name."""
    data: DataSpec | None = None
    train: dict[str, Any] = Field(default_factory=dict)
    """Fields of the rung's trainer config (see the module docstring)."""
    shots: int | None = Field(None, ge=0)
    """Few-shot examples in the evaluation prompt [default: the ladder's ``eval.shots``]; the baseline's
    prompt engineering."""
    min_gain: float | None = None
    """This rung's own ``gate.min_gain``."""
    instructions: str | None = None
    """The task's named prompt style (:attr:`~agentladder.tasks.Task.styles`) this rung's data, training and
    evaluation use (``brief`` reads as ``medication-directions@brief``) [default: the task's own prompt]. A tuned model no longer needs the long
    instruction a base model is prompted with; a shorter prompt makes every training step and answer cheaper.
    Rungs that start from a model tuned this way should name the same instructions."""

    accept: Accept | None = None
    """A ``reward_model`` or ``judge`` rung's own gate (see :class:`Accept`)."""
    control: Control | None = None
    """A ``dpo`` rung's control run (see :class:`Control`); ``control: sft`` is short for ``{kind: sft}``."""

    @model_validator(mode="before")
    @classmethod
    def _short_control(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("control"), str):
            data = {**data, "control": {"kind": data["control"]}}
        return data

    def task(self, ladder_task: str) -> str:
        """The task spec this rung uses: the ladder's task, behind the rung's ``instructions``."""
        return ladder_task if self.instructions is None else f"{ladder_task}@{self.instructions}"

    @model_validator(mode="after")
    def _check(self) -> Rung:
        allowed = SOURCES[self.kind]
        if self.kind == "baseline":
            if self.data is not None or self.train:
                raise ValueError("a baseline rung trains nothing: it takes no data or train settings")
        elif self.data is None:
            raise ValueError(f"a {self.kind} rung needs data: source one of {', '.join(allowed)}")
        elif self.data.source not in allowed:
            raise ValueError(f"data.source {self.data.source!r} does not fit a {self.kind} rung: "
                             f"use one of {', '.join(allowed)}")
        elif self.kind not in ("sft", "rl") and getattr(self.data, "balance", None):
            raise ValueError("data.balance applies to an sft rung's generated conversations or an rl rung's "
                             "generated prompts only")
        elif self.kind != "rl" and getattr(self.data, "filter_k", None):
            raise ValueError("data.filter_k applies to an rl rung's generated prompts only")
        elif getattr(self.data, "greedy_errors", 0) and not (self.kind == "rl" and self.data.filter_k):  # type: ignore[union-attr]
            raise ValueError("data.greedy_errors applies to an rl rung's filter: set data.filter_k too")
        elif getattr(self.data, "always_wrong", False) and not (self.kind == "rl" and self.data.filter_k):  # type: ignore[union-attr]
            raise ValueError("data.always_wrong applies to an rl rung's filter: set data.filter_k too")
        elif getattr(self.data, "always_wrong", False) and not self.train.get("reference_guidance"):
            raise ValueError("data.always_wrong keeps prompts no sample answers right, which teach a group-relative "
                             "advantage nothing without the reference: set train.reference_guidance: true")
        elif self.kind != "dpo" and getattr(self.data, "pairing", "best_vs_worst") != "best_vs_worst":
            raise ValueError("data.pairing applies to a dpo rung's pairs (a kto rung marks every answer)")
        if self.accept is not None and self.kind not in FEEDBACK_KINDS:
            raise ValueError("accept applies to reward_model and judge rungs (the others pass the ladder's gate)")
        if self.control is not None and self.kind != "dpo":
            raise ValueError(f"control applies to a dpo rung (an SFT run on its pairs' chosen answers), not a {self.kind} rung")
        return self

    def fingerprint_fields(self) -> dict[str, Any]:
        """The rung's settings as its fingerprint reads them (an unset control, the default pairing, no greedy
        errors and no always-wrong prompts left out, so climbs finished before those options existed resume)."""
        fields = self.model_dump()
        if fields.get("control") is None:
            fields.pop("control", None)
        if (fields.get("data") or {}).get("pairing") == "best_vs_worst":
            fields["data"].pop("pairing")
        for key, default in (("greedy_errors", 0), ("always_wrong", False)):
            if key in (fields.get("data") or {}) and fields["data"][key] == default:
                fields["data"].pop(key)
        return fields


class EvalSettings(Strict):
    """The held-out splits every rung is scored on, and how.

    The *validation* split decides: the gate keeps or rejects each rung on it, so it also decides which model
    the next rung starts from and when the climb ends. The *test* split only reports: a kept rung is scored
    on it once, after its verdict, and nothing the climb does reads it. A task whose generator has a
    ``shifted`` split (phrasings the training split never uses) is scored on it too, beside the test split.
    """

    rows: int = Field(200, ge=1)
    """Rows of the task's generated test split (ignored when ``data`` is given)."""
    data: str | None = None
    """A JSONL file of the task's rows to report on instead of the generated test split."""
    validation_rows: int = Field(200, ge=1)
    """Rows of the task's generated validation split (ignored when ``validation`` is given)."""
    validation: str | None = None
    """A JSONL file of the task's rows to decide on instead of the generated validation split (needed for a
    task without a generator); it may share no row with the test file."""
    shifted_rows: int = Field(200, ge=0)
    """Rows of the task's generated ``shifted`` split, when it has one (0: none)."""
    shifted: str | None = None
    """A JSONL file of the task's rows written unlike the training data, reported beside the test split."""
    report: bool = True
    """Score kept rungs on the reporting splits. ``false`` while a recipe is being tuned: the climb then reads
    only the validation split, so no setting can be chosen by a test figure; a later climb into the same
    folder with ``report: true`` scores the kept rungs it finished (it is left out of the rungs' settings)."""
    seed: int = 0
    shots: int = Field(0, ge=0)
    batch_size: int = Field(8, ge=1)
    max_new_tokens: int | None = Field(None, ge=1)
    dtype: Literal["float32", "bfloat16"] = "float32"
    """Precision local models answer in (every rung alike); ``bfloat16`` is faster on a GPU or a CPU with native bfloat16."""


class LadderConfig(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    """Names the ladder's versions in the registry (``medication/sft/...``)."""
    task: str = "medication-directions"
    base_model: str = DEFAULT_MODEL
    out_dir: str = "runs/ladder"
    registry: str | None = None
    """SQLite file of the model registry [default: ``$AGENTLADDER_DB``, else ``agentladder.db``]."""
    seed: int = 0
    eval: EvalSettings = Field(default_factory=EvalSettings)
    gate: Gate
    rungs: list[Rung] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> LadderConfig:
        seen: list[str] = []
        for i, rung in enumerate(self.rungs):
            if rung.name in seen:
                raise _At(["rungs", i, "name"], f"rung name {rung.name!r} is used twice")
            if i == 0 and rung.kind in FEEDBACK_KINDS:
                raise _At(["rungs", 0, "kind"], f"the first rung makes the model the climb starts from; a {rung.kind} "
                          "rung comes after it")
            if rung.start not in ("champion", "base") and rung.start not in seen:
                raise _At(["rungs", i, "start"], f"{rung.start!r} is not champion, base or an earlier rung")
            _check_generative_start(self.rungs[:i], rung, i)
            if (rung.kind == "embed") != (self.task == RETRIEVAL) and rung.kind != "baseline":
                raise _At(["rungs", i, "kind"], "an embed rung needs task: retrieval, and a retrieval ladder "
                          f"has baseline and embed rungs only (not {rung.kind})")
            _check_reward_refs(self.rungs[:i], rung, i)
            _check_train(rung, i)
            if rung.kind == "classifier":
                _check_classification(self.task, rung, i)
            if rung.instructions is not None:
                _check_instructions(self.task, rung.instructions, i)
            seen.append(rung.name)
        return self

    def rung_fingerprint(self, index: int) -> str:
        """What a rung's result depends on: the task, base model, evaluation, and this rung and those before it.

        The gate is left out: a resumed climb judges finished rungs again under the gate it is given.
        """
        payload = {"task": self.task, "base": self.base_model, "eval": self.eval.model_dump(exclude={"report"}),
                   "seed": self.seed,
                   "rungs": [r.fingerprint_fields() for r in self.rungs[: index + 1]]}
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


class _At(ValueError):
    """A validation error that knows its location (pydantic keeps it for the message)."""

    def __init__(self, loc: list, message: str):
        self.loc = loc
        super().__init__(message)


def trainer_class(kind: str):
    """The settings model of a rung kind's ``train`` fields."""
    if kind == "classifier":
        return ClassifierSettings
    if kind == "embed":
        return EmbedSettings
    if kind == "reward_model":
        return RewardConfig
    if kind == "judge":
        return JudgeConfig
    if kind == "sft":
        return SFTConfig
    if kind in ("dpo", "kto"):
        return PreferenceConfig
    return RLConfig


def _check_train(rung: Rung, index: int) -> None:
    """Build the rung's trainer config with placeholders so a bad ``train`` field is caught now, with its place."""
    if rung.kind == "baseline":
        return
    filled = sorted(set(rung.train) & (_FILLED - ({"loss"} if rung.kind in ("dpo", "classifier") else set())))
    if filled:
        raise _At(["rungs", index, "train", filled[0]], "the ladder sets this itself; leave it out")
    if rung.kind == "dpo" and rung.train.get("loss") == "kto":
        raise _At(["rungs", index, "train", "loss"], "KTO is its own rung kind: kind: kto")
    if rung.kind in ("classifier", "embed"):
        try:
            trainer_class(rung.kind)(**rung.train)
        except ValidationError as err:
            loc, message = first_error(err)
            raise _At(["rungs", index, "train", *loc], message) from None
        return
    if "rpo_alpha" in rung.train:
        raise _At(["rungs", index, "train", "rpo_alpha"], RENAMED)
    placeholders: dict[str, Any] = {"out_dir": "-", "model": "-"}
    placeholders.update({"task": "-"} if rung.kind == "rl" else {"data": "-"})
    if rung.kind == "judge" and "rubric" not in rung.train:
        raise _At(["rungs", index, "train", "rubric"], "a judge rung needs its rubric file (train.rubric)")
    if rung.kind == "kto":
        placeholders["loss"] = "kto"
    try:
        trainer_class(rung.kind)(**{**rung.train, **placeholders})
    except ValidationError as err:
        loc, message = first_error(err)
        raise _At(["rungs", index, "train", *loc], message) from None


def _check_generative_start(before: list[Rung], rung: Rung, index: int) -> None:
    """A generative rung cannot train from a classifier: it may not start from one, nor from the champion once
    a classifier rung could be it."""
    if rung.kind not in ("sft", "dpo", "kto", "rl", *FEEDBACK_KINDS):
        return
    feedback = [r.name for r in before if r.kind in FEEDBACK_KINDS]
    if rung.start in feedback:
        raise _At(["rungs", index, "start"], f"{rung.start!r} makes a learned reward, not a model to train from: "
                  "give start: champion, base or an earlier policy rung")
    classifiers = [r.name for r in before if r.kind == "classifier"]
    if rung.start in classifiers or (rung.start == "champion" and classifiers):
        raise _At(["rungs", index, "start"], f"a {rung.kind} rung cannot train from the classifier rung "
                  f"{classifiers[0]!r} (a head on features, no text to generate): give start: base or the name of "
                  "an earlier generative rung")


def _check_reward_refs(before: list[Rung], rung: Rung, index: int) -> None:
    """An RL rung's ``{type: reward_model, rung: NAME}`` / ``{type: judge, rung: NAME}`` reward (in ``rewards`` or
    ``gold_rewards``) names an earlier rung of that kind."""
    kinds = {r.name: r.kind for r in before}
    for key in ("rewards", "gold_rewards"):
        entries = rung.train.get(key) or []
        for j, entry in enumerate(entries if isinstance(entries, list) else []):
            if not isinstance(entry, dict) or "rung" not in entry:
                continue
            name, kind = entry["rung"], entry.get("type")
            where = ["rungs", index, "train", key, j, "rung"]
            if rung.kind != "rl":
                raise _At(where, "only an rl rung takes its reward from an earlier rung")
            if kind not in FEEDBACK_KINDS:
                raise _At(where, f"a reward from a rung has type reward_model or judge, not {kind!r}")
            if kinds.get(name) != kind:
                raise _At(where, f"{name!r} is not an earlier {kind} rung")
            if ("path" if kind == "reward_model" else "provider") in entry:
                raise _At(where, "give the rung or the folder (path / provider), not both")


def _check_classification(task_name: str, rung: Rung, index: int) -> None:
    """A classifier rung needs a classification task (a label set), and reads the text alone."""
    if rung.instructions is not None:
        raise _At(["rungs", index, "instructions"], "a classifier reads the event's text alone: instructions "
                  "apply to generative rungs only")
    try:
        task = get_task(task_name)
    except ValueError:
        return  # reported when the climb starts
    if not isinstance(task, ClassificationTask):
        raise _At(["rungs", index, "kind"], f"a classifier rung needs a classification task (one with a label "
                  f"set, such as log-triage); {task.name!r} is not one")


def _check_instructions(task_name: str, instructions: str, index: int) -> None:
    try:
        task = get_task(task_name)
    except ValueError:
        return  # an unknown task is reported when the climb starts, with the task registry's own message
    try:
        task.styled(instructions)
    except ValueError as err:
        raise _At(["rungs", index, "instructions"], str(err)) from None


# -- reading a ladder file ------------------------------------------------------------------------
def load_ladder(path: str | Path, overrides: list[str] | dict[str, Any] | None = None) -> LadderConfig:
    """A :class:`LadderConfig` from a YAML file, with ``overrides`` on top.

    ``overrides`` are ``key=value`` strings (or a mapping) with dotted keys; a rung is named by its
    name: ``out_dir=runs/x``, ``rungs.sft.train.max_steps=10``, ``gate.target=0.9``. Values are YAML.
    A bad file gets one line naming the file, the line and the field.
    """
    import yaml

    path = Path(path)
    if not path.exists():
        raise MissingFileError(f"{path}: no such ladder file")
    text = path.read_text()
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        raise DataError(path, mark.line + 1 if mark else None, None,
                        f"invalid YAML: {getattr(err, 'problem', err)}") from None
    if not isinstance(data, dict):
        raise DataError(path, None, None,
                        f"expected a mapping (name, task, gate, rungs, ...), got {type(data).__name__}")
    for key, value in override_items(overrides):
        set_dotted(data, key, value)
    _resolve_files(data, path.parent)
    return parse_ladder(data, source=str(path), text=text)


def parse_ladder(data: dict[str, Any], *, source: str = "ladder", text: str | None = None) -> LadderConfig:
    """Validate a ladder given as a mapping; errors name ``source``, the YAML line (when ``text`` is given) and the field."""
    try:
        return LadderConfig.model_validate(data)
    except ValidationError as err:
        line_of = (lambda loc: yaml_line(text, loc)) if text else None
        raise data_error(err, source, line_of, skip=DATA_SOURCES) from None


def _resolve_files(data: dict[str, Any], base: Path) -> None:
    """Make data file paths relative to the ladder file's folder."""
    rungs = data.get("rungs")
    for rung in rungs if isinstance(rungs, list) else []:
        spec = rung.get("data") if isinstance(rung, dict) else None
        if isinstance(spec, dict) and spec.get("source") == "file" and isinstance(spec.get("path"), str):
            spec["path"] = str(base / spec["path"])
        train = rung.get("train") if isinstance(rung, dict) else None
        if isinstance(rung, dict) and rung.get("kind") in FEEDBACK_KINDS and isinstance(train, dict):
            for key in ("validation", "rubric"):  # a reward model's or judge's files, beside the ladder file
                if isinstance(train.get(key), str):
                    train[key] = "@" * train[key].startswith("@") + str(base / train[key].removeprefix("@"))
    ev = data.get("eval")
    for key in ("data", "validation", "shifted"):
        if isinstance(ev, dict) and isinstance(ev.get(key), str):
            ev[key] = str(base / ev[key])


__all__ = ["ACCEPT_DEFAULTS", "FEEDBACK_KINDS", "RETRIEVAL", "Accept", "ClassifierSettings", "Control", "DistillData",
           "EmbedSettings", "EvalSettings", "FileData", "Gate", "GenerateData", "Guard", "LadderConfig",
           "PairsData", "Rung", "load_ladder", "parse_ladder"]
