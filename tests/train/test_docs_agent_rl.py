"""docs/agent-rl.md: its ```python blocks run as written (in order, one namespace, in a scratch folder), and
its ```bash commands use options the commands have."""

import re
import shlex
from pathlib import Path

from typer.testing import CliRunner

from agentladder.cli import app

DOC = Path(__file__).resolve().parents[2] / "docs" / "agent-rl.md"
TEXT = DOC.read_text()
PYTHON = re.findall(r"```python\n(.*?)```", TEXT, re.DOTALL)
BASH = re.findall(r"```bash\n(.*?)```", TEXT, re.DOTALL)
LINES = [line for block in BASH for line in block.replace("\\\n", " ").splitlines()]
"""The bash blocks' command lines, continuation lines joined."""


def test_the_python_examples_run_in_order(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert len(PYTHON) >= 2
    namespace = {"__name__": "docs_agent_rl"}
    for code in PYTHON:
        exec(compile(code, str(DOC), "exec"), namespace)
    assert namespace["run"].steps == 2
    assert namespace["rows"] and namespace["episode"].calls


def test_the_commands_use_options_that_exist():
    commands = [shlex.split(c.split("#")[0]) for c in LINES if c.startswith("agentladder")]
    assert len(commands) >= 2
    for words in commands:
        path = [w for w in words[1:3] if not w.startswith("-")]  # the subcommand: train rl, train sft, ...
        shown = CliRunner().invoke(app, [*path, "--help"], terminal_width=200)
        assert shown.exit_code == 0, shown.output
        for option in (w for w in words if w.startswith("--")):
            assert option in shown.output, f"{' '.join(path)} has no {option}"


def test_the_example_scripts_take_the_options_the_page_shows():
    scripts = [shlex.split(c) for c in LINES if c.startswith("python examples/")]
    assert len(scripts) >= 3
    root = DOC.parents[1]
    for words in scripts:
        source = (root / words[1]).read_text()
        for option in (w for w in words if w.startswith("--")):
            assert f'"{option}"' in source, f"{words[1]} has no {option}"
