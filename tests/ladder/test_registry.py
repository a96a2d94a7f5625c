"""The registry: versions with lineage, lookups by id, prefix and ladder/rung, export errors."""

import time

import pytest

from agentladder.ladder.registry import ModelVersion, Registry, file_hash, version_id


def _v(vid, parent=None, **kw):
    ladder, rung, _ = vid.split("/")
    return ModelVersion(id=vid, ladder=ladder, rung=rung, kind=kw.pop("kind", rung), path=kw.pop("path", "/nowhere"),
                        artifact=kw.pop("artifact", "full"), parent=parent, **kw)


def test_lineage_runs_from_the_root_and_children_point_back(tmp_path):
    with Registry(tmp_path / "r.db") as reg:
        reg.register(_v("med/baseline/aaaaaa", kind="baseline", artifact="base"))
        reg.register(_v("med/sft/bbbbbb", "med/baseline/aaaaaa", score=0.3, metrics={"exact_match": {"value": 0.3}}))
        reg.register(_v("med/dpo/cccccc", "med/sft/bbbbbb"))
        reg.register(_v("med/rl/dddddd", "med/sft/bbbbbb"))  # the dpo rung was rejected: rl starts from sft
        assert [v.id for v in reg.lineage("med/rl/dddddd")] == ["med/baseline/aaaaaa", "med/sft/bbbbbb",
                                                                "med/rl/dddddd"]
        assert [v.id for v in reg.children("med/sft")] == ["med/dpo/cccccc", "med/rl/dddddd"]
        assert reg.get("med/sft/bbbbbb").metrics == {"exact_match": {"value": 0.3}}
    with Registry(tmp_path / "r.db") as reg:  # persisted
        assert len(reg.list("med")) == 4 and reg.list("other") == []


def test_a_parent_must_be_registered_first(tmp_path):
    with Registry(tmp_path / "r.db") as reg, pytest.raises(ValueError, match="parent 'med/sft/zzzzzz'"):
        reg.register(_v("med/dpo/cccccc", "med/sft/zzzzzz"))


def test_lookup_by_prefix_and_by_ladder_and_rung(tmp_path):
    with Registry(tmp_path / "r.db") as reg:
        reg.register(_v("med/sft/aaaaaa", created=time.time() - 10))
        reg.register(_v("med/sft/bbbbbb"))
        reg.register(_v("med/sft2/cccccc"))
        assert reg.get("med/sft/b").id == "med/sft/bbbbbb"
        assert reg.get("med/sft").id == "med/sft/bbbbbb"  # the newest of the rung
        with pytest.raises(ValueError, match="matches 2 versions"):
            reg.get("med/sft/")
        with pytest.raises(ValueError, match="no model version 'nope'"):
            reg.get("nope")


def test_registering_again_replaces_the_version(tmp_path):
    with Registry(tmp_path / "r.db") as reg:
        reg.register(_v("med/sft/aaaaaa", status="kept"))
        reg.register(_v("med/sft/aaaaaa", status="rejected"))
        assert [v.status for v in reg.list()] == ["rejected"]


def test_export_refuses_adapters_of_full_weights_and_a_non_empty_folder(tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("x")
    with Registry(":memory:") as reg:
        reg.register(_v("med/rl/aaaaaa"))
        with pytest.raises(ValueError, match="holds full weights, not a LoRA adapter"):
            reg.export("med/rl", tmp_path / "out", merged=False)
        with pytest.raises(FileExistsError, match="not empty"):
            reg.export("med/rl", tmp_path / "busy")


def test_ids_and_data_hashes_are_stable(tmp_path):
    assert version_id("med", "sft", tmp_path / "a") == version_id("med", "sft", tmp_path / "a")
    assert version_id("med", "sft", tmp_path / "a") != version_id("med", "sft", tmp_path / "b")
    (tmp_path / "d.jsonl").write_text("{}\n")
    assert file_hash(tmp_path / "d.jsonl") == file_hash(tmp_path / "d.jsonl") and file_hash(None) is None


def test_a_registry_written_before_the_split_records_gains_them(tmp_path):
    import sqlite3

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:  # the first schema, without decided_on / reported_on
        db.execute("CREATE TABLE model_versions (id TEXT PRIMARY KEY, ladder TEXT NOT NULL, rung TEXT NOT NULL, "
                   "kind TEXT NOT NULL, parent TEXT, base_model TEXT, path TEXT NOT NULL, artifact TEXT NOT NULL, "
                   "status TEXT NOT NULL, config TEXT, data_path TEXT, data_hash TEXT, examples INTEGER, "
                   "tokens INTEGER, train_seconds REAL, headline TEXT, score REAL, metrics TEXT, task TEXT, "
                   "notes TEXT, created REAL NOT NULL)")
        db.execute("INSERT INTO model_versions (id, ladder, rung, kind, path, artifact, status, created) "
                   "VALUES ('m/sft/aaaaaa', 'm', 'sft', 'sft', '/x', 'full', 'kept', 1.0)")
    with Registry(path) as reg:
        assert reg.get("m/sft").decided_on == {} and reg.get("m/sft").reported_on == {}
        reg.register(_v("m/dpo/bbbbbb", "m/sft/aaaaaa", decided_on={"split": "validation", "rows": 200},
                        reported_on={"test": {"split": "test", "rows": 200, "metrics": {"exact_match": {"value": 0.9}}}}))
        back = reg.get("m/dpo")
        assert back.decided_on["split"] == "validation" and back.reported_on["test"]["metrics"]["exact_match"]["value"] == 0.9
