"""Reward models and tuned judges trained by ``agentladder train reward|judge`` as versions in the model registry.

The version's ``kind`` and ``artifact`` are ``reward_model`` or ``judge`` (the folder, recognised by its
manifest as a classifier folder is); its metrics are the held-out figures written in the manifest
(``decided_on``: the validation rows), its headline the pairwise accuracy or the judge's quadratic
kappa. When the model it started from is a registered version (a climb's SFT rung, say), that version
is its parent, so ``agentladder models show`` gives its lineage.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from agentladder.ladder.registry import ModelVersion, Registry, file_hash, version_id
from agentladder.models.rewardmodel import MANIFEST as RM_MANIFEST
from agentladder.rewards.judge import JUDGE_MANIFEST


def _parent(reg: Registry, model: str) -> str | None:
    """The registered version whose weights are ``model``'s folder, if any."""
    if not Path(model).exists():
        return None
    where = str(Path(model).resolve())
    found = [v for v in reg.list() if v.path == where]
    return found[-1].id if found else None


def _version(reg: Registry, folder: str | os.PathLike, kind: str, config: dict[str, Any], figures: dict[str, Any],
             headline: str, validation: str | None, rows: int | None, ladder: str | None) -> ModelVersion:
    folder = Path(folder).resolve()
    ladder = ladder or kind
    data = str(Path(config["data"]).resolve())
    metrics = {k: {"value": v, "n": rows} for k, v in figures.items() if isinstance(v, (int, float)) or v is None}
    return ModelVersion(
        id=version_id(ladder, folder.name, folder), ladder=ladder, rung=folder.name, kind=kind, path=str(folder),
        artifact=kind, parent=_parent(reg, config["model"]), base_model=config["model"], status="kept", config=config,
        data_path=data, data_hash=file_hash(data), examples=None, headline=headline,
        score=figures.get(headline), metrics=metrics,
        decided_on={"split": "validation", "rows": rows, "path": validation, "hash": file_hash(validation)})


def register_reward_model(folder: str | os.PathLike, registry: str | os.PathLike | None = None, *,
                          ladder: str | None = None) -> ModelVersion:
    """Register a finished ``train reward`` folder (``$AGENTLADDER_DB``, else ``agentladder.db``)."""
    manifest = json.loads((Path(folder) / RM_MANIFEST).read_text())
    config = json.loads((Path(folder) / "train_config.json").read_text())
    training = manifest.get("training") or {}
    pairs = (manifest.get("validation") or {}).get("pairs") or {}
    figures = {k: v for k, v in pairs.items() if k not in ("pairs", "reliability")}
    validation = config.get("validation")
    with Registry(registry) as reg:
        version = _version(reg, folder, "reward_model", config, figures, "accuracy", validation, pairs.get("pairs"),
                           ladder)
        version.examples = training.get("rows")
        return reg.register(version)


def register_judge(folder: str | os.PathLike, registry: str | os.PathLike | None = None, *,
                   ladder: str | None = None) -> ModelVersion:
    """Register a finished ``train judge`` folder; the untuned model's agreement goes into its notes."""
    manifest = json.loads((Path(folder) / JUDGE_MANIFEST).read_text())
    config = json.loads((Path(folder) / "judge_config.json").read_text())
    agreement = manifest.get("agreement") or {}
    tuned = {k: v for k, v in (agreement.get("tuned") or {}).items() if k != "rows"}
    with Registry(registry) as reg:
        version = _version(reg, folder, "judge", config, tuned, "quadratic_kappa", config.get("validation"),
                           manifest.get("held_out_rows"), ladder)
        version.examples = manifest.get("rows")
        version.notes = {"untuned": agreement.get("untuned"), "scale": manifest.get("scale")}
        return reg.register(version)


__all__ = ["register_judge", "register_reward_model"]
