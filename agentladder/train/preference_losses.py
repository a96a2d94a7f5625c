"""Preference losses as pure functions over sequence log-probabilities.

Every paired loss takes one input type, :class:`PairLogps` (the policy's and,
where the loss has one, the reference's summed log-probabilities of each
chosen and rejected response, with their token counts), and the shared
:class:`LossParams`; it returns a :class:`PairLoss` (the per-pair loss and the
implicit rewards the metrics report). :data:`PAIR_LOSSES` is the registry the
preference trainer's ``loss`` field selects from. KTO is unpaired and has its
own input type, :class:`MarkedLogps`.

Notation (per pair ``i``; all tensors are ``(B,)``):

- ``pi_w``, ``pi_l``: ``log pi_theta(y_w | x)``, ``log pi_theta(y_l | x)``, summed over the
  response tokens; ``ref_w``, ``ref_l`` the same under the reference policy;
- ``n_w``, ``n_l``: the number of response tokens;
- ``sigma`` the logistic function.

Sources and departures are listed in ``docs/papers.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class PairLogps:
    """Summed log-probabilities of the chosen (``w``) and rejected (``l``) responses of ``B`` pairs."""

    chosen: torch.Tensor
    """``(B,)`` ``pi_w``: policy log-probability of each chosen response (with grad)."""
    rejected: torch.Tensor
    """``(B,)`` ``pi_l``."""
    chosen_tokens: torch.Tensor
    """``(B,)`` ``n_w``: tokens scored in each chosen response."""
    rejected_tokens: torch.Tensor
    """``(B,)`` ``n_l``."""
    ref_chosen: torch.Tensor | None = None
    """``(B,)`` ``ref_w`` (no grad); ``None`` for the reference-free losses."""
    ref_rejected: torch.Tensor | None = None
    """``(B,)`` ``ref_l``."""
    prompt_embeddings: torch.Tensor | None = None
    """``(B, D)`` an embedding of each pair's prompt (RPO's prompt-similarity weights); ``None`` otherwise."""

    def logratios(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(pi_w - ref_w, pi_l - ref_l)``."""
        if self.ref_chosen is None or self.ref_rejected is None:
            raise ValueError("this loss needs reference log-probabilities")
        return self.chosen - self.ref_chosen, self.rejected - self.ref_rejected


@dataclass
class MarkedLogps:
    """Summed log-probabilities of ``B`` single responses, each marked desirable or not (KTO)."""

    logps: torch.Tensor
    """``(B,)`` ``log pi_theta(y | x)`` (with grad)."""
    ref_logps: torch.Tensor
    """``(B,)`` ``log pi_ref(y | x)``."""
    desirable: torch.Tensor
    """``(B,)`` bool: the label."""
    kl: torch.Tensor
    """Scalar reference point ``z_0`` (no grad), see :func:`kto_kl_estimate`."""


@dataclass
class PairLoss:
    loss: torch.Tensor
    """``(B,)`` per-pair loss; the trainer sums it and the loop divides by the number of pairs."""
    chosen_reward: torch.Tensor
    """``(B,)`` implicit reward of the chosen response (detached), for the metrics."""
    rejected_reward: torch.Tensor
    """``(B,)``."""


@dataclass(frozen=True)
class LossParams:
    """Hyperparameters of the preference losses (each loss reads the ones it uses)."""

    beta: float = 0.1
    """DPO/DPO+NLL/RPO/KTO: ``beta``, the strength of the implicit KL penalty; IPO: ``tau``;
    SimPO: the reward scale ``beta``; ORPO: the odds-ratio weight ``lambda``."""
    label_smoothing: float = 0.0
    """Conservative DPO / SimPO: ``epsilon``, the assumed share of flipped labels."""
    nll_alpha: float = 1.0
    """DPO+NLL: weight ``alpha`` of the NLL term on the chosen response."""
    rpo_temperature: float = 0.5
    """RPO: ``tau``, the temperature of the prompt-similarity weights (smaller: only near prompts count)."""
    simpo_gamma: float = 0.5
    """SimPO: target reward margin ``gamma``."""
    desirable_weight: float = 1.0
    """KTO: ``lambda_D``."""
    undesirable_weight: float = 1.0
    """KTO: ``lambda_U``."""


def _smoothed_logistic(z: torch.Tensor, eps: float) -> torch.Tensor:
    """``-(1 - eps) log sigma(z) - eps log sigma(-z)``."""
    return -(1 - eps) * F.logsigmoid(z) - eps * F.logsigmoid(-z)


def dpo_loss(lp: PairLogps, p: LossParams) -> PairLoss:
    """DPO, and conservative DPO with ``label_smoothing > 0``.

    ``h = (pi_w - ref_w) - (pi_l - ref_l)``;
    ``loss = -(1 - eps) log sigma(beta h) - eps log sigma(-beta h)``;
    rewards ``beta (pi - ref)``.

    Rafailov et al., *Direct Preference Optimization*, 2023, arXiv:2305.18290 (eq. 7);
    conservative DPO (``eps``): Mitchell, *A note on DPO with noisy preferences*, 2023.
    """
    chosen, rejected = lp.logratios()
    loss = _smoothed_logistic(p.beta * (chosen - rejected), p.label_smoothing)
    return PairLoss(loss, p.beta * chosen.detach(), p.beta * rejected.detach())


def ipo_loss(lp: PairLogps, p: LossParams) -> PairLoss:
    """IPO: a squared loss that regresses the (per-token) log-ratio gap onto ``1 / (2 tau)``.

    ``h = (pi_w - ref_w) / n_w - (pi_l - ref_l) / n_l``;  ``loss = (h - 1 / (2 tau))^2`` with ``tau = beta``.

    Azar et al., *A General Theoretical Paradigm to Understand Learning from Human
    Preferences*, 2023, arXiv:2310.12036 (eq. 17). The log-ratios are averaged over
    the response tokens, as TRL does with the authors' agreement; the paper writes
    sequence sums.
    """
    chosen, rejected = lp.logratios()
    h = chosen / lp.chosen_tokens.clamp(min=1) - rejected / lp.rejected_tokens.clamp(min=1)
    loss = (h - 1 / (2 * p.beta)) ** 2
    return PairLoss(loss, p.beta * chosen.detach(), p.beta * rejected.detach())


def dpo_nll_loss(lp: PairLogps, p: LossParams) -> PairLoss:
    """DPO plus a negative log-likelihood term on the chosen response.

    ``loss = dpo_loss - alpha * pi_w / n_w``.

    Pang et al., *Iterative Reasoning Preference Optimization*, 2024, arXiv:2404.19733
    (eq. 1: the NLL is length-normalised per response). TRL averages the NLL over all
    chosen tokens of the batch instead; the two agree when the chosen responses have
    equal lengths. (TRL and the paper call this "RPO"; here ``rpo`` is Relative
    Preference Optimization, :func:`rpo_loss`.)
    """
    out = dpo_loss(lp, p)
    nll = -lp.chosen / lp.chosen_tokens.clamp(min=1)
    return PairLoss(out.loss + p.nll_alpha * nll, out.chosen_reward, out.rejected_reward)


def prompt_weights(embeddings: torch.Tensor, temperature: float) -> torch.Tensor:
    """``(B, B)`` RPO's contrast weights: ``w_ij = softmax_j(-(1 - cos(e_i, e_j)) / tau)``.

    Each row sums to 1; a pair's own prompt (cosine 1) and prompts like it weigh most.
    """
    e = F.normalize(embeddings.float(), p=2, dim=-1)
    distance = 1 - e @ e.T  # (B, B) cosine distance
    return torch.softmax(-distance / temperature, dim=-1)


def rpo_loss(lp: PairLogps, p: LossParams) -> PairLoss:
    """Relative Preference Optimization: every chosen answer against every rejected answer of the batch,
    each contrast weighted by how alike the two prompts are.

    With ``r_w,i = pi_w,i - ref_w,i`` and ``r_l,j = pi_l,j - ref_l,j`` (pair ``i``'s chosen and pair ``j``'s
    rejected log-ratio), ``h_ij = r_w,i - r_l,j`` (the contrast matrix; its diagonal is DPO's),
    ``w_ij = softmax_j(-(1 - cos(e_i, e_j)) / tau)`` over the prompts' embeddings ``e``:
    ``loss_i = mean_j -log sigma(beta w_ij h_ij)``; rewards ``beta r`` as in DPO.

    Yin et al., *Relative Preference Optimization: Enhancing LLM Alignment through Contrasting
    Responses across Identical and Diverse Prompts*, 2024, arXiv:2402.10958 (section 4, the paired
    variant), as the authors' code computes it (the weight scales the contrast inside the sigmoid;
    ``tau = 0.5`` and all-MiniLM-L6-v2 prompt embeddings in their runs). The contrasts span one
    micro-batch (the paper: one device's batch). Shapes: ``(B,)`` in, ``(B,)`` out.
    """
    if lp.prompt_embeddings is None:
        raise ValueError("loss rpo needs an embedding of each pair's prompt (PairLogps.prompt_embeddings)")
    chosen, rejected = lp.logratios()
    contrast = chosen[:, None] - rejected[None, :]  # (B, B): h_ij
    weights = prompt_weights(lp.prompt_embeddings.to(contrast.device), p.rpo_temperature).to(contrast.dtype)
    loss = -F.logsigmoid(p.beta * weights * contrast).mean(dim=-1)
    return PairLoss(loss, p.beta * chosen.detach(), p.beta * rejected.detach())


def simpo_loss(lp: PairLogps, p: LossParams) -> PairLoss:
    """SimPO: reference-free, length-normalised, with a target margin.

    ``h = beta (pi_w / n_w - pi_l / n_l) - gamma``;
    ``loss = -(1 - eps) log sigma(h) - eps log sigma(-h)``; rewards ``beta pi / n``.

    Meng et al., *SimPO: Simple Preference Optimization with a Reference-Free Reward*,
    2024, arXiv:2405.14734 (eq. 6); ``eps`` as in conservative DPO (TRL's CPO trainer).
    """
    chosen = lp.chosen / lp.chosen_tokens.clamp(min=1)
    rejected = lp.rejected / lp.rejected_tokens.clamp(min=1)
    loss = _smoothed_logistic(p.beta * (chosen - rejected) - p.simpo_gamma, p.label_smoothing)
    return PairLoss(loss, p.beta * chosen.detach(), p.beta * rejected.detach())


def log1mexp(x: torch.Tensor) -> torch.Tensor:
    """``log(1 - exp(x))`` for ``x < 0``, stable at both ends (Maechler, 2012)."""
    return torch.where(x > -0.6931471805599453, torch.log(-torch.expm1(x)), torch.log1p(-torch.exp(x)))


def orpo_loss(lp: PairLogps, p: LossParams) -> PairLoss:
    """ORPO: SFT on the chosen response plus an odds-ratio term; no reference.

    With per-token averages ``a_w = pi_w / n_w``, ``a_l = pi_l / n_l`` and
    ``odds(a) = exp(a) / (1 - exp(a))``:
    ``log_or = (a_w - a_l) - (log(1 - exp(a_w)) - log(1 - exp(a_l)))``;
    ``loss = -a_w - lambda log sigma(log_or)`` with ``lambda = beta``; rewards ``beta a``.

    Hong et al., *ORPO: Monolithic Preference Optimization without Reference Model*,
    2024, arXiv:2403.07691 (eqs. 4-7). TRL averages the SFT term over all chosen tokens
    of the batch; here it is each pair's per-token mean, as in the paper.
    """
    chosen = lp.chosen / lp.chosen_tokens.clamp(min=1)
    rejected = lp.rejected / lp.rejected_tokens.clamp(min=1)
    log_odds = (chosen - rejected) - (log1mexp(chosen) - log1mexp(rejected))
    loss = -chosen - p.beta * F.logsigmoid(log_odds)
    return PairLoss(loss, p.beta * chosen.detach(), p.beta * rejected.detach())


PairLossFn = Callable[[PairLogps, LossParams], PairLoss]

PAIR_LOSSES: dict[str, PairLossFn] = {
    "dpo": dpo_loss,
    "ipo": ipo_loss,
    "dpo_nll": dpo_nll_loss,
    "rpo": rpo_loss,
    "simpo": simpo_loss,
    "orpo": orpo_loss,
}
"""The paired losses by name (the ``loss`` field of the preference config)."""

REFERENCE_FREE = frozenset({"simpo", "orpo"})
"""Losses that never look at a reference policy."""

DEFAULT_BETA = {"dpo": 0.1, "ipo": 0.1, "dpo_nll": 0.1, "rpo": 0.1, "simpo": 2.0, "orpo": 0.1, "kto": 0.1}
"""Each loss's ``beta`` when none is given (the papers' and TRL's defaults)."""


def kto_kl_estimate(mismatched_logps: torch.Tensor, mismatched_ref_logps: torch.Tensor) -> torch.Tensor:
    """KTO's reference point: ``z_0 = max(0, mean_j (log pi_theta(y_j | x_i) - log pi_ref(y_j | x_i)))``.

    Each prompt ``x_i`` is paired with another row's response ``y_j`` (``j != i``), so the
    mean estimates ``KL(pi_theta || pi_ref)`` without favouring the row's own answer.
    Detached: the paper does not backpropagate through ``z_0``. Shapes ``(B,)`` -> ``()``.
    """
    if mismatched_logps.numel() == 0:
        return mismatched_logps.new_zeros(())
    return (mismatched_logps - mismatched_ref_logps).mean().detach().clamp(min=0)


def kto_loss(m: MarkedLogps, p: LossParams) -> PairLoss:
    """KTO: a prospect-theory value per single response, against the reference point ``z_0``.

    ``r = pi - ref``; desirable: ``loss = lambda_D (1 - sigma(beta (r - z_0)))``;
    undesirable: ``loss = lambda_U (1 - sigma(beta (z_0 - r)))``; reward ``beta r``.

    Ethayarajh et al., *KTO: Model Alignment as Prospect Theoretic Optimization*, 2024,
    arXiv:2402.01306 (eqs. 7-8). Returned as a :class:`PairLoss` whose ``chosen_reward``
    is each row's reward and ``rejected_reward`` is zero.
    """
    r = m.logps - m.ref_logps
    good = (1 - torch.sigmoid(p.beta * (r - m.kl))) * p.desirable_weight
    bad = (1 - torch.sigmoid(p.beta * (m.kl - r))) * p.undesirable_weight
    loss = torch.where(m.desirable, good, bad)
    reward = p.beta * r.detach()
    return PairLoss(loss, reward, torch.zeros_like(reward))


__all__ = [
    "DEFAULT_BETA",
    "LossParams",
    "MarkedLogps",
    "PAIR_LOSSES",
    "PairLogps",
    "PairLoss",
    "REFERENCE_FREE",
    "dpo_loss",
    "dpo_nll_loss",
    "ipo_loss",
    "kto_kl_estimate",
    "kto_loss",
    "log1mexp",
    "orpo_loss",
    "prompt_weights",
    "rpo_loss",
    "simpo_loss",
]
