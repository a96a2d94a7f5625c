"""The ``agentladder`` command line: one command per job, each a thin shell over the Python API.

One module per command group: :mod:`~agentladder.cli.train` (``train sft|dpo|kto|rl``),
:mod:`~agentladder.cli.data` (``data make|check|pairs|distill``), :mod:`~agentladder.cli.eval`
(``eval``), :mod:`~agentladder.cli.ladder` (``quickstart``, ``climb``, ``demo``, ``recommend``),
:mod:`~agentladder.cli.models` (``models ...``), :mod:`~agentladder.cli.traces` (``traces ...``),
:mod:`~agentladder.cli.tools` (``tools list|serve|keys``), :mod:`~agentladder.cli.serve` (``serve``),
:mod:`~agentladder.cli.keys` (``keys ...``, ``usage``) and :mod:`~agentladder.cli.guard` (``guard scan|eval|train``).
The trainers' options come from their configs (:mod:`~agentladder.cli.options`); a failure the user
can fix prints one ``error:`` line, anything else is a bug with its traceback
(:mod:`~agentladder.cli.errors`).

Data-parallel runs launch the same commands through torch distributed:
``torchrun --nproc_per_node 2 -m agentladder train sft ...``.
"""

from __future__ import annotations

import typer

from agentladder.cli.data import data_app
from agentladder.cli.eval import eval_command
from agentladder.cli.guard import guard_app
from agentladder.cli.keys import keys_app, usage_command
from agentladder.cli.ladder import (
    climb_command,
    demo_command,
    quickstart_command,
    recommend_command,
)
from agentladder.cli.models import models_app
from agentladder.cli.serve import serve_command
from agentladder.cli.tools import tools_app
from agentladder.cli.traces import traces_app
from agentladder.cli.train import train_app

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Post-train agent components, rung by rung.")
app.command("quickstart")(quickstart_command)
app.add_typer(train_app, name="train")
app.add_typer(data_app, name="data")
app.add_typer(models_app, name="models")
app.command("eval")(eval_command)
app.add_typer(traces_app, name="traces")
app.add_typer(tools_app, name="tools")
app.add_typer(guard_app, name="guard")
app.command("climb")(climb_command)
app.command("demo")(demo_command)
app.command("recommend")(recommend_command)
app.command("serve")(serve_command)
app.add_typer(keys_app, name="keys")
app.command("usage")(usage_command)


def main() -> None:  # pragma: no cover - console entry
    app(prog_name="agentladder")


__all__ = ["app", "main"]
