"""Pure helpers of the run phase: timeouts, GPU count, launcher, perf row skeleton (spec 6.5, 6.7, 6.8, 8.2)."""

from __future__ import annotations

import socket
from types import SimpleNamespace

import pytest

from ansible_collections.rocm.madengine.plugins.module_utils import perfcsv, run
from ansible_collections.rocm.madengine.plugins.module_utils.errors import ConfigError

# --- effective_timeout -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cli,model,expected",
    [
        (None, {"timeout": 360}, 360),
        (None, {}, 7200),
        (None, {"timeout": None}, 7200),
        (None, {"timeout": ""}, 7200),
        (7200, {"timeout": 360}, 7200),  # an explicit --timeout 7200 is not the default (fix 15.3.24)
        (120, {"timeout": 360}, 120),
        (120, {}, 120),
        (0, {"timeout": 360}, None),
        (0, {}, None),
        (-1, {"timeout": 360}, 360),  # -1 is the CLI default
        (-1, {}, 7200),
        (None, {"timeout": "0"}, 7200),
        (None, {"timeout": 0}, 7200),
        (None, {"timeout": -1}, 7200),
        (None, {"timeout": "-1"}, 7200),
        (None, {"timeout": "360"}, 360),  # a string no longer crashes
        (None, {"timeout": " 90 "}, 90),
    ],
)
def test_effective_timeout(cli, model, expected):
    assert run.effective_timeout(cli, model) == expected


@pytest.mark.parametrize("value", ["soon", "1.5", "12s"])
def test_effective_timeout_bad_model_value(value):
    with pytest.raises(ConfigError) as info:
        run.effective_timeout(None, {"name": "slow", "timeout": value})
    assert "'slow'" in info.value.msg
    assert repr(value) in info.value.msg


def test_effective_timeout_bad_model_value_ignored_when_cli_given():
    assert run.effective_timeout(60, {"timeout": "soon"}) == 60


@pytest.mark.parametrize("cli", [-2, -100])
def test_effective_timeout_below_minus_one(cli):
    with pytest.raises(ConfigError) as info:
        run.effective_timeout(cli, {})
    assert str(cli) in info.value.msg
    assert info.value.exit_code == 4


# --- requested_gpus ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "model,ctx,expected",
    [
        ({}, {}, 1),
        ({"n_gpus": "2"}, {}, 2),
        ({"n_gpus": 4}, {}, 4),
        ({"n_gpus": "-1"}, {}, -1),
        ({"n_gpus": "2", "gpus_per_node": "4"}, {}, 4),  # gpus_per_node beats n_gpus
        ({"n_gpus": "2", "gpu_count": 3}, {}, 3),
        ({"num_gpus": 5, "ngpus": 6}, {}, 5),
        ({"ngpus": 6}, {}, 6),
        ({"n_gpus": "", "ngpus": 6}, {}, 6),
        ({"n_gpus": "2", "gpus_per_node": 4}, {"n_gpus": "8"}, 8),  # the context override wins
        ({"n_gpus": "2"}, {"deployment_config": {"gpu_count": 3}}, 3),
        ({"n_gpus": "2"}, {"num_gpus": 1, "ngpus": 7}, 1),
    ],
)
def test_requested_gpus(model, ctx, expected):
    assert run.requested_gpus(model, ctx) == expected


def test_requested_gpus_bad_value():
    with pytest.raises(ConfigError) as info:
        run.requested_gpus({"name": "m", "n_gpus": "all"}, {})
    assert "'m'" in info.value.msg
    assert "n_gpus" in info.value.msg


# --- launcher and MAD_MULTI_NODE_RUNNER --------------------------------------------------------------


def test_launcher_precedence(monkeypatch):
    monkeypatch.delenv("MAD_LAUNCHER", raising=False)
    model = {"distributed": {"launcher": "deepspeed"}}
    assert run.launcher({}, {}) == "docker"
    assert run.launcher(model, {}) == "deepspeed"
    assert run.launcher(model, {"distributed": {"launcher": "vllm"}}) == "vllm"
    monkeypatch.setenv("MAD_LAUNCHER", "torchtitan")
    assert run.launcher({}, {}) == "torchtitan"
    assert run.launcher(model, {}) == "deepspeed"


@pytest.mark.parametrize(
    "name,expected",
    [
        ("torchrun", "torchrun --standalone --nproc_per_node=4"),
        ("megatron", "torchrun --standalone --nproc_per_node=4"),
        ("megatron-lm", "torchrun --standalone --nproc_per_node=4"),
        ("torchtitan", "torchrun --standalone --nproc_per_node=4"),
        ("docker", "torchrun --standalone --nproc_per_node=4"),
        ("native", "torchrun --standalone --nproc_per_node=4"),
        ("", "torchrun --standalone --nproc_per_node=4"),
        ("deepspeed", "deepspeed --num_gpus=4"),
        ("vllm", ""),
        ("sglang", ""),
        ("sglang-disagg", ""),
        ("sglang_disagg", ""),
        ("primus", ""),
    ],
)
def test_multi_node_runner(name, expected):
    assert run.multi_node_runner(name, 4) == expected


def test_multi_node_runner_uses_the_gpu_count():
    assert run.multi_node_runner("torchrun", 1) == "torchrun --standalone --nproc_per_node=1"
    assert run.multi_node_runner("deepspeed", 8) == "deepspeed --num_gpus=8"


# --- base_row ----------------------------------------------------------------------------------------


@pytest.fixture
def host():
    return SimpleNamespace(gpu_architecture="gfx942", gpu_vendor="AMD", ngpus=8)


def test_base_row_has_exactly_our_columns(host, monkeypatch):
    monkeypatch.delenv("pipeline", raising=False)
    monkeypatch.delenv("BUILD_NUMBER", raising=False)
    monkeypatch.delenv("MAD_DEPLOYMENT_TYPE", raising=False)
    monkeypatch.delenv("MAD_LAUNCHER", raising=False)
    model = {
        "name": "dummy2/model1",
        "training_precision": "fp16",
        "args": " --batch-size 32",
        "tags": ["dummies", "perf"],
        "additional_docker_run_options": "--shm-size 1G",
    }
    record = {
        "model": "ignored",
        "dockerfile": "docker/dummy.ubuntu.amd.Dockerfile",
        "base_docker": "rocm/pytorch",
        "docker_sha": "sha256:1",
        "build_duration": 12.5,
        "image_digest": "sha256:2",
    }
    row = run.base_row(model, record, host, {}, "ci-dummy2_model1_dummy.ubuntu.amd", "run1")
    assert tuple(row) == perfcsv.ALL_COLUMNS
    assert row["model"] == "dummy2/model1"
    assert row["nnodes"] == "1"
    assert row["training_precision"] == "fp16"
    assert row["pipeline"] == ""
    assert row["args"] == " --batch-size 32"
    assert row["tags"] == "dummies,perf"
    assert row["docker_file"] == "docker/dummy.ubuntu.amd.Dockerfile"
    assert row["base_docker"] == "rocm/pytorch"
    assert row["docker_sha"] == "sha256:1"
    assert row["docker_image"] == "ci-dummy2_model1_dummy.ubuntu.amd"
    assert row["machine_name"] == socket.gethostname()
    assert row["deployment_type"] == "local"
    assert row["launcher"] == "docker"
    assert row["gpu_architecture"] == "gfx942"
    assert row["relative_change"] == ""
    assert row["status"] == "FAILURE"
    assert row["build_duration"] == 12.5
    assert row["build_number"] == "0"
    assert row["additional_docker_run_options"] == "--shm-size 1G"
    assert row["image_digest"] == "sha256:2"
    assert row["run_id"] == "run1"


def test_base_row_environment_and_context(host, monkeypatch):
    monkeypatch.setenv("pipeline", "nightly")
    monkeypatch.setenv("BUILD_NUMBER", "42")
    ctx = {"docker_env_vars": {"MAD_SYSTEM_GPU_ARCHITECTURE": "gfx90a"}, "distributed": {"launcher": "deepspeed"}}
    row = run.base_row({}, {"model": "from_record"}, host, ctx, "img", "r")
    assert row["model"] == "from_record"
    assert row["pipeline"] == "nightly"
    assert row["build_number"] == "42"
    assert row["gpu_architecture"] == "gfx90a"
    assert row["launcher"] == "deepspeed"
    assert row["tags"] == ""
    assert row["args"] == ""
