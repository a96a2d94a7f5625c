"""The RL trainer's settings, its named presets, and reading them from YAML.

Every algorithm is a combination of the fields of :class:`RLConfig`; a preset
fills them as its paper does, and any field given explicitly wins over the
preset. One paragraph per preset (details and departures in ``docs/papers.md``):

- ``grpo`` (Shao et al. 2024, DeepSeekMath): group-normalised outcome advantage,
  a mean over responses of per-token means, clip 0.2, k3 KL to the reference as a
  loss term with coefficient 0.04, one update per rollout.
- ``dapo`` (Yu et al. 2025): clip-higher (0.2 low, 0.28 high), token-level loss
  over the batch, dynamic sampling (groups whose rewards are all equal are dropped
  and more prompts sampled), soft overlong punishment over the last quarter of the
  budget, no KL term.
- ``gspo`` (Zheng et al. 2025): the importance ratio of a whole response (the
  geometric mean of its token ratios) clipped to ``[1 - 3e-4, 1 + 4e-4]``, four
  mini-batches per rollout, no KL term.
- ``dr_grpo`` (Liu et al. 2025): the group mean as baseline without dividing by
  the std, and response-level sums over a constant (the budget) instead of
  per-response means, so no length bias; no KL term.
- ``rloo`` (Ahmadian et al. 2024): leave-one-out baseline, REINFORCE on whole
  responses (sums over a constant), k1 KL folded into the reward.
- ``reinforce_pp`` (Hu 2025): per-token KL penalty in the reward, returns
  whitened over the whole batch (no critic, no group baseline), clip 0.2.
- ``ppo`` (Schulman et al. 2017; Ouyang et al. 2022): a value head and GAE
  (gamma 1, lambda 0.95), per-token k1 KL penalty in the reward, clipped value
  loss, four mini-batches per rollout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator

from agentladder.data.io import yaml_line
from agentladder.errors import DataError, MissingFileError, data_error
from agentladder.rewards.config import build_reward
from agentladder.train.loop import TrainConfig
from agentladder.train.run import LoraFields

PresetName = Literal["grpo", "dapo", "gspo", "dr_grpo", "rloo", "reinforce_pp", "ppo"]
AdvantageName = Literal["grpo", "dr_grpo", "rloo", "reinforce_pp", "gae"]

PRESETS: dict[str, dict[str, Any]] = {
    "grpo": dict(advantage="grpo", loss_agg="seq_mean_token_mean", clip_low=0.2, clip_high=0.2,
                 kl_coef=0.04, kl_estimator="k3", kl_in="loss"),
    "dapo": dict(advantage="grpo", loss_agg="token_mean", clip_low=0.2, clip_high=0.28, kl_coef=0.0,
                 dynamic_sampling=True, overlong_buffer_ratio=0.25, overlong_penalty=1.0),
    "gspo": dict(advantage="grpo", loss_agg="seq_mean_token_mean", ratio_level="sequence", clip_low=3e-4,
                 clip_high=4e-4, num_minibatches=4, kl_coef=0.0),
    "dr_grpo": dict(advantage="dr_grpo", loss_agg="seq_sum_norm", clip_low=0.2, clip_high=0.2, kl_coef=0.0),
    "rloo": dict(advantage="rloo", loss_agg="seq_sum_norm", clip_low=0.2, clip_high=0.2, kl_coef=0.05,
                 kl_estimator="k1", kl_in="reward"),
    "reinforce_pp": dict(advantage="reinforce_pp", loss_agg="token_mean", clip_low=0.2, clip_high=0.2,
                         kl_coef=0.01, kl_estimator="k1", kl_in="reward", gamma=1.0),
    "ppo": dict(advantage="gae", loss_agg="token_mean", clip_low=0.2, clip_high=0.2, kl_coef=0.05,
                kl_estimator="k1", kl_in="reward", gamma=1.0, lam=0.95, vf_coef=0.1, value_clip=0.2,
                num_minibatches=4),
}
"""Field values of each preset; see the module docstring."""


class RLConfig(LoraFields, TrainConfig):
    """Reinforcement learning on the shared loop. ``batch_size`` is the number of prompts per rollout step."""

    preset: PresetName | None = None
    """Fill the algorithm's fields as its paper does (explicit fields win); see the module docstring."""
    model: str = "smollm2-135m"
    """Alias, local folder (usually an SFT run; a LoRA run is merged first) or hub id."""
    task: str | None = None
    """An evaluation task (``medication-directions``): its prompts, and its scorer as the default reward."""
    data: str | None = None
    """JSONL of prompts: ``RLPrompt`` rows (``prompt``, ``target``), or the task's own rows when ``task`` is set."""
    split: str = "train"
    """With a task and no data: the generated split to train on."""
    n_prompts: int = Field(2000, ge=1)
    """With a task and no data: how many prompts to generate."""
    rewards: list[dict[str, Any]] | None = None
    """Reward components (``agentladder.rewards.config``); default: the task's scorer."""
    gold_rewards: list[dict[str, Any]] | None = None
    """A held-out gold score (entries as ``rewards``: the task's grader, a reference judge) scored on every
    first-round response and never trained on; with it the run watches for reward hacking
    (``agentladder.train.rl_monitor``) and plots proxy against gold (``hacking.png``)."""
    hacking_window: int = Field(5, ge=1)
    """The monitor compares the mean proxy and gold of the last this many steps with the ones before them."""
    hacking_tolerance: float = Field(0.0, ge=0)
    """The proxy must rise, and the gold fall, by more than this for the monitor to fire."""
    on_hacking: Literal["warn", "stop"] = "warn"
    """When the monitor fires: ``warn`` (and mark the step ``hacking``), or ``stop`` the run there and save the model."""

    batch_size: int = Field(4, ge=1)
    """Prompts per rollout step (each answered ``group_size`` times)."""

    # -- sampling
    group_size: int = Field(8, ge=1)
    """Responses sampled per prompt."""
    max_new_tokens: int | None = Field(None, ge=1)
    """Generation budget per response [default: the task's, else 256]."""
    max_prompt_length: int = Field(1024, ge=1)
    """Longer prompts are dropped (and counted)."""
    temperature: float = Field(1.0, ge=0)
    """Sampling temperature of the rollouts."""
    top_p: float = Field(1.0, gt=0, le=1)
    """Nucleus sampling: draw from the smallest set of tokens whose probability reaches this."""
    stop: list[str] = Field(default_factory=list)
    """Stop strings (a response ends with the token that completes one)."""
    stop_at_json: bool | None = None
    """End a response once its JSON object closes [default: the task's setting]."""
    max_turns: int = Field(1, ge=1)
    """Multi-turn rollouts: assistant turns per response, with ``environment``'s tool output between them."""
    environment: str | None = None
    """``module:function`` answering each assistant turn with tool messages (or None to end);
    see ``agentladder.models.rollout.ToolEnvironment``. Tool outputs are never trained on."""
    agent: str | None = None
    """Agent RL: ``path/to/module.py:build`` (or ``module:build``), a function that builds the Agent, Workflow or
    Graph around the policy provider; ``data`` is then the tasks file (docs/agent-rl.md)."""
    episode_reward: str | None = None
    """Agent RL: ``module.py:function`` scoring ``(task_row, episode)``; default: ``episode_reward`` in the
    agent's module, else the configured rewards on the final output."""
    train_agents: list[str] | None = None
    """Agent RL: the names whose policy calls are trained (``policy.named(name)``); None: every policy call."""
    episode_timeout: float | None = Field(None, gt=0)
    """Agent RL: seconds an episode may run (checked between model calls); a late one fails as ``timeout``."""
    episode_max_calls: int | None = Field(16, ge=1)
    """Agent RL: model calls of the policy an episode may make; one more fails it as ``calls``."""
    episode_max_tokens: int | None = Field(None, ge=1)
    """Agent RL: tokens an episode may sample over all its calls; past them it fails as ``tokens``."""
    failed_episode_reward: float | None = 0.0
    """Agent RL: the reward of an episode that raised, timed out or ran out of budget (None: score it like
    any other, its output being None)."""
    concurrent_episodes: bool = False
    """Agent RL: run a task's episodes at once, their model calls decoded together (a batch goes when every
    running episode waits on the model, so a seeded run repeats itself)."""
    concurrent_groups: bool = False
    """Agent RL: run all the groups of a round at once, every episode's model calls decoded in the same batches
    (one batch of ``batch_size x group_size`` rows keeps a GPU busy where one group of eight does not). It runs
    the episodes at once, so it sets ``concurrent_episodes`` (refused with ``concurrent_episodes: false``).
    Seeded like ``concurrent_episodes``: the same step samples the same episodes again."""
    stratify_by: str | None = None
    """Agent RL: a field of the task rows (dotted for a nested one, e.g. ``expected.decision``) whose values
    every step's tasks hold in their share of the file, to within two tasks, instead of a random draw: where
    kinds of task pull a shared bias opposite ways (approve the safe orders, flag the others), a step that
    happens to draw more of one kind moves the bias, not the skill."""
    turn_reward_weight: float = 1.0
    """Agent RL: weight of a turn-level reward (its value minus the group's mean) on that call's tokens."""
    merge_identical_calls: bool = True
    """Agent RL: train identical calls of a step once (same prompt ids, same sampled ids, an advantage of the same
    sign), weighted by their number: the same loss and gradient, fewer sequences through the model."""
    rollout_backend: Literal["local", "vllm"] = "local"
    """``local``: the training model's own decode loop; ``vllm``: vLLM on a GPU (``pip install agentladder[gpu]``)."""
    vllm_gpu_memory_utilization: float = Field(0.3, gt=0, le=1)
    """``vllm``: the share of the GPU's memory vLLM may take (the trainer needs the rest)."""

    # -- the algorithm
    advantage: AdvantageName = "grpo"
    """``grpo`` (group mean and std), ``dr_grpo`` (group mean), ``rloo`` (leave-one-out),
    ``reinforce_pp`` (batch-whitened returns) or ``gae`` (value head; PPO)."""
    gamma: float = Field(1.0, ge=0, le=1)
    """Discount of later tokens' rewards (``gae``, ``reinforce_pp``)."""
    lam: float = Field(0.95, ge=0, le=1)
    """GAE's lambda."""
    loss_agg: Literal["token_mean", "seq_mean_token_mean", "seq_sum_norm"] = "seq_mean_token_mean"
    """How per-token losses become the step's loss (``rl_losses.aggregate``)."""
    clip_low: float = Field(0.2, ge=0)
    """The ratio is clipped below at ``1 - clip_low``."""
    clip_high: float = Field(0.2, ge=0)
    """... and above at ``1 + clip_high`` (clip-higher when larger than ``clip_low``)."""
    dual_clip: float | None = Field(None, gt=1)
    """Dual clip constant ``c`` for negative advantages (None: off)."""
    ratio_level: Literal["token", "sequence"] = "token"
    """Importance ratio per token, or per response (GSPO: the geometric mean of token ratios)."""
    kl_coef: float = Field(0.0, ge=0)
    """Weight of the KL to the reference; 0 skips the reference pass altogether."""
    kl_estimator: Literal["k1", "k2", "k3"] = "k3"
    """Per-token KL estimator (Schulman 2020): ``k1`` (the log-ratio), ``k2`` (half its square) or ``k3``
    (``exp(d) - d - 1``: unbiased and never negative)."""
    kl_in: Literal["loss", "reward"] = "loss"
    """The KL as a loss term, or subtracted from the reward (per token for token-level estimators)."""
    ppo_epochs: int = Field(1, ge=1)
    """Passes over each rollout batch."""
    num_minibatches: int = Field(1, ge=1)
    """Optimizer updates per pass (the rollout's responses are shuffled and split)."""
    micro_batch_size: int | None = Field(None, ge=1)
    """Responses per forward pass inside a mini-batch (gradient accumulation) [default: the whole mini-batch]."""
    dynamic_sampling: bool = False
    """Drop groups whose rewards are all equal and sample more prompts until the batch is full."""
    max_generation_rounds: int = Field(3, ge=1)
    """Dynamic sampling gives up after this many rounds and trains on the groups it has."""
    overlong_buffer_ratio: float | None = Field(None, gt=0, le=1)
    """Soft overlong punishment over the last share of the budget (DAPO; None: off)."""
    overlong_penalty: float = Field(1.0, ge=0)
    """The punishment at the full budget."""
    overlong_filter: bool = False
    """Mask responses cut at the budget out of the loss."""
    reference_guidance: bool = False
    """Off-policy guidance (after LUFFY, Yan et al. 2025): where no sampled response scores as high as the
    prompt's reference answer (a task's target, or a plain row's string ``target``), the group's lowest-scored
    response is replaced by the reference, which then gets the advantage a right sample would. A prompt the
    policy never answers right still teaches something; the step's ``guided_groups`` counts them."""
    vf_coef: float = Field(0.1, ge=0)
    """Weight of the value loss (``gae`` only)."""
    value_clip: float | None = Field(0.2, gt=0)
    """PPO's value clipping: the value loss also scores the new value kept within this of the old one
    (None: unclipped)."""
    share_prompt: bool = True
    """Run each prompt once for its whole group in training (needs ``sdpa`` attention)."""

    # -- model
    learning_rate: float | None = Field(None, gt=0)  # type: ignore[assignment]
    """Peak learning rate [default: 1e-5 with LoRA, 1e-6 full fine-tuning]."""
    warmup_ratio: float = 0.0
    """Share of the steps spent warming up linearly from 0."""
    save_every: int = 10
    """Write a resumable checkpoint every this many steps (and at the end)."""

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("preset") is not None:
            name = data["preset"]
            if name not in PRESETS:
                return data  # the Literal reports it
            data = {**PRESETS[name], **data}
        return data

    @model_validator(mode="after")
    def _check(self) -> RLConfig:
        if self.learning_rate is None:
            self.learning_rate = 1e-5 if self.lora else 1e-6
        if self.task is None and self.data is None:
            raise ValueError("give a task or a data file of prompts")
        if self.grad_accum != 1:
            raise ValueError("grad_accum: RL splits each rollout with num_minibatches and micro_batch_size instead")
        if self.advantage in ("grpo", "dr_grpo", "rloo") and self.group_size < 2:
            raise ValueError(f"group_size: the {self.advantage} advantage compares responses to one prompt; use 2+")
        if self.dynamic_sampling and self.group_size < 2:
            raise ValueError("group_size: dynamic sampling needs 2+ responses per prompt")
        if self.reference_guidance and (self.agent or self.max_turns > 1):
            raise ValueError("reference_guidance: a reference answer is one assistant turn; agent and multi-turn "
                             "rollouts have none")
        if self.concurrent_groups and not self.concurrent_episodes:
            if "concurrent_episodes" in self.model_fields_set:
                raise ValueError("concurrent_groups: running a round's groups at once runs their episodes at once; "
                                 "drop concurrent_episodes: false, or concurrent_groups")
            self.concurrent_episodes = True  # alone, the episodes would run one by one (several times slower)
        return self

    def algorithm(self) -> dict[str, Any]:
        """The fields that define the algorithm (for the run's metadata)."""
        keys = ("advantage", "loss_agg", "clip_low", "clip_high", "dual_clip", "ratio_level", "kl_coef",
                "kl_estimator", "kl_in", "ppo_epochs", "num_minibatches", "dynamic_sampling",
                "overlong_buffer_ratio", "overlong_filter", "group_size", "reference_guidance")
        return {k: getattr(self, k) for k in keys}


def load_rl_config(path: str | Path, **overrides: Any) -> RLConfig:
    """An :class:`RLConfig` from a YAML (or JSON) file, with ``overrides`` (not None) on top.

    A bad file gets one line naming the file, the line and the field.
    """
    import yaml

    path = Path(path)
    if not path.exists():
        raise MissingFileError(f"{path}: no such config file")
    text = path.read_text()
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        raise DataError(path, mark.line + 1 if mark else None, None,
                        f"invalid YAML: {getattr(err, 'problem', err)}") from None
    if not isinstance(data, dict):
        raise DataError(path, None, None, f"expected a mapping of settings, got {type(data).__name__}")
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        config = RLConfig(**data)
    except ValidationError as err:
        raise data_error(err, path, lambda loc: yaml_line(text, loc)) from None
    for key in ("rewards", "gold_rewards"):  # build each reward once now, so a bad entry is reported with its line
        for i, spec in enumerate(getattr(config, key) or []):
            try:
                build_reward(spec, f"{key}[{i}]")
            except ValueError as err:
                raise DataError(path, yaml_line(text, [key, i]), None, str(err)) from None
    return config


__all__ = ["PRESETS", "RLConfig", "load_rl_config"]
