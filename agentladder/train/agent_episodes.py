"""Agent episodes: task rows in, one run of the user's agent per episode out, recorded and scored.

An episode is one run of an Agent, Workflow or Graph (anything with ``arun(input)``,
or an async or plain function of the input) built by the user's function around the
policy (:class:`~agentladder.models.providers.policy.PolicyProvider`). The trainer
never imports the agents runtime: the builder is injected, so this module only needs
the protocol ``build(policy) -> runner``.

:class:`Episode` is the record: the model calls with their exact ids and log-probs,
the final output (as JSON), the error if it failed, its status, its seconds and its
reward. ``episodes.jsonl`` in the run folder holds one per line, and
:meth:`Episode.conversations` gives each model call as a conversation in the project's
schema (the shape the runtime stores as a trajectory), so episodes are training data
the same way recorded traces are.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from agentladder.data.io import iter_json_lines
from agentladder.data.schema import Conversation, Message
from agentladder.errors import ConfigError, DataError
from agentladder.models.providers.policy import (
    EpisodeBudgetExceeded,
    EpisodeRecorder,
    ModelCall,
    recording,
)
from agentladder.rewards.base import RewardInput

EPISODE_LOG = "episodes.jsonl"
"""One line per episode: the step, the group, and the :class:`Episode`."""


@dataclass
class TaskRow:
    """One task instance: its id, what the agent is given, and the whole row (what the reward reads)."""

    id: str
    input: Any
    row: dict[str, Any]


def task_field(task: TaskRow, path: str) -> str:
    """The value at a dotted ``path`` of a task's row, as JSON (a stratum's label); a missing one is refused."""
    value: Any = task.row
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            raise ConfigError(f"stratify_by: task {task.id} has no field {path!r}")
        value = value[key]
    return json.dumps(value, sort_keys=True)


def load_tasks(source: str | Path | Sequence[dict[str, Any]]) -> list[TaskRow]:
    """Task rows from a JSONL file (or a list of dicts): the agent gets ``row["input"]``, or the row itself.

    Each row needs to be a JSON object; ``id`` defaults to ``task-N``. A bad line is named with its number.
    """
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.exists():
            raise DataError(path, None, None, "no such tasks file")
        rows = []
        for n, row in iter_json_lines(path):
            if not isinstance(row, dict):
                raise DataError(path, n, None, f"a task is a JSON object, not {type(row).__name__}")
            rows.append(row)
    else:
        rows = [dict(r) for r in source]
    if not rows:
        raise DataError(str(source) if isinstance(source, (str, Path)) else None, None, None, "no tasks")
    return [TaskRow(str(r.get("id", f"task-{i + 1}")), r.get("input", r), r)
            for i, r in enumerate(rows)]


@dataclass
class Episode:
    """One run of the agent on one task (see the module docstring)."""

    task_id: str
    index: int
    """Which of the task's ``group_size`` episodes this is."""
    seed: int
    calls: list[ModelCall] = field(default_factory=list)
    output: Any = None
    """The run's output as JSON (a pydantic model dumped), None when it failed."""
    error: str | None = None
    status: str = "ok"
    """``ok``, ``error`` (the run raised), ``timeout``, ``calls`` or ``tokens`` (a budget ran out)."""
    seconds: float = 0.0
    reward: float = 0.0
    turn_rewards: list[float] = field(default_factory=list)
    """Per model call (empty without a turn reward)."""

    @property
    def failed(self) -> bool:
        return self.status != "ok"

    @property
    def sampled_tokens(self) -> int:
        return sum(len(c.token_ids) for c in self.calls)

    def to_json(self) -> dict[str, Any]:
        return {"task_id": self.task_id, "index": self.index, "seed": self.seed, "status": self.status,
                "error": self.error, "output": self.output, "reward": self.reward, "seconds": self.seconds,
                "turn_rewards": self.turn_rewards, "calls": [c.to_json() for c in self.calls]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Episode:
        return cls(data["task_id"], int(data["index"]), int(data["seed"]),
                   [ModelCall.from_json(c) for c in data.get("calls", [])], data.get("output"), data.get("error"),
                   data.get("status", "ok"), float(data.get("seconds", 0.0)), float(data.get("reward", 0.0)),
                   list(data.get("turn_rewards", [])))

    def conversations(self, agents: Sequence[str] | None = None) -> list[Conversation]:
        """Each model call (of ``agents``, default all) as a conversation: its prompt, then the reply it sampled.

        The reply is trainable; the prompt's turns are not. Metadata carries the episode's reward, status and
        task, as a stored trajectory's does, so the same filters pick rows from either.
        """
        out = []
        for k, call in enumerate(self.calls):
            if agents is not None and call.agent not in agents:
                continue
            reply = call.reply or Message(role="assistant", content=call.text)
            messages = [m.model_copy(update={"trainable": False}) if m.role == "assistant" else m
                        for m in call.messages]
            meta = {"agent": call.agent, "task_id": self.task_id, "episode": self.index, "call": k,
                    "status": self.status, "reward": self.reward, "output": self.output}
            out.append(Conversation(id=f"{self.task_id}/{self.index}/{k}", messages=[*messages, reply],
                                    metadata=meta))
        return out


def episode_seed(seed: int, step: int, round_: int, task_id: str, index: int) -> int:
    """The sampling seed of one episode: fixed by the run's seed, the step, the round, the task and the index,
    so a resumed run samples the same episodes."""
    digest = hashlib.sha256(f"{seed}/{step}/{round_}/{task_id}/{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 62) - 1)


def to_jsonable(value: Any) -> Any:
    """A run's output as JSON: pydantic models dumped, anything else through ``json`` (else its text)."""
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError):
        return str(value)


def _budget_error(err: BaseException) -> EpisodeBudgetExceeded | None:
    """The budget error behind ``err`` (a workflow wraps its step's error), if any."""
    seen = 0
    while err is not None and seen < 10:
        if isinstance(err, EpisodeBudgetExceeded):
            return err
        err = err.__cause__ or err.__context__  # type: ignore[assignment]
        seen += 1
    return None


async def _call(runner: Any, task: TaskRow, session: str, runtime: Any) -> Any:
    if hasattr(runner, "arun"):
        kwargs = {"session": session}
        if runtime is not None:
            kwargs["runtime"] = runtime
        return await runner.arun(task.input, **kwargs)
    result = runner(task.input)
    return await result if inspect.isawaitable(result) else result


def run_episode(runner: Any, task: TaskRow, recorder: EpisodeRecorder, *, index: int, seed: int,
                timeout: float | None = None, runtime: Any = None, session: str | None = None) -> Episode:
    """Run ``runner`` on ``task`` once with ``recorder`` collecting the policy's calls; never raises for a
    failure of the run itself (it is the episode's ``status`` and ``error``)."""
    return asyncio.run(arun_episode(runner, task, recorder, index=index, seed=seed, timeout=timeout,
                                    runtime=runtime, session=session))


async def arun_episode(runner: Any, task: TaskRow, recorder: EpisodeRecorder, *, index: int, seed: int,
                       timeout: float | None = None, runtime: Any = None, session: str | None = None) -> Episode:
    """:func:`run_episode` in a running event loop (several episodes at once, their calls batched)."""
    episode = Episode(task.id, index, seed)
    start = time.perf_counter()
    with recording(recorder):
        try:
            coro = _call(runner, task, session or f"rl/{task.id}/{index}", runtime)
            result = await (asyncio.wait_for(coro, timeout) if timeout else coro)
            episode.output = to_jsonable(getattr(result, "output", result))
        except (TimeoutError, asyncio.TimeoutError):
            episode.status, episode.error = "timeout", f"the episode ran past its {timeout:g} s limit"
        except Exception as err:  # an episode that fails is recorded, never fatal to the step
            budget = _budget_error(err)
            episode.status = budget.kind if budget is not None else "error"
            episode.error = str(budget) if budget is not None else f"{type(err).__name__}: {err}"
    episode.calls = list(recorder.calls)
    episode.seconds = time.perf_counter() - start
    return episode


# -- rewards -----------------------------------------------------------------------------------------
EpisodeReward = Callable[[dict[str, Any], Episode], float]
"""``reward(task_row, episode) -> float``: the graded outcome of one run."""
TurnReward = Callable[[ModelCall, Episode], float]
"""``turn_reward(call, episode) -> float``: a reward of one model call (a valid tool call, a correct parse)."""


def score_episodes(reward: Any, task: TaskRow, episodes: list[Episode], *, failed_reward: float | None,
                   turn_reward: TurnReward | None = None) -> None:
    """Set each episode's ``reward`` (and ``turn_rewards``).

    ``reward`` is a function ``(row, episode) -> float`` or a reward object with ``score_group`` (a task's
    grader, a judge, an ensemble), which reads the final output as text against ``row["target"]``. A failed
    episode gets ``failed_reward`` when it is set, else the reward like any other.
    """
    scored = [e for e in episodes if not (e.failed and failed_reward is not None)]
    if hasattr(reward, "score_group"):
        items = [RewardInput([Message(role="user", content=_text(task.input))], _text(e.output),
                             task.row.get("target"), task.row, task.id) for e in scored]
        values = list(reward.score_group(items).total) if items else []
    else:
        values = [float(reward(task.row, e)) for e in scored]
    for e, v in zip(scored, values, strict=True):
        e.reward = float(v)
    for e in episodes:
        if e.failed and failed_reward is not None:
            e.reward = float(failed_reward)
        if turn_reward is not None:
            e.turn_rewards = [float(turn_reward(c, e)) for c in e.calls]


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def read_episodes(path: str | Path) -> list[tuple[dict[str, Any], Episode]]:
    """``(where, episode)`` of every line of an ``episodes.jsonl``; ``where`` has the step, round and group."""
    out = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError:
            raise DataError(path, n, None, "invalid JSON (a line cut short?)") from None
        out.append(({k: data[k] for k in ("step", "round", "group", "kept") if k in data},
                    Episode.from_json(data["episode"])))
    return out


def episodes_to_sft(path: str | Path, *, min_reward: float | None = None, agents: Sequence[str] | None = None,
                    ok_only: bool = True) -> list[Conversation]:
    """SFT rows from an ``episodes.jsonl``: each model call of ``agents`` as prompt and sampled reply, from the
    episodes that finished (``ok_only``) with a reward of at least ``min_reward`` (rejection sampling)."""
    rows = []
    for _, e in read_episodes(path):
        if (ok_only and e.failed) or (min_reward is not None and e.reward < min_reward):
            continue
        rows += e.conversations(agents)
    return rows


def episode_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """The generator an episode samples with, on the model's device."""
    return torch.Generator(device=device).manual_seed(seed)


__all__ = ["EPISODE_LOG", "Episode", "EpisodeReward", "TaskRow", "TurnReward", "arun_episode", "episode_generator",
           "episode_seed", "episodes_to_sft", "load_tasks", "read_episodes", "run_episode", "score_episodes",
           "to_jsonable"]
