"""Any file in the task's form loads; a row that does not fit is named by file, line and field."""

import json

import pytest
from typer.testing import CliRunner

from agentladder.cli import app
from agentladder.data import DataError
from agentladder.tasks import get_task

TASK = get_task("medication-directions")
GOOD = {"id": "rx-1", "text": "Ibuprofen 400 mg tab 1 PO q6h prn pain",
        "target": {"drug": "ibuprofen", "strength_mg": 400, "dose_units": 1, "doses_per_day": 4,
                   "as_needed": True, "duration_days": None}}


def _write(tmp_path, rows):
    path = tmp_path / "rows.jsonl"
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_a_file_written_by_someone_else_loads(tmp_path):
    other = {"text": "Lisinopril 10mg daily", "split": "custom",
             "target": {"drug": "lisinopril", "strength_mg": 10.0, "dose_units": 1, "doses_per_day": 1,
                        "as_needed": False, "duration_days": 30.0}}
    unknown_drug = {**GOOD, "id": 7, "target": {**GOOD["target"], "drug": "kryptonite"}}
    rows = TASK.load(_write(tmp_path, [GOOD, other, "", unknown_drug]))
    assert [r.id for r in rows] == ["rx-1", "line-2", "7"]
    assert rows[1].target["strength_mg"] == 10 and rows[1].target["duration_days"] == 30
    assert TASK.score(rows[2], TASK.parse(json.dumps(rows[2].target)))["dangerous"] is None


@pytest.mark.parametrize("bad, where", [
    ({**GOOD, "target": {**GOOD["target"], "strength_mg": "400"}}, "rows.jsonl:2: target.strength_mg:"),
    ({**GOOD, "target": {k: v for k, v in GOOD["target"].items() if k != "as_needed"}},
     "rows.jsonl:2: target.as_needed: Field required"),
    ({**GOOD, "target": {**GOOD["target"], "as_needed": "yes"}}, "rows.jsonl:2: target.as_needed:"),
    ({**GOOD, "target": {**GOOD["target"], "colour": "red"}}, "rows.jsonl:2: target.colour:"),
    ({"id": "x", "target": GOOD["target"]}, "rows.jsonl:2: text: Field required"),
    ('{"id": "x", "text": ', "rows.jsonl:2: invalid JSON"),
    ([1, 2], "rows.jsonl:2: expected a JSON object"),
    ({**GOOD, "text": "another line"}, "rows.jsonl:2: id: duplicate id 'rx-1' (first on line 1)"),
])
def test_bad_row_names_file_line_and_field(tmp_path, bad, where):
    path = _write(tmp_path, [GOOD, bad])
    with pytest.raises(DataError) as info:
        TASK.load(path)
    assert str(info.value).startswith(str(tmp_path / where))


def test_cli_prints_one_clear_line(tmp_path):
    path = _write(tmp_path, [GOOD, {**GOOD, "id": "rx-2", "target": {**GOOD["target"], "dose_units": "one"}}])
    result = CliRunner().invoke(app, ["eval", "--model", "tiny", "--data", str(path), "--out", str(tmp_path / "r")])
    assert result.exit_code == 1
    assert "rows.jsonl:2: target.dose_units:" in result.output and "Traceback" not in result.output
    missing = CliRunner().invoke(app, ["eval", "--model", "tiny", "--data", str(tmp_path / "nope.jsonl")])
    assert missing.exit_code == 1 and "nope.jsonl: file not found" in missing.output
