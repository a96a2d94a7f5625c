"""The main job on the embedded defaults: the first rung of the ladder, measured.

1. generate medication-directions training conversations and a held-out test split;
2. fine-tune the packaged SmolLM2-135M with LoRA on them;
3. evaluate the base model and the tuned one side by side on the test split.

Every step keeps what it finished: rerunning the command reuses the data,
resumes an interrupted fine-tune from its newest checkpoint, and evaluates again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from agentladder.evals import EvalReport, evaluate
from agentladder.models.loading import DEFAULT_MODEL
from agentladder.tasks import write_data
from agentladder.train.run import RUN_CONFIG
from agentladder.train.sft import SFTConfig, sft

TASK = "medication-directions"


@dataclass
class QuickstartResult:
    run_dir: Path
    """The fine-tuned model's run folder (adapter, metrics, training curves)."""
    report_dir: Path
    """The evaluation report (report.md, report.json, plots, samples)."""
    report: EvalReport
    """The base and the tuned model, side by side."""


def quickstart(
    out: str | Path = "runs/quickstart",
    *,
    model: str = DEFAULT_MODEL,
    train_rows: int = 400,
    test_rows: int = 50,
    steps: int = 60,
    batch_size: int = 4,
    learning_rate: float = 1e-3,
    max_length: int = 512,
    seed: int = 0,
    progress: bool = True,
) -> QuickstartResult:
    """Make the data, fine-tune ``model`` on it with LoRA, and evaluate both; see the module docstring."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    train_file, test_file = out / "train.jsonl", out / "test.jsonl"
    if not train_file.exists():
        write_data(TASK, "train", train_rows, train_file, seed=seed, format="sft")
    if not test_file.exists():
        write_data(TASK, "test", test_rows, test_file, seed=seed)

    run_dir = out / "sft"
    if (run_dir / "agentladder.json").exists():
        pass  # already trained
    elif (run_dir / RUN_CONFIG).exists() and (run_dir / "checkpoints").exists():
        sft(out_dir=str(run_dir), resume=True, progress=progress)
    else:
        sft(SFTConfig(model=model, data=str(train_file), out_dir=str(run_dir), lora=True, max_steps=steps,
                      batch_size=batch_size, learning_rate=learning_rate, max_length=max_length, seed=seed,
                      save_every=25, progress=progress))

    report_dir = out / "eval"
    report = evaluate([str(run_dir), model], TASK, data=str(test_file), out=str(report_dir), progress=progress)
    return QuickstartResult(run_dir=run_dir, report_dir=report_dir, report=report)
