"""Every ```python block of docs/ladder.md runs as written."""

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "ladder.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.DOTALL)


def test_the_doc_has_examples():
    assert len(BLOCKS) >= 4


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_doc_example_runs(code):
    exec(compile(code, str(DOC), "exec"), {"__name__": "docs_ladder"})


def test_the_yaml_example_is_a_valid_ladder():
    import yaml

    from agentladder.ladder import parse_ladder

    example = re.search(r"## A ladder file\n\n```yaml\n(.*?)```", DOC.read_text(), re.DOTALL)
    assert example is not None
    config = parse_ladder(yaml.safe_load(example.group(1)), source="docs/ladder.md")
    assert [r.kind for r in config.rungs] == ["baseline", "sft", "dpo", "rl"]
    assert config.rungs[1].task(config.task) == "medication-directions@brief"


def test_the_classifier_rung_example_is_a_valid_ladder():
    import yaml

    from agentladder.ladder import parse_ladder

    example = re.search(r"## The classifier rung\n.*?```yaml\n(.*?)```", DOC.read_text(), re.DOTALL)
    assert example is not None
    config = parse_ladder(yaml.safe_load(example.group(1)), source="docs/ladder.md")
    assert [r.kind for r in config.rungs] == ["baseline", "classifier"]


def test_the_recommend_outputs_shown_are_what_the_cli_prints():
    from typer.testing import CliRunner

    from agentladder.cli import app

    text = DOC.read_text()
    shown_blocks = re.findall(r"```\n\$ agentladder (recommend [^\n]*)\n(.*?)```", text, re.DOTALL)
    assert len(shown_blocks) >= 2
    for shown in shown_blocks:
        args = shown[0].split()
        res = CliRunner().invoke(app, args, env={"COLUMNS": "400"})
        assert res.exit_code == 0, res.output
        assert [line.strip() for line in res.output.splitlines()] == [line.strip() for line in shown[1].splitlines()]


def test_the_control_example_is_a_valid_rung():
    import yaml

    from agentladder.ladder.config import Rung

    example = re.search(r"### A preference rung beside its SFT control\n.*?```yaml\n(.*?)```", DOC.read_text(), re.DOTALL)
    assert example is not None
    rung = Rung(**yaml.safe_load(example.group(1))[0])
    assert rung.control is not None and rung.control.kind == "sft" and not rung.control.gate
