"""A failure the user can fix is one ``error:`` line; anything else is a bug and keeps its traceback."""

import subprocess
import sys

import pytest
from pydantic import BaseModel, Field, ValidationError
from typer.testing import CliRunner

import agentladder.cli.data
from agentladder.cli import app
from agentladder.errors import (
    AgentladderError,
    ConfigError,
    DataError,
    MissingFileError,
    OutputExistsError,
    config_error,
    data_error,
)

runner = CliRunner()
MAKE = ["data", "make", "medication-directions", "--n", "2"]


def _raising(exc: BaseException):
    def fail(*args, **kwargs):
        raise exc

    return fail


@pytest.mark.parametrize("exc", [ConfigError("no such setting [x]"), DataError("rows.jsonl", 3, "text", "missing"),
                                 MissingFileError("nope.yaml: no such file"), OutputExistsError("runs/x holds a run")])
def test_the_projects_errors_are_one_line(monkeypatch, tmp_path, exc):
    monkeypatch.setattr(agentladder.cli.data, "write_data", _raising(exc))
    result = runner.invoke(app, [*MAKE, "--out", str(tmp_path / "x.jsonl")])
    assert result.exit_code == 1
    assert result.output.strip() == f"error: {exc}"  # one line, brackets kept as written
    assert isinstance(result.exception, SystemExit)


@pytest.mark.parametrize("exc", [ValueError("a bug"), KeyError("a bug"), RuntimeError("a bug"),
                                 FileNotFoundError("a bug")])
def test_any_other_exception_is_a_bug_with_its_traceback(monkeypatch, tmp_path, exc):
    monkeypatch.setattr(agentladder.cli.data, "write_data", _raising(exc))
    result = runner.invoke(app, [*MAKE, "--out", str(tmp_path / "x.jsonl")])
    assert result.exit_code == 1 and "error:" not in result.output
    assert result.exception is exc  # not turned into an exit: the runner shows the traceback
    with pytest.raises(type(exc)):
        runner.invoke(app, [*MAKE, "--out", str(tmp_path / "x.jsonl")], catch_exceptions=False)


def test_a_bug_prints_its_traceback_from_the_shell(tmp_path):
    code = ("import sys, agentladder.cli.data as d\n"
            "def bug(*a, **k): raise ValueError('a bug')\n"
            "d.write_data = bug\n"
            "from agentladder.cli import app\n"
            f"app(['data', 'make', 'medication-directions', '--out', {str(tmp_path / 'x')!r}])\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "Traceback" in done.stderr and "ValueError: a bug" in done.stderr
    assert not any(line.startswith("error:") for line in done.stderr.splitlines())


def test_ctrl_c_says_how_to_resume(monkeypatch, tmp_path):
    monkeypatch.setattr(agentladder.cli.data, "write_data", _raising(KeyboardInterrupt()))
    result = runner.invoke(app, [*MAKE, "--out", str(tmp_path / "x.jsonl")])
    assert result.exit_code == 130 and "interrupted" in result.output


def test_each_error_type_keeps_the_builtin_it_refines():
    assert issubclass(ConfigError, ValueError) and issubclass(DataError, ValueError)
    assert issubclass(MissingFileError, FileNotFoundError) and issubclass(OutputExistsError, FileExistsError)
    for cls in (ConfigError, DataError, MissingFileError, OutputExistsError):
        assert issubclass(cls, AgentladderError)
    assert str(MissingFileError("x: no such file")) == "x: no such file"


class _Row(BaseModel):
    name: str
    items: list[int] = Field(default_factory=list)
    rate: float = Field(1.0, gt=0)


def _error(**row) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        _Row(**row)
    return info.value


def test_data_error_names_file_line_and_field():
    err = _error(name="a", items=[1, "x"])
    assert str(data_error(err, "rows.jsonl", 12)) == (
        "rows.jsonl:12: items[1]: Input should be a valid integer, unable to parse string as an integer")
    located = data_error(err, "cfg.yaml", lambda loc: {("items", 1): 7}.get(tuple(loc)))
    assert (located.path, located.line, located.field) == ("cfg.yaml", 7, "items[1]")
    assert str(data_error(_error(), None)) == "name: Field required"


def test_config_error_is_field_and_message():
    assert str(config_error(_error(name="a", rate=0))) == "rate: Input should be greater than 0"
