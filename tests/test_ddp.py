"""Data-parallel training: ``torchrun --nproc_per_node=2 -m dlhistory run ...`` with gloo on the CPU.

One run (two processes on the loopback interface) serves every test in this file.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import safetensors.torch
import torch


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ddp_run(run_env_vars, tmp_path_factory) -> dict:
    runs = tmp_path_factory.mktemp("ddp-runs")
    env = {**os.environ, **run_env_vars, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}
    for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)  # in case pytest itself runs under torchrun
    for attempt in range(2):  # a port taken between free_port() and torchrun's bind: try once more
        port = str(free_port())
        done = subprocess.run(
            [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
             "--master_addr", "127.0.0.1", "--master_port", port,
             "-m", "dlhistory", "run", "alexnet", "--preset", "smoke", "--runs-dir", str(runs),
             "--no-progress", "--precision", "fp32", "--evals", "2"],
            env=env, capture_output=True, text=True, timeout=300)
        if done.returncode == 0 or "address already in use" not in done.stderr.lower() or attempt:
            break
    run_dirs = sorted(p.parent for p in runs.glob("alexnet/*/*/config.json"))
    return {"process": done, "runs": runs, "run_dirs": run_dirs}


def test_two_processes_train_to_completion(ddp_run):
    done = ddp_run["process"]
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    assert "Traceback" not in done.stderr


def test_exactly_one_run_directory(ddp_run):
    assert len(ddp_run["run_dirs"]) == 1, ddp_run["run_dirs"]
    run_dir = ddp_run["run_dirs"][0]
    assert run_dir.parent == ddp_run["runs"] / "alexnet" / "cnn"
    for name in ("config.json", "metrics.jsonl", "checkpoint.safetensors", "model.safetensors",
                 "result.json"):
        assert (run_dir / name).exists(), name


def test_result_records_two_processes_with_identical_parameters(ddp_run):
    (run_dir,) = ddp_run["run_dirs"]
    result = json.loads((run_dir / "result.json").read_text())
    assert result["status"] == "complete"
    assert result["world_size"] == 2
    assert result["ddp_identical_parameters"] is True
    assert json.loads((run_dir / "config.json").read_text())["world_size"] == 2
    assert result["steps"] == 8  # smoke: 512 images / global batch 64, one epoch


def test_weights_are_plain_module_weights(ddp_run):
    (run_dir,) = ddp_run["run_dirs"]
    state = safetensors.torch.load_file(run_dir / "model.safetensors")
    assert not any(k.startswith("module.") for k in state)  # unwrapped from DistributedDataParallel
    assert all(torch.isfinite(t).all() for t in state.values())


def test_metrics_are_written_once(ddp_run):
    (run_dir,) = ddp_run["run_dirs"]
    lines = (Path(run_dir) / "metrics.jsonl").read_text().splitlines()
    keys = [(r["step"], r["split"]) for r in map(json.loads, lines)]
    assert len(keys) == len(set(keys)) > 0


def test_only_the_main_process_prints_the_results(ddp_run):
    assert ddp_run["process"].stdout.count("run directory:") == 1, ddp_run["process"].stdout
