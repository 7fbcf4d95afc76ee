"""Distributed launcher environment of one node (spec 11.1, 11.3 point 3, 11.4, 15.5 item 41)."""

from __future__ import annotations

import pytest

from ansible_collections.rocm.madengine.plugins.module_utils import launchers
from ansible_collections.rocm.madengine.plugins.module_utils.errors import ConfigError
from ansible_collections.rocm.madengine.plugins.module_utils.launchers import (
    LAUNCHERS,
    NodeLayout,
    deepspeed_hostfile,
    launcher_environment,
    normalise_launcher,
    visible_devices,
)

HOSTS4 = ("gpu-a01", "gpu-a02", "gpu-b07", "gpu-b08")


def single(nproc: int = 4, **kw) -> NodeLayout:
    return NodeLayout(nnodes=1, nproc_per_node=nproc, node_rank=0, master_addr="gpu-a01", **kw)


def multi(rank: int = 2, nproc: int = 8, nnodes: int = 4, **kw) -> NodeLayout:
    kw.setdefault("hosts", HOSTS4[:nnodes])
    kw.setdefault("job_id", "81234")
    return NodeLayout(
        nnodes=nnodes, nproc_per_node=nproc, node_rank=rank, master_addr="gpu-a01", master_port=29611, **kw
    )


COMMON = {
    "MASTER_ADDR",
    "MASTER_PORT",
    "NNODES",
    "NODE_RANK",
    "RANK",
    "GPUS_PER_NODE",
    "NPROC_PER_NODE",
    "WORLD_SIZE",
    "MAD_LAUNCHER_TYPE",
    "MAD_TOTAL_NODES",
    "MAD_NODE_RANK",
    "MAD_MULTI_NODE_RUNNER",
}

# --- normalisation -----------------------------------------------------------------------------------


def test_canonical_names():
    assert LAUNCHERS == (
        "docker",
        "torchrun",
        "torchtitan",
        "deepspeed",
        "megatron",
        "primus",
        "vllm",
        "sglang",
        "sglang-disagg",
        "slurm_multi",
    )


@pytest.mark.parametrize(
    "given, canonical",
    [
        (None, "docker"),
        ("", "docker"),
        ("   ", "docker"),
        ("docker", "docker"),
        ("native", "docker"),
        ("local", "docker"),
        ("LOCAL", "docker"),
        ("torchrun", "torchrun"),
        ("TorchRun", "torchrun"),
        (" torchrun ", "torchrun"),
        ("torchtitan", "torchtitan"),
        ("deepspeed", "deepspeed"),
        ("DeepSpeed", "deepspeed"),
        # the original turned `megatron` into `docker` (15.5 item 41): it must stay megatron
        ("megatron", "megatron"),
        ("Megatron", "megatron"),
        ("megatron-lm", "megatron"),
        ("megatron_lm", "megatron"),
        ("Megatron-LM", "megatron"),
        ("primus", "primus"),
        ("vllm", "vllm"),
        ("vLLM", "vllm"),
        ("sglang", "sglang"),
        ("sglang-disagg", "sglang-disagg"),
        ("sglang_disagg", "sglang-disagg"),
        ("SGLang_Disagg", "sglang-disagg"),
        ("slurm_multi", "slurm_multi"),
        ("slurm-multi", "slurm_multi"),
        ("SLURM-MULTI", "slurm_multi"),
    ],
)
def test_normalise_launcher(given, canonical):
    assert normalise_launcher(given) == canonical


@pytest.mark.parametrize("name", LAUNCHERS)
def test_canonical_names_are_fixed_points(name):
    assert normalise_launcher(name) == name


@pytest.mark.parametrize("given", ["foo", "mpirun", "torch run", "megatronlm", "sglang-disaggregated", "ray"])
def test_unknown_launcher_is_a_config_error(given):
    with pytest.raises(ConfigError) as info:
        normalise_launcher(given)
    assert info.value.msg == (
        f"distributed.launcher '{given}' is unknown; known: docker, torchrun, torchtitan, deepspeed, megatron,"
        " primus, vllm, sglang, sglang-disagg, slurm_multi"
    )
    assert "\n" not in info.value.msg


def test_non_string_launcher_is_a_config_error():
    with pytest.raises(ConfigError, match="distributed.launcher must be a string"):
        normalise_launcher(3)  # type: ignore[arg-type]


def test_unknown_launcher_fails_launcher_environment():
    with pytest.raises(ConfigError, match="'horovod' is unknown"):
        launcher_environment("horovod", single())


# --- common variables --------------------------------------------------------------------------------


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_common_variables_multi_node(launcher):
    layout = multi(rank=2, nproc=8, nnodes=4)
    env = launcher_environment(launcher, layout, {"sglang_disagg": {}}, model_name="m")
    assert COMMON <= set(env)
    assert env["MASTER_ADDR"] == "gpu-a01"
    assert env["MASTER_PORT"] == "29611"
    assert env["NNODES"] == env["MAD_TOTAL_NODES"] == "4"
    assert env["NODE_RANK"] == env["RANK"] == env["MAD_NODE_RANK"] == "2"
    assert env["GPUS_PER_NODE"] == env["NPROC_PER_NODE"] == "8"
    assert env["WORLD_SIZE"] == "32"  # GPU processes: 4 nodes x 8
    assert env["MAD_LAUNCHER_TYPE"] == launcher
    assert all(isinstance(v, str) for v in env.values())


@pytest.mark.parametrize("launcher", [n for n in LAUNCHERS if n != "sglang-disagg"])
def test_common_variables_single_node(launcher):
    env = launcher_environment(launcher, single(nproc=2))
    assert COMMON <= set(env)
    assert env["MASTER_ADDR"] == "gpu-a01"
    assert env["MASTER_PORT"] == "29500"
    assert env["NNODES"] == env["MAD_TOTAL_NODES"] == "1"
    assert env["NODE_RANK"] == env["RANK"] == env["MAD_NODE_RANK"] == "0"
    assert env["GPUS_PER_NODE"] == env["NPROC_PER_NODE"] == env["WORLD_SIZE"] == "2"
    assert env["MAD_LAUNCHER_TYPE"] == launcher


def test_alias_is_reported_by_its_canonical_name():
    assert launcher_environment("Megatron-LM", single())["MAD_LAUNCHER_TYPE"] == "megatron"
    assert launcher_environment(None, single())["MAD_LAUNCHER_TYPE"] == "docker"  # type: ignore[arg-type]


@pytest.mark.parametrize("launcher", ["docker", "slurm_multi", "native", "slurm-multi", ""])
@pytest.mark.parametrize("layout", [single(nproc=3), multi(rank=1)], ids=["single", "multi"])
def test_docker_and_slurm_multi_get_only_the_common_variables(launcher, layout):
    env = launcher_environment(launcher, layout)
    assert set(env) == COMMON
    assert env["MAD_MULTI_NODE_RUNNER"] == ""


# --- torchrun family ---------------------------------------------------------------------------------


@pytest.mark.parametrize("launcher", ["torchrun", "torchtitan", "megatron"])
@pytest.mark.parametrize("nproc", [1, 4, 8])
def test_torchrun_runner_single_node(launcher, nproc):
    env = launcher_environment(launcher, single(nproc=nproc))
    assert env["MAD_MULTI_NODE_RUNNER"] == f"torchrun --standalone --nproc_per_node={nproc}"


@pytest.mark.parametrize("launcher", ["torchrun", "torchtitan", "megatron"])
@pytest.mark.parametrize("rank", [0, 1, 3])
def test_torchrun_runner_multi_node_has_the_actual_values(launcher, rank):
    env = launcher_environment(launcher, multi(rank=rank, nproc=8, nnodes=4))
    assert env["MAD_MULTI_NODE_RUNNER"] == (
        f"torchrun --nnodes=4 --nproc_per_node=8 --node_rank={rank} --master_addr=gpu-a01 --master_port=29611"
    )
    assert "${" not in env["MAD_MULTI_NODE_RUNNER"]


@pytest.mark.parametrize("layout", [single(nproc=4), multi()], ids=["single", "multi"])
def test_torchrun_has_no_extra_variables(layout):
    assert set(launcher_environment("torchrun", layout)) == COMMON


def test_megatron_single_node():
    env = launcher_environment("megatron", single(nproc=4))
    assert env["TENSOR_MODEL_PARALLEL_SIZE"] == "4"
    assert env["PIPELINE_MODEL_PARALLEL_SIZE"] == "1"
    assert env["CONTEXT_PARALLEL_SIZE"] == "1"
    assert set(env) == COMMON | {"TENSOR_MODEL_PARALLEL_SIZE", "PIPELINE_MODEL_PARALLEL_SIZE", "CONTEXT_PARALLEL_SIZE"}


@pytest.mark.parametrize("nproc, tp", [(1, "1"), (8, "8"), (16, "8")])
def test_megatron_single_node_tensor_parallel_is_capped_at_8(nproc, tp):
    assert launcher_environment("megatron-lm", single(nproc=nproc))["TENSOR_MODEL_PARALLEL_SIZE"] == tp


def test_megatron_multi_node():
    env = launcher_environment("megatron", multi(rank=3, nproc=16, nnodes=4))
    assert env["TENSOR_MODEL_PARALLEL_SIZE"] == "16"  # not capped on multi node
    assert env["PIPELINE_MODEL_PARALLEL_SIZE"] == "4"
    assert env["CONTEXT_PARALLEL_SIZE"] == "1"
    assert env["MAD_MULTI_NODE_RUNNER"].startswith("torchrun --nnodes=4 --nproc_per_node=16 --node_rank=3 ")


def test_torchtitan_single_node():
    env = launcher_environment("torchtitan", single(nproc=4))
    assert env["TORCHTITAN_TENSOR_PARALLEL_SIZE"] == "4"
    assert env["TORCHTITAN_PIPELINE_PARALLEL_SIZE"] == "1"
    assert "TORCHTITAN_FSDP_ENABLED" not in env
    assert "TORCHTITAN_CONTEXT_PARALLEL_SIZE" not in env


def test_torchtitan_multi_node():
    env = launcher_environment("torchtitan", multi(rank=1, nproc=8, nnodes=2))
    assert env["TORCHTITAN_TENSOR_PARALLEL_SIZE"] == "8"
    assert env["TORCHTITAN_PIPELINE_PARALLEL_SIZE"] == "2"
    assert env["TORCHTITAN_FSDP_ENABLED"] == "1"
    assert env["TORCHTITAN_CONTEXT_PARALLEL_SIZE"] == "1"
    assert env["MAD_MULTI_NODE_RUNNER"] == (
        "torchrun --nnodes=2 --nproc_per_node=8 --node_rank=1 --master_addr=gpu-a01 --master_port=29611"
    )


# --- deepspeed ---------------------------------------------------------------------------------------


def test_deepspeed_single_node():
    env = launcher_environment("deepspeed", single(nproc=6))
    assert env["MAD_MULTI_NODE_RUNNER"] == "deepspeed --num_gpus=6"
    assert set(env) == COMMON


def test_deepspeed_single_node_needs_no_hosts():
    assert launcher_environment("deepspeed", single(nproc=2, hosts=()))["MAD_MULTI_NODE_RUNNER"] == (
        "deepspeed --num_gpus=2"
    )


@pytest.mark.parametrize("rank", [0, 2])
def test_deepspeed_multi_node(rank):
    env = launcher_environment("deepspeed", multi(rank=rank, job_id="4711"))
    assert env["MAD_MULTI_NODE_RUNNER"] == (
        "deepspeed --hostfile=/tmp/deepspeed_hostfile_4711.txt --master_addr=gpu-a01 --master_port=29611"
    )


def test_deepspeed_multi_node_without_job_id_uses_local():
    env = launcher_environment("deepspeed", multi(job_id=""))
    assert "--hostfile=/tmp/deepspeed_hostfile_local.txt " in env["MAD_MULTI_NODE_RUNNER"]


def test_deepspeed_multi_node_without_hosts_is_a_config_error():
    with pytest.raises(ConfigError, match="deepspeed on 4 nodes needs the node host names"):
        launcher_environment("deepspeed", multi(hosts=()))


def test_deepspeed_hostfile_content():
    assert deepspeed_hostfile(multi(nproc=8, nnodes=3)) == ("gpu-a01 slots=8\ngpu-a02 slots=8\ngpu-b07 slots=8\n")


def test_deepspeed_hostfile_single_host():
    assert deepspeed_hostfile(single(nproc=2, hosts=("n1",))) == "n1 slots=2\n"


def test_deepspeed_hostfile_needs_hosts():
    with pytest.raises(ConfigError, match="hosts"):
        deepspeed_hostfile(multi(hosts=()))


def test_deepspeed_hostfile_path():
    assert launchers.deepspeed_hostfile_path(multi(job_id="99")) == "/tmp/deepspeed_hostfile_99.txt"


# --- vllm / sglang -----------------------------------------------------------------------------------


def test_vllm_single_node():
    env = launcher_environment("vllm", single(nproc=4))
    assert env["VLLM_TENSOR_PARALLEL_SIZE"] == "4"
    assert env["VLLM_PIPELINE_PARALLEL_SIZE"] == "1"
    assert env["VLLM_DISTRIBUTED_BACKEND"] == "auto"
    assert env["MAD_MULTI_NODE_RUNNER"] == ""


def test_vllm_multi_node():
    env = launcher_environment("vllm", multi(nproc=8, nnodes=2, rank=1))
    assert env["VLLM_TENSOR_PARALLEL_SIZE"] == "8"
    assert env["VLLM_PIPELINE_PARALLEL_SIZE"] == "1"
    assert env["VLLM_DISTRIBUTED_BACKEND"] == "none"
    assert env["MAD_MULTI_NODE_RUNNER"] == ""


@pytest.mark.parametrize("layout", [single(nproc=4), multi(nproc=4, nnodes=2, rank=1)], ids=["single", "multi"])
def test_sglang(layout):
    env = launcher_environment("sglang", layout)
    assert env["SGLANG_TENSOR_PARALLEL_SIZE"] == "4"
    assert env["SGLANG_PIPELINE_PARALLEL_SIZE"] == "1"
    assert env["MAD_MULTI_NODE_RUNNER"] == ""
    assert set(env) == COMMON | {"SGLANG_TENSOR_PARALLEL_SIZE", "SGLANG_PIPELINE_PARALLEL_SIZE"}


# --- sglang-disagg -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "nnodes, prefill, decode",
    [(3, 1, 1), (4, 1, 2), (5, 1, 3), (6, 2, 3), (8, 2, 5), (11, 4, 6), (16, 6, 9)],
)
def test_sglang_disagg_default_split(nnodes, prefill, decode):
    assert launchers.sglang_disagg_split(nnodes) == (prefill, decode)
    assert prefill + decode + 1 == nnodes


@pytest.mark.parametrize("cfg", [None, {}, {"sglang_disagg": None}, {"sglang_disagg": {}}])
def test_sglang_disagg_split_without_config_is_the_default(cfg):
    assert launchers.sglang_disagg_split(6, cfg) == (2, 3)


@pytest.mark.parametrize("nnodes, prefill, decode", [(3, 1, 1), (6, 1, 4), (6, 4, 1), (10, 5, 4)])
def test_sglang_disagg_custom_split(nnodes, prefill, decode):
    cfg = {"sglang_disagg": {"prefill_nodes": prefill, "decode_nodes": decode}}
    assert launchers.sglang_disagg_split(nnodes, cfg) == (prefill, decode)


def test_sglang_disagg_custom_split_accepts_digit_strings():
    assert launchers.sglang_disagg_split(5, {"sglang_disagg": {"prefill_nodes": "2", "decode_nodes": "2"}}) == (2, 2)


@pytest.mark.parametrize(
    "nnodes, section, message",
    [
        (6, {"prefill_nodes": 0, "decode_nodes": 5}, "distributed.sglang_disagg.prefill_nodes must be an integer >= 1"),
        (6, {"prefill_nodes": 5, "decode_nodes": 0}, "distributed.sglang_disagg.decode_nodes must be an integer >= 1"),
        (6, {"prefill_nodes": -1, "decode_nodes": 6}, "prefill_nodes must be an integer >= 1, got -1"),
        (6, {"prefill_nodes": True, "decode_nodes": 4}, "prefill_nodes must be an integer >= 1, got True"),
        (6, {"prefill_nodes": "x", "decode_nodes": 4}, "prefill_nodes must be an integer >= 1, got 'x'"),
        (6, {"prefill_nodes": 2, "decode_nodes": 2}, r"prefill_nodes \(2\) \+ decode_nodes \(2\) \+ 1 proxy"),
        (6, {"prefill_nodes": 3, "decode_nodes": 3}, r"must equal distributed.nnodes \(6\)"),
        (6, {"prefill_nodes": 2}, "sets prefill_nodes only"),
        (6, {"decode_nodes": 2}, "sets decode_nodes only"),
    ],
)
def test_sglang_disagg_bad_custom_split(nnodes, section, message):
    with pytest.raises(ConfigError, match=message):
        launchers.sglang_disagg_split(nnodes, {"sglang_disagg": section})


@pytest.mark.parametrize("nnodes", [1, 2])
def test_sglang_disagg_needs_three_nodes(nnodes):
    layout = multi(nnodes=nnodes, rank=0) if nnodes > 1 else single(hosts=("gpu-a01",))
    with pytest.raises(ConfigError) as info:
        launcher_environment("sglang_disagg", layout)
    assert info.value.msg == (
        f"distributed.nnodes must be >= 3 for sglang-disagg (1 proxy + 1 prefill + 1 decode), got {nnodes}"
    )


def test_sglang_disagg_section_must_be_an_object():
    with pytest.raises(ConfigError, match="distributed.sglang_disagg must be an object, got list"):
        launchers.sglang_disagg_split(4, {"sglang_disagg": [1, 2]})


@pytest.mark.parametrize("rank", [0, 1, 3])
def test_sglang_disagg_environment(rank):
    env = launcher_environment("sglang-disagg", multi(rank=rank, nproc=8, nnodes=4))
    assert env["SGLANG_DISAGG_MODE"] == "enabled"
    assert env["SGLANG_DISAGG_PREFILL_NODES"] == "1"  # max(1, 3*2//5)
    assert env["SGLANG_DISAGG_DECODE_NODES"] == "2"
    assert env["SGLANG_DISAGG_TOTAL_NODES"] == "4"
    assert env["SGLANG_TP_SIZE"] == "8"
    assert env["SGLANG_NODE_IPS"] == "gpu-a01,gpu-a02,gpu-b07,gpu-b08"
    assert env["SGLANG_NODE_RANK"] == str(rank)
    assert env["MASTER_PORT"] == "29611"
    assert env["MAD_MULTI_NODE_RUNNER"] == ""


def test_sglang_disagg_environment_custom_split():
    hosts = ("10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5")
    layout = NodeLayout(nnodes=5, nproc_per_node=4, node_rank=4, master_addr="10.0.0.1", hosts=hosts)
    env = launcher_environment("sglang-disagg", layout, {"sglang_disagg": {"prefill_nodes": 3, "decode_nodes": 1}})
    assert (env["SGLANG_DISAGG_PREFILL_NODES"], env["SGLANG_DISAGG_DECODE_NODES"]) == ("3", "1")
    assert env["SGLANG_NODE_IPS"] == "10.0.0.1,10.0.0.2,10.0.0.3,10.0.0.4,10.0.0.5"
    assert env["SGLANG_TP_SIZE"] == "4"
    assert env["SGLANG_NODE_RANK"] == "4"


def test_sglang_disagg_needs_hosts():
    with pytest.raises(ConfigError, match="sglang-disagg needs the node addresses"):
        launcher_environment("sglang-disagg", multi(hosts=()))


def test_sglang_disagg_bad_split_fails_launcher_environment():
    cfg = {"sglang_disagg": {"prefill_nodes": 1, "decode_nodes": 1}}
    with pytest.raises(ConfigError, match=r"must equal distributed.nnodes \(4\)"):
        launcher_environment("sglang-disagg", multi(nnodes=4), cfg)


# --- primus ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "model, backend",
    [
        ("primus_pretrain/torchtitan_MI300X_qwen3_4B-pretrain", "torchtitan"),
        ("primus_pretrain/maxtext_MI355X_llama3_8B", "MaxText"),
        ("primus_pretrain/MaxText_MI355X_llama3_8B", "MaxText"),
        ("primus_pretrain/megatron_MI300X_llama2_7B", "megatron"),
        ("primus_pretrain/megatron_bridge_MI300X_llama3_70B", "megatron_bridge"),
        ("primus_pretrain/moe_package_MI300X_deepseek", "moe_package"),
        ("primus_pretrain/torchtitan", "torchtitan"),
        ("primus_pretrain/jax_MI300X_x", None),
        ("primus_pretrain/megatronx_MI300X", None),
        ("primus_pretrain/", None),
        ("pyt_primus/torchtitan_MI300X_x", None),
        ("torchtitan_MI300X_x", None),
        ("", None),
    ],
)
def test_infer_primus_backend(model, backend):
    assert launchers.infer_primus_backend(model) == backend


def test_primus_defaults():
    env = launcher_environment("primus", multi())
    assert env["PRIMUS_CONFIG_PATH"] == "exp_pretrain.yaml"
    assert "PRIMUS_CLI_EXTRA" not in env
    assert "BACKEND" not in env
    assert env["MAD_MULTI_NODE_RUNNER"] == ""
    assert set(env) == COMMON | {"PRIMUS_CONFIG_PATH"}


@pytest.mark.parametrize("layout", [single(nproc=8), multi(rank=1)], ids=["single", "multi"])
def test_primus_config(layout):
    cfg = {
        "primus": {
            "config_path": "examples/megatron/configs/llama2_7B-pretrain.yaml",
            "cli_extra": "--train_iters 10",
            "backend": "megatron",
        }
    }
    env = launcher_environment("primus", layout, cfg, model_name="primus_pretrain/torchtitan_MI300X_x")
    assert env["PRIMUS_CONFIG_PATH"] == "examples/megatron/configs/llama2_7B-pretrain.yaml"
    assert env["PRIMUS_CLI_EXTRA"] == "--train_iters 10"
    assert env["BACKEND"] == "megatron"  # explicit wins over the model name


def test_primus_backend_inferred_from_model_name():
    env = launcher_environment(
        "primus", single(), {"primus": {"backend": "  "}}, model_name="primus_pretrain/maxtext_A_b"
    )
    assert env["BACKEND"] == "MaxText"


@pytest.mark.parametrize("cfg", [{"primus": {"config_path": ""}}, {"primus": {"config_path": None}}, {"primus": None}])
def test_primus_empty_config_path_is_the_default(cfg):
    assert launcher_environment("primus", single(), cfg)["PRIMUS_CONFIG_PATH"] == "exp_pretrain.yaml"


def test_primus_blank_cli_extra_is_left_out():
    assert "PRIMUS_CLI_EXTRA" not in launcher_environment("primus", single(), {"primus": {"cli_extra": "  "}})


@pytest.mark.parametrize(
    "cfg, message",
    [
        ({"primus": "exp.yaml"}, "distributed.primus must be an object, got str"),
        ({"primus": {"config_path": 3}}, "distributed.primus.config_path must be a string, got int"),
        ({"primus": {"cli_extra": ["--a"]}}, "distributed.primus.cli_extra must be a string, got list"),
        ({"primus": {"backend": 1}}, "distributed.primus.backend must be a string, got int"),
    ],
)
def test_primus_bad_config(cfg, message):
    with pytest.raises(ConfigError) as info:
        launcher_environment("primus", single(), cfg)
    assert info.value.msg == message


def test_distributed_must_be_an_object():
    with pytest.raises(ConfigError, match="distributed must be an object, got list"):
        launcher_environment("torchrun", single(), ["primus"])  # type: ignore[arg-type]


def test_primus_section_ignored_by_other_launchers():
    env = launcher_environment("torchrun", single(), {"primus": {"config_path": "x.yaml"}})
    assert "PRIMUS_CONFIG_PATH" not in env


# --- layout validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"nnodes": 0}, "distributed.nnodes must be an integer >= 1, got 0"),
        ({"nnodes": "2"}, "distributed.nnodes must be an integer >= 1, got '2'"),
        ({"nnodes": True}, "distributed.nnodes must be an integer >= 1, got True"),
        ({"nproc_per_node": 0}, "distributed.nproc_per_node must be an integer >= 1, got 0"),
        ({"master_port": 0}, "distributed.port must be an integer >= 1 and <= 65535, got 0"),
        ({"master_port": 65536}, "distributed.port must be an integer >= 1 and <= 65535, got 65536"),
        ({"node_rank": -1}, "node_rank must be an integer in 0..1, got -1"),
        ({"node_rank": 2}, "node_rank must be an integer in 0..1, got 2"),
        ({"master_addr": ""}, "master_addr must be a non-empty host name, got ''"),
        ({"hosts": ("a",)}, "hosts lists 1 nodes but distributed.nnodes is 2"),
        ({"hosts": ("a", "b", "c")}, "hosts lists 3 nodes but distributed.nnodes is 2"),
        ({"hosts": ("a", "")}, "hosts must be non-empty host names, got ['a', '']"),
    ],
)
def test_bad_layout_is_a_config_error(kwargs, message):
    base = {"nnodes": 2, "nproc_per_node": 8, "node_rank": 0, "master_addr": "n0", "hosts": ("n0", "n1")}
    base.update(kwargs)
    with pytest.raises(ConfigError) as info:
        launcher_environment("torchrun", NodeLayout(**base))
    assert info.value.msg == message


@pytest.mark.parametrize("port", [1, 65535])
def test_port_bounds_are_inclusive(port):
    assert launcher_environment("docker", single(master_port=port))["MASTER_PORT"] == str(port)


def test_last_rank_is_valid():
    assert launcher_environment("torchrun", multi(rank=3, nnodes=4))["NODE_RANK"] == "3"


# --- visible devices ---------------------------------------------------------------------------------


@pytest.mark.parametrize("launcher", ["vllm", "sglang", "VLLM"])
def test_ray_launchers_on_amd_get_only_hip(launcher):
    assert visible_devices(launcher, "AMD", 4) == {"HIP_VISIBLE_DEVICES": "0,1,2,3"}
    assert launchers.visible_devices_unset(launcher, "AMD", 4) == [
        "RAY_EXPERIMENTAL_NOSET_HIP_VISIBLE_DEVICES",
        "ROCR_VISIBLE_DEVICES",
        "CUDA_VISIBLE_DEVICES",
    ]


@pytest.mark.parametrize("launcher", ["vllm", "sglang"])
def test_ray_launchers_on_nvidia_get_only_cuda(launcher):
    assert visible_devices(launcher, "NVIDIA", 2) == {"CUDA_VISIBLE_DEVICES": "0,1"}
    assert launchers.visible_devices_unset(launcher, "nvidia", 2) == ["HIP_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES"]


@pytest.mark.parametrize(
    "launcher", ["docker", "torchrun", "torchtitan", "deepspeed", "megatron", "primus", "sglang-disagg", "slurm_multi"]
)
@pytest.mark.parametrize("vendor", ["AMD", "NVIDIA", "amd"])
def test_other_launchers_get_all_three(launcher, vendor):
    devices = "0,1,2,3,4,5,6,7"
    assert visible_devices(launcher, vendor, 8) == {
        "HIP_VISIBLE_DEVICES": devices,
        "ROCR_VISIBLE_DEVICES": devices,
        "CUDA_VISIBLE_DEVICES": devices,
    }
    assert launchers.visible_devices_unset(launcher, vendor, 8) == []


def test_single_gpu_list():
    assert visible_devices("torchrun", "AMD", 1)["HIP_VISIBLE_DEVICES"] == "0"


@pytest.mark.parametrize("launcher", ["vllm", "torchrun", "docker"])
@pytest.mark.parametrize("vendor, nproc", [("CPU", 8), ("cpu", 2), ("AMD", 0), ("NVIDIA", 0)])
def test_cpu_or_no_gpus_sets_nothing(launcher, vendor, nproc):
    assert visible_devices(launcher, vendor, nproc) == {}
    assert launchers.visible_devices_unset(launcher, vendor, nproc) == []


def test_visible_devices_errors():
    with pytest.raises(ConfigError, match="gpu_vendor 'INTEL' is unknown; known: AMD, NVIDIA, CPU"):
        visible_devices("torchrun", "INTEL", 2)
    with pytest.raises(ConfigError, match="distributed.nproc_per_node must be an integer >= 0, got -1"):
        visible_devices("torchrun", "AMD", -1)
    with pytest.raises(ConfigError, match="'foo' is unknown"):
        visible_devices("foo", "AMD", 2)
