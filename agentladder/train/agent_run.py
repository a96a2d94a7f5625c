"""Starting an agent RL run: ``rl(agent=build, tasks=..., reward=...)`` and ``agentladder train rl --agent``.

:func:`rl` is :func:`agentladder.train.rl.rl` that also takes an agent: with ``agent``
(a builder function, or ``path/to/module.py:build``) the run trains the policy inside
the user's agent on ``tasks`` (:class:`~agentladder.train.agent_rl.AgentRLTrainer`);
without one it is the prompt-level RL run it always was. The run's lifecycle is the
shared one (:mod:`agentladder.train.run`): settings saved, checkpoints, resume,
``metrics.jsonl``, ``reward.png``, the final model and ``agentladder.json``.
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import importlib.util
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agentladder.data.io import atomic_write_text
from agentladder.errors import ConfigError
from agentladder.models.lora import is_lora
from agentladder.models.rollout import RolloutBackend
from agentladder.rewards.config import build_rewards
from agentladder.train.agent_episodes import TurnReward, load_tasks
from agentladder.train.agent_rl import AgentBuilder, AgentRLTrainer
from agentladder.train.distributed import unwrap
from agentladder.train.loop import TrainResult
from agentladder.train.rl import plot_rewards, task_defaults
from agentladder.train.rl import rl as prompt_rl
from agentladder.train.rl_config import RLConfig
from agentladder.train.run import RUN_CONFIG, finish_run, lineage_base, resolved_spec, start_run


def load_object(spec: str, what: str) -> Any:
    """``path/to/module.py:name`` (the file's folder goes on ``sys.path``, for its own imports) or ``module:name``."""
    module_name, _, attr = spec.rpartition(":")
    if not module_name or not attr:
        raise ConfigError(f"{what}: write module.py:function or module:function, not {spec!r}")
    try:
        if module_name.endswith(".py"):
            path = Path(module_name).resolve()
            if not path.exists():
                raise ConfigError(f"{what}: no such file {module_name}")
            if str(path.parent) not in sys.path:
                sys.path.insert(0, str(path.parent))
            name = f"agentladder_user_{hashlib.sha256(str(path).encode()).hexdigest()[:12]}"
            module = sys.modules.get(name)
            if module is None:
                loader = importlib.util.spec_from_file_location(name, path)
                assert loader is not None and loader.loader is not None
                module = importlib.util.module_from_spec(loader)
                sys.modules[name] = module
                loader.loader.exec_module(module)
        else:
            module = importlib.import_module(module_name)
        return getattr(module, attr)
    except (ImportError, AttributeError) as err:
        raise ConfigError(f"{what}: cannot load {spec!r}: {err}") from None


def _episode_reward(config: RLConfig, reward: Any) -> Any:
    """The reward given, else ``episode_reward`` (the config's, or the agent module's), else the configured rewards."""
    if reward is not None:
        return reward
    if config.episode_reward:
        return load_object(config.episode_reward, "episode_reward")
    if config.agent and ":" in config.agent:
        try:
            return load_object(config.agent.rpartition(":")[0] + ":episode_reward", "episode_reward")
        except ConfigError:
            pass
    if config.rewards:
        return build_rewards(config.rewards)
    raise ConfigError("agent RL needs a reward: reward=fn(row, episode), episode_reward: module.py:fn, "
                      "an episode_reward function in the agent's module, or rewards: [...]")


def _spec_of(agent: Any) -> str | None:
    module, name = getattr(agent, "__module__", None), getattr(agent, "__qualname__", None)
    return f"{module}:{name}" if module and name and "<" not in name else None


def _tasks_file(tasks: Any, kwargs: dict[str, Any]) -> None:
    """Put the tasks where the config reads them: a path as ``data``, rows written into the run folder."""
    if tasks is None:
        return
    if isinstance(tasks, (str, Path)):
        kwargs["data"] = str(tasks)
        return
    rows: Sequence[dict] = list(tasks)
    path = Path(kwargs["out_dir"]) / "tasks.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in rows))
    kwargs["data"] = str(path)


def rl_agent(config: RLConfig | None = None, /, *, agent: AgentBuilder | str | None = None, tasks: Any = None,
             reward: Any = None, turn_reward: TurnReward | None = None, runtime: Any = None, resume: bool = False,
             rollout: RolloutBackend | None = None, **kwargs: Any) -> TrainResult:
    """Train the policy inside an agent on task rows (docs/agent-rl.md); see :func:`rl`."""
    if config is not None and tasks is not None:
        raise ConfigError("tasks: with a config, name the tasks file in its data field")
    if config is None:
        _tasks_file(tasks, kwargs)
        if isinstance(agent, str):
            kwargs["agent"] = agent
        elif agent is not None:
            kwargs.setdefault("agent", _spec_of(agent))
    run = start_run(RLConfig, config, kwargs, resume, adapter="merge")
    config, model, world = run.config, run.model, run.world
    if not config.data:
        raise ConfigError("agent RL needs tasks: a JSONL file of task rows (tasks=... or --tasks FILE)")
    task_defaults(config)
    build = agent if callable(agent) else load_object(config.agent or "", "agent")
    episode_reward = _episode_reward(config, reward)
    if turn_reward is None and config.agent and config.agent.partition(":")[0].endswith(".py"):
        module = load_object(config.agent, "agent").__module__
        turn_reward = getattr(sys.modules[module], "turn_reward", None)
    reference_model = None
    if config.kl_coef > 0 and not config.lora:
        reference_model = copy.deepcopy(unwrap(model)).eval().requires_grad_(False)
    rows = load_tasks(config.data)
    run.save_config()
    model.to(world.device)
    trainer = AgentRLTrainer(model, run.tokenizer, rows, build, episode_reward, config, rollout=rollout,
                             world=world, reference_model=reference_model, turn_reward=turn_reward,
                             runtime=runtime)
    result = trainer.run(resume=resume)
    if world.is_main and result.history:
        plot_rewards(result.history, run.out_dir / "reward.png", title=f"agent RL: {run.out_dir.name}")

    def metadata(lora: bool) -> dict[str, Any]:
        last = result.history[-1] if result.history else {}
        return {"method": f"agent-{config.preset or 'rl'}", "base_model": lineage_base(config.model, lora),
                "start_model": resolved_spec(config.model), "lora": lora, "steps": trainer.step,
                "agent": config.agent, "tasks": config.data, "n_tasks": len(rows),
                "train_agents": config.train_agents, "algorithm": config.algorithm(),
                "final_reward": last.get("reward")}

    def prepare(trained):
        return trained.merge_and_unload() if is_lora(trained) and run.from_adapter else trained

    return finish_run(run, trainer, result, metadata, prepare=prepare, restore_attention=trainer.shared)


def rl(config: RLConfig | None = None, /, *, agent: AgentBuilder | str | None = None, tasks: Any = None,
       resume: bool = False, **kwargs: Any) -> TrainResult:
    """Reinforcement learning: of a prompt-level policy (:func:`agentladder.train.rl.rl`), or, with ``agent``,
    of the policy inside an agent as it runs.

    ``rl(agent=build_review, tasks="orders-train.jsonl", reward=episode_reward, preset="dapo", group_size=8,
    out_dir="runs/review-rl")``: ``build(policy)`` returns the Agent, Workflow or Graph with ``policy`` as the
    provider of the agent to train; ``reward(row, episode)`` scores a run; ``turn_reward(call, episode)``
    optionally scores each model call; ``runtime`` (an agents ``Runtime``) stores the runs' traces.
    A resumed run (``resume=True``) continues whichever kind it was; an agent builder that is not importable
    by name must be passed again.
    """
    out_dir = config.out_dir if config is not None else kwargs.get("out_dir")
    saved = saved_agent(out_dir) if resume and out_dir else None
    if agent is not None or (config is not None and config.agent) or kwargs.get("agent") or saved:
        return rl_agent(config, agent=agent, tasks=tasks, resume=resume, **kwargs)
    if kwargs.pop("runtime", None) is not None or kwargs.pop("turn_reward", None) is not None or tasks is not None:
        raise ConfigError("runtime, turn_reward and tasks belong to agent RL: give agent=... too")
    return prompt_rl(config, resume=resume, **kwargs)


def saved_agent(out_dir: str | Path) -> str | None:
    """The agent spec a run folder's saved settings name (None: a prompt-level run, or no run there)."""
    path = Path(out_dir) / RUN_CONFIG
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text()).get("agent")
    except (json.JSONDecodeError, AttributeError):
        return None


__all__ = ["load_object", "rl", "rl_agent", "saved_agent"]
