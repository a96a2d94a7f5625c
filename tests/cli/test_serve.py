"""``agentladder serve`` as a user runs it: its options and its one-line errors (the server itself: tests/serve)."""

import pytest
from typer.testing import CliRunner

from agentladder.cli import app
from agentladder.cli.serve import parse_adapters
from agentladder.errors import ConfigError

runner = CliRunner()


def test_help_lists_the_options():
    result = runner.invoke(app, ["serve", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for option in ("--model", "--adapter", "--host", "--port", "--max-batch", "--embeddings", "--dtype"):
        assert option in result.output


def test_adapter_options():
    assert parse_adapters(["parser=runs/a", "triage = runs/b"]) == {"parser": "runs/a", "triage": "runs/b"}
    for bad in (["parser"], ["=runs/a"], ["parser="]):
        with pytest.raises(ConfigError, match="NAME=PATH"):
            parse_adapters(bad)
    with pytest.raises(ConfigError, match="twice"):
        parse_adapters(["a=x", "a=y"])


def test_bad_settings_are_one_line_errors(tmp_path):
    result = runner.invoke(app, ["serve", "--model", "tiny", "--adapter", f"parser={tmp_path}"])
    assert result.exit_code == 1 and "not a LoRA adapter folder" in result.output
    result = runner.invoke(app, ["serve", "--model", str(tmp_path / "missing")])
    assert result.exit_code == 1 and "error:" in result.output
