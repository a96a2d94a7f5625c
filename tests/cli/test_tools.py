"""`agentladder tools list|keys`: a tools file, an MCP server started by its command line, signing keys."""

import json
from pathlib import Path

from typer.testing import CliRunner

from agentladder.cli import app

ROOT = Path(__file__).resolve().parents[2]


def test_list_a_tools_file():
    result = CliRunner().invoke(app, ["tools", "list", str(ROOT / "examples" / "pharmacy" / "tools.py"), "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["name"] for r in rows] == ["check_formulary", "check_dose", "check_interactions", "batch_dose_audit"]
    assert rows[1]["input_schema"]["required"] == ["drug", "strength_mg", "dose_units", "doses_per_day"]


def test_list_an_mcp_server(monkeypatch):
    monkeypatch.chdir(ROOT / "examples" / "pharmacy")
    result = CliRunner().invoke(app, ["tools", "list", "--mcp", "python -m formulary_server", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["name"] for r in rows] == ["check_formulary", "check_dose", "check_interactions"]
    assert rows[0]["description"].startswith("Look a drug up in the formulary")


def test_errors_are_one_line(tmp_path):
    missing = CliRunner().invoke(app, ["tools", "list", str(tmp_path / "nope.py")])
    assert missing.exit_code == 1 and "no tools file at" in missing.output
    both = CliRunner().invoke(app, ["tools", "list", "x.py", "--mcp", "y"])
    assert both.exit_code == 1 and "give one of" in both.output


def test_keys(tmp_path):
    db = str(tmp_path / "keys.db")
    added = CliRunner().invoke(app, ["tools", "keys", "add", "--key-id", "k1", "--db", db])
    assert added.exit_code == 0 and json.loads(added.stdout)["key_id"] == "k1"
    rotated = json.loads(CliRunner().invoke(app, ["tools", "keys", "rotate", "--grace", "60", "--db", db]).stdout)
    listed = CliRunner().invoke(app, ["tools", "keys", "list", "--db", db]).stdout.split()
    assert listed == ["k1", rotated["key_id"]]
    CliRunner().invoke(app, ["tools", "keys", "retire", "k1", "--db", db])
    assert CliRunner().invoke(app, ["tools", "keys", "list", "--db", db]).stdout.split() == [rotated["key_id"]]
