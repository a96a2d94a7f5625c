"""docs/classifier.md: its ```python blocks run as written (in order, one namespace), and every option its
```bash commands use is one the command has."""

import re
import shlex
from pathlib import Path

from typer.testing import CliRunner

from agentladder.cli import app

DOC = Path(__file__).resolve().parents[2] / "docs" / "classifier.md"
TEXT = DOC.read_text()
PYTHON = re.findall(r"```python\n(.*?)```", TEXT, re.DOTALL)
BASH = re.findall(r"```bash\n(.*?)```", TEXT, re.DOTALL)


def test_the_python_examples_run_in_order():
    assert len(PYTHON) >= 2
    namespace = {"__name__": "docs_classifier"}
    for code in PYTHON:
        exec(compile(code, str(DOC), "exec"), namespace)
    assert namespace["reply"].message.content in ("P1", "P2", "P3")


def test_the_commands_use_options_that_exist():
    commands = [shlex.split(c.replace("\\\n", " ").split("#")[0]) for block in BASH for c in
                block.replace("\\\n", " ").splitlines() if c.startswith("agentladder")]
    assert len(commands) >= 5
    for words in commands:
        path = [w for w in words[1:3] if not w.startswith("-") and w in ("data", "make", "train", "classifier", "eval",
                                                                          "serve")]
        shown = CliRunner().invoke(app, [*path, "--help"], terminal_width=200)
        assert shown.exit_code == 0, shown.output
        for option in (w for w in words if w.startswith("--")):
            assert option in shown.output, f"{' '.join(path)} has no {option}"
