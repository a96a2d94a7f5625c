"""Preference optimisation on the shared loop: DPO, conservative DPO, IPO, DPO+NLL, RPO, SimPO, ORPO and KTO.

One trainer; the loss is the ``loss`` field. Paired losses read rows of
``{prompt, chosen, rejected}`` (:class:`~agentladder.data.PreferencePair`),
KTO reads ``{prompt, completion, label}`` (:class:`~agentladder.data.MarkedResponse`)
or pairs, split into a desirable and an undesirable row each. The maths lives in
:mod:`agentladder.train.preference_losses`; this module turns rows into
sequence log-probabilities and hands them over. RPO (Relative Preference
Optimization) also needs an embedding of each pair's prompt: its user turns
through the packaged all-MiniLM-L6-v2, computed once when the rows are read.

Each row is one sequence ``prompt | chosen | rejected`` whose prompt goes
through the model once (:mod:`agentladder.train.shared_prompt`); for KTO the
second tail is another row's response, for the KL reference point.

The reference policy (``reference``), for losses that have one:

- ``adapters``: the base model with the LoRA adapters disabled, run live each
  step without grad; never a second copy of the model. The default for a fresh
  LoRA adapter.
- ``precompute``: the starting model's log-probabilities of every row, computed
  once before training and stored in the run folder (``reference_logps.pt``),
  so a resumed run reads them back. The default for full fine-tuning, and for a
  LoRA adapter continued from an earlier run (whose reference is that adapter,
  not the bare base).
- ``copy``: a frozen copy of the starting model, run live (twice the weights
  in memory; for data too large to precompute over).
"""

from __future__ import annotations

import copy
import hashlib
import os
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import Field, model_validator

from agentladder.data.io import DataError, iter_json_lines, load_rows
from agentladder.data.schema import MarkedResponse, PreferencePair
from agentladder.errors import ConfigError, MissingFileError
from agentladder.models.chat import tokenize_conversation
from agentladder.models.embedding import embed
from agentladder.models.lora import is_lora, reference_mode
from agentladder.train.distributed import World
from agentladder.train.loop import LossOutput, TrainConfig, Trainer, TrainResult, autocast_for
from agentladder.train.preference_losses import (
    DEFAULT_BETA,
    PAIR_LOSSES,
    REFERENCE_FREE,
    LossParams,
    MarkedLogps,
    PairLogps,
    kto_kl_estimate,
    kto_loss,
)
from agentladder.train.run import (
    RUN_CONFIG,
    LoraFields,
    Run,
    finish_run,
    lineage_base,
    resolved_spec,
    start_run,
)
from agentladder.train.shared_prompt import (
    EncodedTriple,
    completion_logps,
    padded_batch,
    prompt_and_tail,
    shared_batch,
    split_shared_prompt,
    use_shared_prompt_attention,
)

LossName = Literal["dpo", "ipo", "dpo_nll", "rpo", "simpo", "orpo", "kto"]
RENAMED = ("DPO plus NLL (Pang et al. 2024) is now loss: dpo_nll, its NLL weight nll_alpha; loss: rpo is Relative "
           "Preference Optimization (Yin et al. 2024). Write loss: dpo_nll and nll_alpha instead of rpo_alpha")
"""Why a config that sets ``rpo_alpha`` (the old name of the DPO+NLL weight) is refused."""
ReferenceMode = Literal["auto", "adapters", "precompute", "copy"]
REFERENCE_FILE = "reference_logps.pt"


class PreferenceConfig(LoraFields, TrainConfig):
    """Preference optimisation: the loop's settings plus model, data, loss, reference and LoRA."""

    learning_rate: float | None = Field(None, gt=0)  # type: ignore[assignment]
    """Peak learning rate [default: 2e-5 with LoRA, 1e-6 full fine-tuning]."""
    batch_size: int | None = Field(None, ge=1)  # type: ignore[assignment]
    """Pairs (KTO: rows) per micro-batch on each process [default: 4; KTO 8, as its KL estimate needs 2+]."""
    warmup_ratio: float = 0.1
    """Share of the steps spent warming up linearly from 0."""
    model: str = "smollm2-135m"
    """Alias, local folder (usually an SFT run) or hub id; a LoRA run folder continues its adapter."""
    data: str
    """JSONL of preference pairs (``prompt``, ``chosen``, ``rejected``); for KTO, marked responses or pairs."""
    loss: LossName = "dpo"
    """``dpo`` (``label_smoothing > 0``: conservative DPO), ``ipo``, ``dpo_nll`` (DPO plus the chosen answer's
    NLL), ``rpo`` (Relative Preference Optimization), ``simpo``, ``orpo`` or ``kto``."""
    beta: float | None = Field(None, gt=0)
    """DPO/DPO+NLL/RPO/KTO beta, IPO tau, SimPO beta, ORPO lambda [default: 0.1; SimPO 2.0]."""
    label_smoothing: float = Field(0.0, ge=0, lt=0.5)
    """Conservative DPO (and SimPO): assumed share of flipped labels."""
    nll_alpha: float = Field(1.0, ge=0)
    """DPO+NLL: weight of the NLL term on the chosen response."""
    rpo_temperature: float = Field(0.5, gt=0)
    """RPO: temperature of the prompt-similarity weights (the paper's 0.5; smaller: only near prompts count)."""
    rpo_embedder: str | None = None
    """RPO: a sentence-transformers model folder for the prompt embeddings [default: the packaged
    all-MiniLM-L6-v2, the paper's choice]."""
    simpo_gamma: float = 0.5
    """SimPO: target reward margin."""
    kto_desirable_weight: float = Field(1.0, gt=0)
    """KTO: weight of the loss on desirable responses."""
    kto_undesirable_weight: float = Field(1.0, gt=0)
    """KTO: weight of the loss on undesirable responses."""
    kto_kl: bool = True
    """KTO: estimate the KL reference point from mismatched responses (else ``z_0 = 0``)."""
    reference: ReferenceMode = "auto"
    """Where reference log-probabilities come from: ``adapters`` (the base with LoRA off, run live),
    ``precompute`` (once, before training) or ``copy`` (a frozen copy, run live); ``auto`` takes ``adapters``
    for a fresh LoRA adapter, else ``precompute``."""
    max_length: int = Field(1024, ge=8)
    """Longest prompt plus response in tokens; longer responses are cut."""
    share_prompt: bool = True
    """Run each prompt once for both responses (needs ``sdpa`` attention; else padded rows)."""

    def __init__(self, **data: Any):
        if "rpo_alpha" in data:
            raise ConfigError(f"rpo_alpha: {RENAMED}")
        super().__init__(**data)

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        if isinstance(data, dict) and "rpo_alpha" in data:  # a saved config, or one validated from a mapping
            raise ValueError(RENAMED)
        return data

    @model_validator(mode="after")
    def _fill_defaults(self) -> PreferenceConfig:
        if self.beta is None:
            self.beta = DEFAULT_BETA[self.loss]
        if self.learning_rate is None:
            self.learning_rate = 2e-5 if self.lora else 1e-6
        if self.batch_size is None:
            self.batch_size = 8 if self.loss == "kto" else 4
        return self

    def params(self) -> LossParams:
        return LossParams(beta=float(self.beta or DEFAULT_BETA[self.loss]), label_smoothing=self.label_smoothing,
                          nll_alpha=self.nll_alpha, rpo_temperature=self.rpo_temperature, simpo_gamma=self.simpo_gamma,
                          desirable_weight=self.kto_desirable_weight, undesirable_weight=self.kto_undesirable_weight)


# -- rows -----------------------------------------------------------------------------------------
def encode_pairs(tokenizer, pairs: Sequence[PreferencePair], max_length: int, source: str = "data",
                 embeddings: Sequence[Sequence[float]] | None = None) -> tuple[list[EncodedTriple], int]:
    """Tokenise pairs into ``prompt | chosen | rejected`` triples; return them and how many were dropped.

    ``embeddings`` (one per pair, in order) go with the triples, for RPO's prompt weights.
    """
    out = []
    for i, pair in enumerate(pairs):
        chosen = tokenize_conversation(tokenizer, [*pair.prompt, *pair.chosen])
        rejected = tokenize_conversation(tokenizer, [*pair.prompt, *pair.rejected])
        triple = split_shared_prompt(chosen, rejected, max_length)
        if triple is not None:
            if embeddings is not None:
                triple.embedding = list(embeddings[i])
            out.append(triple)
    if not out:
        raise DataError(source, None, None, f"no pair has a scored response token within max_length={max_length}")
    return out, len(pairs) - len(out)


def marked_from_pairs(pairs: Sequence[PreferencePair]) -> list[MarkedResponse]:
    """Each pair as two KTO rows: the chosen response desirable, the rejected one not."""
    return [MarkedResponse(id=p.id, prompt=p.prompt, completion=c, label=label, metadata=p.metadata)
            for p in pairs for c, label in ((p.chosen, True), (p.rejected, False))]


def encode_marked(tokenizer, rows: Sequence[MarkedResponse], max_length: int, *, seed: int = 0, kl: bool = True,
                  source: str = "data") -> tuple[list[EncodedTriple], int]:
    """Tokenise KTO rows as ``prompt | response | another row's response`` (the last for the KL estimate).

    The partner of each row is fixed by ``seed`` (the next row in a seeded permutation),
    so its reference log-probability can be precomputed like any other.
    """
    order = torch.randperm(len(rows), generator=torch.Generator().manual_seed(seed)).tolist()
    partner = {order[k]: order[(k + 1) % len(order)] for k in range(len(order))}
    out = []
    for i, row in enumerate(rows):
        own = tokenize_conversation(tokenizer, [*row.prompt, *row.completion])
        triple = None
        if kl and len(rows) > 1:
            other = tokenize_conversation(tokenizer, [*row.prompt, *rows[partner[i]].completion])
            triple = split_shared_prompt(own, other, max_length)
        triple = triple or prompt_and_tail(own, max_length)
        if triple is not None:
            triple.label = row.label
            out.append(triple)
    if not out:
        raise DataError(source, None, None, f"no row has a scored response token within max_length={max_length}")
    return out, len(rows) - len(out)


def _holds_pairs(path: str) -> bool:
    """Whether a data file's first row is a pair (has ``chosen``) rather than a marked response."""
    if Path(path).is_dir():
        from datasets import load_from_disk

        return "chosen" in load_from_disk(path).column_names
    for _, obj in iter_json_lines(path):
        return isinstance(obj, dict) and "chosen" in obj
    return False


def prompt_text(pair: PreferencePair) -> str:
    """What RPO embeds of a pair's prompt: its user turns (a system prompt shared by every row would only
    blur the similarities, and push the part that differs past the embedder's length limit)."""
    users = [m.content or "" for m in pair.prompt if m.role == "user"]
    return "\n".join(users) if users else "\n".join(m.content or "" for m in pair.prompt)


def load_preference_rows(tokenizer, config: PreferenceConfig) -> tuple[list[EncodedTriple], int]:
    """The run's data, tokenised for its loss (with each prompt's embedding for RPO)."""
    if config.loss != "kto":
        pairs = load_rows(config.data, PreferencePair)
        vectors = None
        if config.loss == "rpo":
            vectors = embed([prompt_text(p) for p in pairs], model=config.rpo_embedder).tolist()
        return encode_pairs(tokenizer, pairs, config.max_length, config.data, vectors)
    if _holds_pairs(config.data):
        marked = marked_from_pairs(load_rows(config.data, PreferencePair))
    else:
        marked = load_rows(config.data, MarkedResponse)
    return encode_marked(tokenizer, marked, config.max_length, seed=config.seed, kl=config.kto_kl, source=config.data)


# -- the reference policy -----------------------------------------------------------------------
def resolve_reference(config: PreferenceConfig, *, lora: bool, continued_adapter: bool) -> str:
    """The reference mode a run uses: ``none`` for reference-free losses, else ``adapters``/``precompute``/``copy``."""
    if config.loss in REFERENCE_FREE:
        return "none"
    mode = config.reference
    if mode == "auto":
        return "adapters" if lora and not continued_adapter else "precompute"
    if mode == "adapters":
        if not lora:
            raise ConfigError("reference='adapters' needs a LoRA run (--lora); use precompute or copy")
        if continued_adapter:
            raise ConfigError("reference='adapters' would make the bare base the reference, not the adapter this run "
                              "continues; use reference='precompute'")
    return mode


def _fingerprint(rows: Sequence[EncodedTriple]) -> str:
    h = hashlib.sha256()
    for r in rows:
        h.update(repr((r.prompt, r.a_ids, r.a_mask, r.b_ids, r.b_mask)).encode())
    return h.hexdigest()


@torch.no_grad()
def reference_logps(model, rows: Sequence[EncodedTriple], collate: Callable[[list], dict], *, batch_size: int,
                    world: World, context: Callable[[], AbstractContextManager] = nullcontext,
                    progress: bool = True) -> torch.Tensor:
    """``(N, 2)`` log-probabilities of every row's two tails under ``model`` as it is now (eval mode, no grad).

    Each process scores every ``world_size``-th batch; the results are summed across processes.
    """
    from rich.progress import Progress

    was_training = model.training
    model.eval()
    out = torch.zeros(len(rows), 2, dtype=torch.float64)
    starts = list(range(0, len(rows), batch_size))[world.rank :: world.world_size]
    with Progress(disable=not (progress and world.is_main), transient=True) as bar:
        task = bar.add_task("reference log-probs", total=len(starts))
        for s in starts:
            idx = list(range(s, min(s + batch_size, len(rows))))
            with context():
                logps, _ = completion_logps(model, collate([rows[i] for i in idx]))
            out[idx] = logps.double().cpu()
            bar.update(task, advance=1)
    if world.distributed:
        import torch.distributed as dist

        t = out.to(world.device) if dist.get_backend() == "nccl" else out
        dist.all_reduce(t)
        out = t.cpu()
    model.train(was_training)
    return out


def attach_reference(rows: Sequence[EncodedTriple], logps: torch.Tensor) -> None:
    for row, (a, b) in zip(rows, logps.tolist(), strict=True):
        row.ref_a, row.ref_b = a, b


def _precomputed(model, rows, collate, config: PreferenceConfig, world: World, resume: bool, context) -> None:
    """Fill ``rows``' reference log-probabilities: read back a resumed run's file, or compute and store them."""
    path = Path(config.out_dir) / REFERENCE_FILE
    fingerprint = _fingerprint(rows)
    if path.exists() and resume:
        saved = torch.load(path, weights_only=True)
        if saved["fingerprint"] != fingerprint:
            raise ConfigError(f"{path} was computed for other data or settings than this run's")
        attach_reference(rows, saved["logps"])
        return
    has_checkpoint = (Path(config.out_dir) / "checkpoints").exists() and any(
        (Path(config.out_dir) / "checkpoints").iterdir())
    if has_checkpoint:
        raise MissingFileError(f"{path} is missing: the trained model can no longer give the reference")
    logps = reference_logps(model, rows, collate, batch_size=config.batch_size, world=world, context=context,
                            progress=config.progress)
    if world.is_main:
        tmp = path.with_name(f".{path.name}.tmp")
        torch.save({"fingerprint": fingerprint, "logps": logps}, tmp)
        os.replace(tmp, path)
    attach_reference(rows, logps)


# -- the loss -----------------------------------------------------------------------------------
def make_loss_fn(config: PreferenceConfig, live_reference: Callable[[dict], torch.Tensor] | None = None):
    """``loss_fn(model, batch) -> LossOutput`` for the shared loop.

    Reference log-probabilities come from the batch (precomputed) or ``live_reference``.
    Metrics (sums over the rows; the loop divides by the number of rows):
    ``reward_accuracy``, ``margin``, ``reward_chosen``, ``reward_rejected``,
    ``logp_chosen``, ``logp_rejected`` (KTO: ``reward_accuracy``, ``reward``, ``kl``, ``logp``).
    """
    params = config.params()
    needs_ref = config.loss not in REFERENCE_FREE

    def loss_fn(model, batch: dict) -> LossOutput:
        ref = None
        if needs_ref:
            if "ref_a" in batch:
                ref = torch.stack([batch["ref_a"], batch["ref_b"]], 1)
            elif live_reference is not None:
                ref = live_reference(batch)
            else:
                raise RuntimeError("this loss needs reference log-probabilities and none were given")
        logps, counts = completion_logps(model, batch)  # (R, 2) each
        if ref is not None:
            ref = ref.to(logps.device, logps.dtype)
        if config.loss == "kto":
            return _kto(logps, counts, ref, batch["label"].to(logps.device), params)
        lp = PairLogps(logps[:, 0], logps[:, 1], counts[:, 0], counts[:, 1],
                       None if ref is None else ref[:, 0], None if ref is None else ref[:, 1],
                       batch.get("prompt_embeddings"))
        out = PAIR_LOSSES[config.loss](lp, params)
        margin = out.chosen_reward - out.rejected_reward
        metrics = {
            "reward_accuracy": float((margin > 0).sum()),
            "margin": float(margin.sum()),
            "reward_chosen": float(out.chosen_reward.sum()),
            "reward_rejected": float(out.rejected_reward.sum()),
            "logp_chosen": float(lp.chosen.detach().sum()),
            "logp_rejected": float(lp.rejected.detach().sum()),
        }
        return LossOutput(loss_sum=out.loss.sum(), metrics=metrics)

    return loss_fn


def _kto(logps: torch.Tensor, counts: torch.Tensor, ref: torch.Tensor, label: torch.Tensor,
         params: LossParams) -> LossOutput:
    has_partner = counts[:, 1] > 0
    kl = kto_kl_estimate(logps[has_partner, 1].detach(), ref[has_partner, 1])
    out = kto_loss(MarkedLogps(logps[:, 0], ref[:, 0], label, kl), params)
    signed = torch.where(label, out.chosen_reward, -out.chosen_reward)
    right_side = torch.where(label, logps[:, 0].detach() - ref[:, 0] > kl, logps[:, 0].detach() - ref[:, 0] < kl)
    metrics = {
        "reward_accuracy": float(right_side.sum()),
        "reward": float(signed.sum()),
        "kl": float(kl) * len(label),
        "logp": float(logps[:, 0].detach().sum()),
    }
    return LossOutput(loss_sum=out.loss.sum(), metrics=metrics)


# -- the run ------------------------------------------------------------------------------------
def preference(config: PreferenceConfig | None = None, /, *, resume: bool = False, **kwargs: Any) -> TrainResult:
    """Train ``config.model`` on preference data; see :class:`PreferenceConfig` for the settings.

    ``preference(model="runs/sft1", data="pairs.jsonl", loss="dpo", out_dir="runs/dpo1")``
    works as well as passing a config. With ``resume=True`` an interrupted run in
    ``out_dir`` continues from its newest checkpoint with the settings it was started with.
    """
    _refuse_renamed(config, kwargs, resume)
    run = start_run(PreferenceConfig, config, kwargs, resume)
    config, model = run.config, run.model
    mode = resolve_reference(config, lora=is_lora(model), continued_adapter=run.from_adapter)
    rows, dropped = load_preference_rows(run.tokenizer, config)
    run.save_config()
    model.to(run.world.device)
    shared = config.share_prompt and use_shared_prompt_attention(model)
    pad_id = run.tokenizer.pad_token_id if run.tokenizer.pad_token_id is not None else run.tokenizer.eos_token_id
    collate = shared_batch if shared else (lambda r: padded_batch(r, pad_id))
    live_reference = reference_policy(run, mode, rows, collate)
    trainer = Trainer(model, rows, collate, make_loss_fn(config, live_reference), config, world=run.world,
                      description=config.loss)
    result = trainer.run(resume=resume)

    def metadata(lora: bool) -> dict[str, Any]:
        return {"method": config.loss, "base_model": lineage_base(config.model, lora),
                "start_model": resolved_spec(config.model), "lora": lora, "steps": trainer.step,
                "data": str(Path(config.data).resolve()), "rows": len(rows), "rows_dropped": dropped,
                "beta": config.beta, "reference": mode, "final_loss": result.final_loss}

    return finish_run(run, trainer, result, metadata, restore_attention=shared)


def _refuse_renamed(config: PreferenceConfig | None, kwargs: dict[str, Any], resume: bool) -> None:
    """A run saved before DPO+NLL was renamed (its config has ``rpo_alpha``) is refused by name."""
    saved = Path(config.out_dir if config else kwargs.get("out_dir", ".")) / RUN_CONFIG
    if resume and saved.exists() and '"rpo_alpha"' in saved.read_text():
        raise ConfigError(f"{saved}: this run was saved before the rename: {RENAMED}; resume it with an older "
                          "agentladder, or start it again")


def reference_policy(run: Run[PreferenceConfig], mode: str, rows: Sequence[EncodedTriple],
                     collate: Callable[[list], dict]) -> Callable[[dict], torch.Tensor] | None:
    """Set up the run's reference policy: the live reference (``adapters``, ``copy``), or ``None``.

    ``precompute`` fills every row's reference log-probabilities now (or reads back a resumed
    run's); reference-free losses (``none``) need nothing.
    """
    model, config, world = run.model, run.config, run.world
    if mode == "precompute":
        # A fresh adapter starts as the base, so the base (adapters off) is the same policy, and cheaper.
        # The reference runs at the training precision, so the first step's log-ratios are exactly 0.
        fresh = is_lora(model) and not run.from_adapter

        @contextmanager
        def context():
            with reference_mode(model) if fresh else nullcontext(), autocast_for(config.precision, world.device):
                yield

        _precomputed(model, rows, collate, config, world, run.resume, context)
        return None
    if mode == "adapters":
        def live_reference(batch: dict) -> torch.Tensor:
            with torch.no_grad(), reference_mode(model):
                return completion_logps(model, batch)[0]

        return live_reference
    if mode == "copy":
        frozen = copy.deepcopy(model).eval().requires_grad_(False)

        def frozen_reference(batch: dict) -> torch.Tensor:
            with torch.no_grad():
                return completion_logps(frozen, batch)[0]

        return frozen_reference
    return None


__all__ = [
    "PreferenceConfig",
    "encode_marked",
    "encode_pairs",
    "make_loss_fn",
    "marked_from_pairs",
    "preference",
    "reference_logps",
]
