"""``agentladder train rl``: a thin shell over :func:`agentladder.train.rl.rl`."""

from __future__ import annotations

import os
from typing import Annotated

import typer


def register(train_app: typer.Typer, friendly_errors) -> None:
    """Add the ``rl`` command to ``agentladder train``."""

    @train_app.command("rl")
    @friendly_errors
    def train_rl(
        preset: Annotated[str | None, typer.Option(
            help="grpo, dapo, gspo, dr_grpo, rloo, reinforce_pp or ppo (explicit settings win).")] = None,
        config: Annotated[str | None, typer.Option(help="YAML file of RLConfig settings; options given here win.")] = None,
        model: Annotated[str | None, typer.Option(help="Starting model (usually an SFT run folder), alias or hub id.")] = None,
        task: Annotated[str | None, typer.Option(help="Task whose prompts and scorer to use (medication-directions).")] = None,
        data: Annotated[str | None, typer.Option(help="JSONL of RL prompts (or the task's rows).")] = None,
        out: Annotated[str | None, typer.Option(help="Run folder for checkpoints, metrics and the model.")] = None,
        group_size: Annotated[int | None, typer.Option(help="Responses per prompt.")] = None,
        batch_size: Annotated[int | None, typer.Option(help="Prompts per rollout step.")] = None,
        max_steps: Annotated[int | None, typer.Option(help="Rollout steps.")] = None,
        n_prompts: Annotated[int | None, typer.Option(help="Prompts generated from the task (without --data).")] = None,
        max_new_tokens: Annotated[int | None, typer.Option(help="Generation budget \\[default: the task's].")] = None,
        temperature: float | None = None,
        kl_coef: Annotated[float | None, typer.Option(help="KL weight; 0 skips the reference pass.")] = None,
        lr: Annotated[float | None, typer.Option(help="Learning rate \\[default: 1e-5 LoRA, 1e-6 full].")] = None,
        lora: Annotated[bool | None, typer.Option("--lora/--full", help="LoRA adapters or full fine-tuning.")] = None,
        rollout_backend: Annotated[str | None, typer.Option(help="local or vllm (GPU).")] = None,
        seed: int | None = None,
        save_every: int | None = None,
        resume: Annotated[str | None, typer.Option(help="Continue the interrupted run in this folder.")] = None,
        quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
    ) -> None:
        """Reinforcement learning with verifiable or judged rewards: PPO, GRPO, DAPO, GSPO, Dr. GRPO, RLOO, REINFORCE++."""
        from pydantic import ValidationError
        from rich.console import Console

        from agentladder.train.rl import rl
        from agentladder.train.rl_config import RLConfig, load_rl_config

        err = Console(stderr=True)
        if resume:
            result = rl(out_dir=resume, resume=True, progress=not quiet)
        else:
            given = dict(preset=preset, model=model, task=task, data=data, out_dir=out, group_size=group_size,
                         batch_size=batch_size, max_steps=max_steps, n_prompts=n_prompts,
                         max_new_tokens=max_new_tokens, temperature=temperature, kl_coef=kl_coef, learning_rate=lr,
                         lora=lora, rollout_backend=rollout_backend, seed=seed, save_every=save_every)
            given = {k: v for k, v in given.items() if v is not None}
            if config:
                cfg = load_rl_config(config, **given, progress=not quiet)
            else:
                if "out_dir" not in given:
                    raise ValueError("--out is required (or --config FILE with out_dir, or --resume RUN_FOLDER)")
                try:
                    cfg = RLConfig(**given, progress=not quiet)
                except ValidationError as e:
                    first = e.errors()[0]
                    field = ".".join(str(p) for p in first["loc"])
                    raise ValueError(f"{field + ': ' if field else ''}{first['msg'].removeprefix('Value error, ')}") from None
            result = rl(cfg)
        if os.environ.get("RANK", "0") == "0":
            last = result.history[-1] if result.history else {}
            reward = f", reward {last['reward']:.3f}" if "reward" in last else ""
            err.print(f"[green]done[/]: {result.steps} steps{reward} -> {result.out_dir} "
                      f"(curves: {result.out_dir / 'reward.png'})")
