"""Data parallelism: 2 CPU processes on gloo, launched with torchrun as a user would."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.train.ddp_worker import build, run

ROOT = Path(__file__).resolve().parents[2]


def _torchrun(tmp_path: Path, strategy: str) -> dict:
    target = tmp_path / f"{strategy}.pt"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(ROOT / "tests" / "train" / "ddp_worker.py"), str(tmp_path / strategy), str(target), strategy]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return torch.load(target, weights_only=False)


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    # One process, 4 rows per step: the combined batch of the two processes' 2 + 2.
    return run(build(str(tmp_path_factory.mktemp("single")), batch_size=4))


@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_two_process_gradient_equals_single_process_gradient_of_combined_batch(tmp_path, single, strategy):
    dist = _torchrun(tmp_path, strategy)
    assert dist["world_size"] == 2 and single["world_size"] == 1
    assert dist["grads"].keys() == single["grads"].keys()
    for name, g in single["grads"].items():
        torch.testing.assert_close(dist["grads"][name], g, atol=1e-6, rtol=1e-5, msg=name)
    for name, w in single["weights"].items():  # and two optimizer steps later, the same weights
        torch.testing.assert_close(dist["weights"][name], w, atol=1e-5, rtol=1e-5, msg=name)
    assert dist["losses"] == pytest.approx(single["losses"], rel=1e-5)


def test_torchrun_cli_fsdp_full_fine_tune_saves_the_same_model(tmp_path, rows_file):
    from safetensors.torch import load_file

    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    common = ["train", "sft", "--model", "tiny", "--data", str(rows_file), "--full", "--max-steps", "3",
              "--lr", "1e-3", "--quiet"]
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m",
              "agentladder", *common, "--batch-size", "1", "--strategy", "fsdp", "--out", str(tmp_path / "fsdp")]
    single = [sys.executable, "-m", "agentladder", *common, "--batch-size", "2", "--out", str(tmp_path / "one")]
    for cmd in (launch, single):
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
    a = load_file(tmp_path / "fsdp" / "model.safetensors")
    b = load_file(tmp_path / "one" / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=1e-5, rtol=1e-4, msg=k)
    assert (tmp_path / "one" / "training.png").exists()
