"""Every ```python block of docs/retrieval.md runs as written (with the packaged MiniLM)."""

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "retrieval.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.DOTALL)


def test_the_doc_has_examples():
    assert len(BLOCKS) >= 2


@pytest.mark.slow
@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_doc_example_runs(code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exec(compile(code, str(DOC), "exec"), {"__name__": "docs_retrieval"})


def test_the_commands_shown_exist():
    from typer.testing import CliRunner

    from agentladder.cli import app

    for line in re.findall(r"^(?:/usr/bin/time -v )?agentladder ([^#\n]*)", DOC.read_text(), re.MULTILINE):
        words = line.split()
        command = words[: 2 if words[0] in ("data", "train") else 1]
        result = CliRunner().invoke(app, [*command, "--help"])
        assert result.exit_code == 0, line
        for option in (w for w in words if w.startswith("--")):
            assert option in result.output, (line, option)
