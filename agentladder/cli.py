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

        try:
            return fn(*args, **kwargs)
        except (DataError, ModelLoadError, FileExistsError, FileNotFoundError, ValueError) as e:
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
    train_rows: int = 800,
    test_rows: int = 100,
    steps: int = 100,
    batch_size: int = 8,
    quiet: bool = False,
) -> None:
    """The first rung on the embedded defaults: make data, LoRA-tune SmolLM2, compare it with its base."""
    from agentladder.quickstart import quickstart

    result = quickstart(out, model=model, train_rows=train_rows, test_rows=test_rows, steps=steps,
                        batch_size=batch_size, progress=not quiet)
    console.print(result.report.table())
    err.print(f"[green]done[/]: model {result.run_dir}, report {result.report_dir / 'report.md'}")


@train_app.command("sft")
@friendly_errors
def train_sft(
    data: Annotated[str | None, typer.Option(help="JSONL of conversations, prompt/completion or {text} rows.")] = None,
    out: Annotated[str | None, typer.Option(help="Run folder for checkpoints, metrics and the model.")] = None,
    model: Annotated[str, typer.Option(help="Alias, local folder or hub id.")] = "smollm2-135m",
    lora: Annotated[bool, typer.Option("--lora/--full", help="LoRA adapters or full fine-tuning.")] = False,
    lora_r: int = 16,
    lora_alpha: int = 32,
    max_length: int = 1024,
    packing: Annotated[bool, typer.Option("--packing/--no-packing")] = True,
    epochs: float = 1.0,
    max_steps: int | None = None,
    batch_size: int = 4,
    grad_accum: int = 1,
    lr: Annotated[float | None, typer.Option(help="Learning rate [default: 2e-4 LoRA, 2e-5 full].")] = None,
    warmup_ratio: float = 0.05,
    precision: Annotated[str, typer.Option(help="fp32 or bf16 (autocast).")] = "fp32",
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
            max_length=max_length, packing=packing, epochs=epochs, max_steps=max_steps, batch_size=batch_size,
            grad_accum=grad_accum, learning_rate=lr if lr is not None else (2e-4 if lora else 2e-5),
            warmup_ratio=warmup_ratio, precision=precision, strategy=strategy, seed=seed, save_every=save_every,
            progress=not quiet,
        )
        result = sft(config)
    if os.environ.get("RANK", "0") == "0":
        err.print(f"[green]done[/]: {result.steps} steps, final loss {result.final_loss:.4f} -> {result.out_dir}")


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
    from agentladder.data.distill import distill_from_model

    n = distill_from_model(
        teacher, prompts, out, max_new_tokens=max_new_tokens, temperature=temperature, batch_size=batch_size,
        seed=seed,
    )
    err.print(f"[green]done[/]: {n} conversations -> {out}")


@models_app.command("list")
def models_list() -> None:
    """The built-in model aliases."""
    from agentladder.models.loading import ALIASES, TINY_ALIAS

    for name, entry in ALIASES.items():
        console.print(f"{name:16} {entry.description}")
    console.print(f"{TINY_ALIAS:16} tiny random Llama with a byte-level tokenizer (tests and dry runs)")


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


def main() -> None:  # pragma: no cover - console entry
    app(prog_name="agentladder")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
