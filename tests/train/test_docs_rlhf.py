"""docs/rlhf.md: its ```python blocks run as written (in order, one namespace), its ```bash commands use
options the commands have, and its YAML block is a valid RL config."""

import re
import shlex
from pathlib import Path

import yaml
from typer.testing import CliRunner

from agentladder.cli import app
from agentladder.train.rl_config import RLConfig

DOC = Path(__file__).resolve().parents[2] / "docs" / "rlhf.md"
TEXT = DOC.read_text()
PYTHON = re.findall(r"```python\n(.*?)```", TEXT, re.DOTALL)
BASH = re.findall(r"```bash\n(.*?)```", TEXT, re.DOTALL)
YAML = re.findall(r"```yaml\n(.*?)```", TEXT, re.DOTALL)


def test_the_python_examples_run_in_order():
    assert len(PYTHON) >= 2
    namespace = {"__name__": "docs_rlhf"}
    for code in PYTHON:
        exec(compile(code, str(DOC), "exec"), namespace)
    assert namespace["scores"][0] > namespace["scores"][1]
    assert {"reward", "gold", "repetition"} <= set(namespace["run"].history[-1])


def test_the_commands_use_options_that_exist():
    commands = [shlex.split(c.split("#")[0]) for block in BASH for c in block.replace("\\\n", " ").splitlines()
                if c.startswith("agentladder")]
    assert len(commands) >= 5
    for words in commands:
        path = [w for w in words[1:3] if not w.startswith("-") and w in ("train", "reward", "rl", "eval", "judge")]
        shown = CliRunner().invoke(app, [*path, "--help"], terminal_width=200)
        assert shown.exit_code == 0, shown.output
        for option in (w for w in words if w.startswith("--")):
            assert option in shown.output, f"{' '.join(path)} has no {option}"


def test_the_yaml_is_a_valid_config():
    config = RLConfig(**yaml.safe_load(YAML[0]), out_dir="x")
    assert config.gold_rewards and config.on_hacking == "warn" and config.advantage == "gae"


def test_the_ladder_yaml_parses():
    from agentladder.ladder import parse_ladder

    block = next(b for b in YAML if "rungs:" in b)
    ladder = parse_ladder(yaml.safe_load(block))
    assert [r.kind for r in ladder.rungs] == ["baseline", "sft", "reward_model", "judge", "rl"]
    assert ladder.rungs[4].train["rewards"] == [{"type": "reward_model", "rung": "rm"}]
