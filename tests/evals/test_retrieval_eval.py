"""``evaluate_retrieval`` and ``agentladder eval --task retrieval`` / ``data make pharmacy-kb``."""

import json

from typer.testing import CliRunner

from agentladder.cli import app
from agentladder.evals.retrieval import evaluate_retrieval
from agentladder.tasks.retrieval import write_pharmacy_kb

runner = CliRunner()


def test_evaluate_rankers_side_by_side(tmp_path, tiny_encoder):
    write_pharmacy_kb(tmp_path / "kb", sizes={"train": 20, "validation": 20, "test": 60})
    report = evaluate_retrieval(["bm25", tiny_encoder, f"hybrid:{tiny_encoder}"], tmp_path / "kb" / "test",
                                out=tmp_path / "rep", n_resamples=200)
    assert list(report.models) == ["bm25", "model", "hybrid:model"]
    first, *others = report.models.values()
    assert not first.gains and all(set(r.gains) == {"recall@5", "mrr", "ndcg@10"} for r in others)
    for result in report.models.values():
        m = result.metrics
        assert m["recall@1"].value <= m["recall@5"].value <= m["recall@10"].value
        assert m["recall@5"].n == 60 and m["recall@5"].low <= m["recall@5"].value <= m["recall@5"].high
    saved = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert saved["rows"] == 60 and saved["corpus"] == report.corpus_size
    rankings = (tmp_path / "rep" / "rankings.jsonl").read_text().splitlines()
    assert len(rankings) == 3 * 60 and len(json.loads(rankings[0])["top"]) == 10
    assert "## Gain over bm25" in (tmp_path / "rep" / "report.md").read_text()


def test_cli_make_and_eval(tmp_path):
    kb = tmp_path / "kb"
    made = runner.invoke(app, ["data", "make", "pharmacy-kb", "--out", str(kb), "--split", "test", "--n", "40"])
    assert made.exit_code == 0, made.output
    assert len((kb / "test.jsonl").read_text().splitlines()) == 40
    assert len((kb / "train.jsonl").read_text().splitlines()) == 3000
    again = runner.invoke(app, ["data", "make", "pharmacy-kb", "--out", str(kb)])
    assert again.exit_code == 1 and "--overwrite" in again.output
    result = runner.invoke(app, ["eval", "--task", "retrieval", "--model", "bm25", "--data", str(kb / "test"),
                                 "--out", str(tmp_path / "rep"), "--bootstrap", "100"])
    assert result.exit_code == 0, result.output
    assert "recall@5" in result.output and (tmp_path / "rep" / "report.md").is_file()
    (kb / "corpus.jsonl").write_text('{"id": "p1", "text": "x"}\n{"text": "y"}\n')
    bad = runner.invoke(app, ["eval", "--task", "retrieval", "--model", "bm25", "--data", str(kb / "test")])
    assert bad.exit_code == 1 and "corpus.jsonl:2: id: missing" in bad.output
