"""The ``agentladder`` command line: one command per job, each a thin shell over the Python API.

Data-parallel runs launch the same commands through torch distributed:
``torchrun --nproc_per_node 2 -m agentladder train sft ...``.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Post-train agent components, rung by rung.")
train_app = typer.Typer(no_args_is_help=True, help="Train a rung of the ladder.")
data_app = typer.Typer(no_args_is_help=True, help="Make, check and distil training data.")
models_app = typer.Typer(no_args_is_help=True, help="The models agentladder can load.")
app.add_typer(train_app, name="train")
app.add_typer(data_app, name="data")
app.add_typer(models_app, name="models")

err = Console(stderr=True)
console = Console()


def friendly_errors(fn):
    """Show expected failures (bad data, unknown model, existing run) as one clear line."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from agentladder.data.io import DataError
        from agentladder.models.loading import ModelLoadError
        from agentladder.models.providers import ProviderError

        try:
            return fn(*args, **kwargs)
        except (DataError, ModelLoadError, ProviderError, FileExistsError, FileNotFoundError, ValueError) as e:
            err.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            err.print("[yellow]interrupted[/]: finished checkpoints are kept; rerun with --resume to continue")
            raise typer.Exit(130) from None

    return wrapper


@app.command("quickstart")
@friendly_errors
def quickstart_cmd(
    out: Annotated[str, typer.Option(help="Folder for the data, the run and the report.")] = "runs/quickstart",
    model: str = "smollm2-135m",
    train_rows: int = 400,
    test_rows: int = 50,
    steps: int = 60,
    batch_size: int = 4,
    quiet: bool = False,
) -> None:
    """The first rung on the embedded defaults: make data, LoRA-tune SmolLM2, compare it with its base."""
    from agentladder.quickstart import quickstart

    result = quickstart(out, model=model, train_rows=train_rows, test_rows=test_rows, steps=steps,
                        batch_size=batch_size, progress=not quiet)
    console.print(result.report.table())
    err.print(f"[green]done[/]: model {result.run_dir}, report {result.report_dir / 'report.md'}")


_LORA_PLUS_HELP = "LoRA+: the adapters' B matrices learn at --lr times this."
_PRECISION_HELP = "fp32, bf16 (autocast), or auto (bf16 where the CPU or GPU does it natively)."


@train_app.command("sft")
@friendly_errors
def train_sft(
    data: Annotated[str | None, typer.Option(help="JSONL of conversations, prompt/completion or {text} rows.")] = None,
    out: Annotated[str | None, typer.Option(help="Run folder for checkpoints, metrics and the model.")] = None,
    model: Annotated[str, typer.Option(help="Alias, local folder or hub id.")] = "smollm2-135m",
    lora: Annotated[bool, typer.Option("--lora/--full", help="LoRA adapters or full fine-tuning.")] = False,
    lora_r: int = 16,
    lora_alpha: int = 32,
    lora_plus_ratio: Annotated[float | None, typer.Option(help=_LORA_PLUS_HELP)] = None,
    max_length: int = 1024,
    packing: Annotated[bool, typer.Option("--packing/--no-packing")] = True,
    epochs: float = 1.0,
    max_steps: int | None = None,
    batch_size: int = 4,
    grad_accum: int = 1,
    lr: Annotated[float | None, typer.Option(help="Learning rate \\[default: 2e-4 LoRA, 2e-5 full].")] = None,
    warmup_ratio: float = 0.05,
    precision: Annotated[str, typer.Option(help=_PRECISION_HELP)] = "fp32",
    strategy: Annotated[str, typer.Option(help="ddp or fsdp, when launched with several processes.")] = "ddp",
    seed: int = 0,
    save_every: int = 50,
    resume: Annotated[
        str | None, typer.Option(help="Continue the interrupted run in this folder, with its saved settings.")
    ] = None,
    quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
) -> None:
    """Supervised fine-tuning (assistant-only loss) or continued pre-training on text rows."""
    from agentladder.train.sft import SFTConfig, sft

    if resume:
        result = sft(out_dir=resume, resume=True, progress=not quiet)
    else:
        if not data or not out:
            raise ValueError("--data and --out are required (or --resume RUN_FOLDER)")
        config = SFTConfig(
            model=model, data=data, out_dir=out, lora=lora, lora_r=lora_r, lora_alpha=lora_alpha,
            lora_plus_ratio=lora_plus_ratio, max_length=max_length, packing=packing, epochs=epochs,
            max_steps=max_steps, batch_size=batch_size, grad_accum=grad_accum, learning_rate=lr if lr is not None else (2e-4 if lora else 2e-5),
            warmup_ratio=warmup_ratio, precision=precision, strategy=strategy, seed=seed, save_every=save_every,
            progress=not quiet,
        )
        result = sft(config)
    if os.environ.get("RANK", "0") == "0":
        err.print(f"[green]done[/]: {result.steps} steps, final loss {result.final_loss:.4f} -> {result.out_dir}")


def _preference_run(config_kwargs: dict, resume: str | None, quiet: bool) -> None:
    from agentladder.train.preference import PreferenceConfig, preference

    if resume:
        result = preference(out_dir=resume, resume=True, progress=not quiet)
    else:
        if not config_kwargs.get("data") or not config_kwargs.get("out_dir"):
            raise ValueError("--data and --out are required (or --resume RUN_FOLDER)")
        result = preference(PreferenceConfig(**config_kwargs, progress=not quiet))
    if os.environ.get("RANK", "0") == "0":
        last = result.history[-1] if result.history else {}
        acc = f", reward accuracy {last['reward_accuracy']:.2f}" if "reward_accuracy" in last else ""
        err.print(f"[green]done[/]: {result.steps} steps, final loss {result.final_loss:.4f}{acc} -> {result.out_dir}")


_PREFERENCE_HELP = "Learning rate \\[default: 2e-5 LoRA, 1e-6 full]."


@train_app.command("dpo")
@friendly_errors
def train_dpo(
    data: Annotated[str | None, typer.Option(help="JSONL of pairs: prompt, chosen, rejected.")] = None,
    out: Annotated[str | None, typer.Option(help="Run folder for checkpoints, metrics and the model.")] = None,
    model: Annotated[str, typer.Option(help="Starting model (usually an SFT run folder), alias or hub id.")] = "smollm2-135m",
    loss: Annotated[str, typer.Option(help="dpo, ipo, rpo, simpo or orpo.")] = "dpo",
    beta: Annotated[float | None, typer.Option(help="beta (IPO tau, ORPO lambda) \\[default: 0.1; simpo 2.0].")] = None,
    label_smoothing: Annotated[float, typer.Option(help="Conservative DPO: assumed share of flipped labels.")] = 0.0,
    rpo_alpha: Annotated[float, typer.Option(help="RPO: weight of the NLL on the chosen response.")] = 1.0,
    simpo_gamma: Annotated[float, typer.Option(help="SimPO: target reward margin.")] = 0.5,
    reference: Annotated[str, typer.Option(help="auto, adapters, precompute or copy.")] = "auto",
    lora: Annotated[bool, typer.Option("--lora/--full", help="LoRA adapters or full fine-tuning.")] = False,
    lora_r: int = 16,
    lora_alpha: int = 32,
    lora_plus_ratio: Annotated[float | None, typer.Option(help=_LORA_PLUS_HELP)] = None,
    max_length: int = 1024,
    share_prompt: Annotated[bool, typer.Option("--share-prompt/--no-share-prompt",
                                               help="Run each prompt once for both responses.")] = True,
    epochs: float = 1.0,
    max_steps: int | None = None,
    batch_size: Annotated[int, typer.Option(help="Pairs per micro-batch per process.")] = 4,
    grad_accum: int = 1,
    lr: Annotated[float | None, typer.Option(help=_PREFERENCE_HELP)] = None,
    warmup_ratio: float = 0.1,
    precision: Annotated[str, typer.Option(help=_PRECISION_HELP)] = "fp32",
    strategy: Annotated[str, typer.Option(help="ddp or fsdp, when launched with several processes.")] = "ddp",
    seed: int = 0,
    save_every: int = 50,
    resume: Annotated[str | None, typer.Option(help="Continue the interrupted run in this folder.")] = None,
    quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
) -> None:
    """Preference optimisation on pairs: DPO (conservative with --label-smoothing), IPO, RPO, SimPO or ORPO."""
    if loss == "kto":
        raise ValueError("KTO trains on marked responses: use `agentladder train kto`")
    _preference_run(dict(
        model=model, data=data, out_dir=out, loss=loss, beta=beta, label_smoothing=label_smoothing,
        rpo_alpha=rpo_alpha, simpo_gamma=simpo_gamma, reference=reference, lora=lora, lora_r=lora_r,
        lora_alpha=lora_alpha, lora_plus_ratio=lora_plus_ratio, max_length=max_length, share_prompt=share_prompt,
        epochs=epochs, max_steps=max_steps, batch_size=batch_size, grad_accum=grad_accum, learning_rate=lr if lr is not None else (2e-5 if lora else 1e-6),
        warmup_ratio=warmup_ratio, precision=precision, strategy=strategy, seed=seed, save_every=save_every,
    ), resume, quiet)


@train_app.command("kto")
@friendly_errors
def train_kto(
    data: Annotated[str | None, typer.Option(help="JSONL of marked responses (prompt, completion, label) or pairs.")] = None,
    out: Annotated[str | None, typer.Option(help="Run folder for checkpoints, metrics and the model.")] = None,
    model: Annotated[str, typer.Option(help="Starting model (usually an SFT run folder), alias or hub id.")] = "smollm2-135m",
    beta: float = 0.1,
    desirable_weight: float = 1.0,
    undesirable_weight: float = 1.0,
    kl: Annotated[bool, typer.Option("--kl/--no-kl", help="Estimate the KL reference point (else 0).")] = True,
    reference: Annotated[str, typer.Option(help="auto, adapters, precompute or copy.")] = "auto",
    lora: Annotated[bool, typer.Option("--lora/--full", help="LoRA adapters or full fine-tuning.")] = False,
    lora_r: int = 16,
    lora_alpha: int = 32,
    lora_plus_ratio: Annotated[float | None, typer.Option(help=_LORA_PLUS_HELP)] = None,
    max_length: int = 1024,
    epochs: float = 1.0,
    max_steps: int | None = None,
    batch_size: Annotated[int, typer.Option(help="Rows per micro-batch per process (the KL estimate needs 2+).")] = 8,
    grad_accum: int = 1,
    lr: Annotated[float | None, typer.Option(help=_PREFERENCE_HELP)] = None,
    warmup_ratio: float = 0.1,
    precision: Annotated[str, typer.Option(help=_PRECISION_HELP)] = "fp32",
    strategy: Annotated[str, typer.Option(help="ddp or fsdp, when launched with several processes.")] = "ddp",
    seed: int = 0,
    save_every: int = 50,
    resume: Annotated[str | None, typer.Option(help="Continue the interrupted run in this folder.")] = None,
    quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
) -> None:
    """KTO on single responses marked desirable or undesirable (a pairs file is split into both)."""
    _preference_run(dict(
        model=model, data=data, out_dir=out, loss="kto", beta=beta, kto_desirable_weight=desirable_weight,
        kto_undesirable_weight=undesirable_weight, kto_kl=kl, reference=reference, lora=lora, lora_r=lora_r,
        lora_alpha=lora_alpha, lora_plus_ratio=lora_plus_ratio, max_length=max_length, epochs=epochs,
        max_steps=max_steps, batch_size=batch_size, grad_accum=grad_accum, learning_rate=lr if lr is not None else (2e-5 if lora else 1e-6),
        warmup_ratio=warmup_ratio, precision=precision, strategy=strategy, seed=seed, save_every=save_every,
    ), resume, quiet)


@data_app.command("pairs")
@friendly_errors
def data_pairs(
    out: Annotated[str, typer.Option(help="JSONL file to write.")],
    model: Annotated[str | None, typer.Option(help="Model that answers (alias, run folder, hub id, openai:M).")] = None,
    task: Annotated[str | None, typer.Option(help="Task whose grader scores the answers.")] = None,
    feedback: Annotated[str | None, typer.Option(
        help="Instead of sampling: conversations with rewards, thumbs up/down rows, or pairs.")] = None,
    n: Annotated[int, typer.Option(help="Prompts to sample from.")] = 1000,
    k: Annotated[int, typer.Option(help="Answers sampled per prompt.")] = 4,
    temperature: float = 1.0,
    data: Annotated[str | None, typer.Option(help="The task's rows to use \\[default: its generated split].")] = None,
    split: str = "train",
    seed: int = 0,
    batch_size: Annotated[int, typer.Option(help="Answers generated at a time.")] = 16,
    max_new_tokens: Annotated[int | None, typer.Option(help="Generation budget \\[default: the task's].")] = None,
    format: Annotated[str, typer.Option(
        "--format", help="pairs (best vs worst) or marked (KTO rows, label = score >= threshold).")] = "pairs",
    threshold: Annotated[float | None, typer.Option(
        help="Score a desirable answer reaches \\[default: 1.0 from a task, 0.5 from feedback].")] = None,
    reward_key: Annotated[str | None, typer.Option(help="Feedback: which reward to rank by \\[default: their sum].")] = None,
    with_target: Annotated[bool, typer.Option(
        help="Add the task's reference answer as one more graded candidate.")] = False,
    quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
) -> None:
    """Preference pairs (or KTO rows) from a model's sampled answers graded by a task, or from feedback."""
    from agentladder.data.pairs import pairs_from_feedback
    from agentladder.evals.sampling import pairs_from_task

    if format not in ("pairs", "marked"):
        raise ValueError(f"unknown format {format!r}: choose pairs or marked")
    if feedback:
        counts = pairs_from_feedback(feedback, out, format=format, reward_key=reward_key,  # type: ignore[arg-type]
                                     threshold=0.5 if threshold is None else threshold)
        err.print(f"[green]done[/]: {counts['rows']} rows from {counts['rows_read']} feedback rows -> {out}")
        return
    if not model or not task:
        raise ValueError("give --model and --task to sample pairs, or --feedback FILE")
    counts = pairs_from_task(model, task, n, out, data=data, split=split, seed=seed, k=k, temperature=temperature,
                             max_new_tokens=max_new_tokens, batch_size=batch_size, format=format,  # type: ignore[arg-type]
                             threshold=1.0 if threshold is None else threshold, with_target=with_target,
                             progress=not quiet)
    err.print(f"[green]done[/]: {counts['rows']} rows from {counts['prompts']} prompts x {k} answers "
              f"({counts['ties']} prompts with all answers scored alike) -> {out}")


@data_app.command("check")
@friendly_errors
def data_check(
    path: str,
    kind: Annotated[str, typer.Option(help="sft, text, pairs, marked or rl.")] = "sft",
) -> None:
    """Validate a data file; report the first bad row by file, line and field."""
    from agentladder.data import io, schema

    kinds = {"sft": schema.Conversation, "text": schema.TextRow, "pairs": schema.PreferencePair,
             "marked": schema.MarkedResponse, "rl": schema.RLPrompt}
    if kind not in kinds:
        raise ValueError(f"unknown kind {kind!r}: choose one of {', '.join(kinds)}")
    rows = io.load_rows(path, kinds[kind])
    console.print(f"{path}: {len(rows)} valid {kind} rows")


@data_app.command("distill")
@friendly_errors
def data_distill(
    prompts: Annotated[str, typer.Option(help="JSONL of conversations or RL prompts to answer.")],
    out: Annotated[str, typer.Option(help="JSONL of conversations with the teacher's answers.")],
    teacher: Annotated[str, typer.Option(help="Teacher model: alias, folder or hub id.")] = "smollm2-135m",
    max_new_tokens: int = 256,
    temperature: float = 0.0,
    batch_size: int = 8,
    seed: int = 0,
) -> None:
    """Write SFT data from a teacher model's answers (resumes a partial run)."""
    import torch

    from agentladder.data.distill import distill
    from agentladder.models.providers import make_provider

    torch.manual_seed(seed)
    provider = make_provider(teacher, batch_size=batch_size)
    try:
        answer = functools.partial(provider.complete, max_new_tokens=max_new_tokens, temperature=temperature)
        n = distill(answer, prompts, out, batch_size=batch_size, teacher_name=teacher)
    finally:
        provider.close()
    err.print(f"[green]done[/]: {n} conversations -> {out}")


@models_app.command("list")
def models_list(
    registry: Annotated[str | None, typer.Option(help="Registry file \\[default: $AGENTLADDER_DB, else agentladder.db].")] = None,
    ladder: Annotated[str | None, typer.Option(help="Only this ladder's versions.")] = None,
) -> None:
    """The built-in model aliases, then every registered version with its lineage and score."""
    from agentladder.ladder.cli import print_versions
    from agentladder.models.loading import ALIASES, TINY_ALIAS

    for name, entry in ALIASES.items():
        console.print(f"{name:16} {entry.description}")
    console.print(f"{TINY_ALIAS:16} tiny random Llama with a byte-level tokenizer (tests and dry runs)")
    print_versions(registry, ladder)


@models_app.command("prepare")
@friendly_errors
def models_prepare(name: str = "smollm2-135m", force: bool = False) -> None:
    """Convert a packaged model into the cache once (later loads take a second)."""
    from agentladder.models.loading import materialise_packaged

    path = materialise_packaged(name, force=force)
    console.print(f"{name} ready at {Path(path)}")


# -- commands registered by other packages ------------------------------------------------
# (evaluation: ``agentladder eval`` and ``agentladder data make`` are added below)
from agentladder.evals.cli import register as _register_evals  # noqa: E402

_register_evals(app, data_app, friendly_errors)

# (reinforcement learning: ``agentladder train rl``)
from agentladder.train.rl_cli import register as _register_rl  # noqa: E402

_register_rl(train_app, friendly_errors)
from agentladder.agents.cli import register as _register_traces  # noqa: E402

_register_traces(app, friendly_errors)

# (the ladder: ``agentladder climb``, ``demo``, ``recommend``, ``models show/compare/export``)
from agentladder.ladder.cli import register as _register_ladder  # noqa: E402

_register_ladder(app, models_app, friendly_errors)


def main() -> None:  # pragma: no cover - console entry
    app(prog_name="agentladder")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
