"""Distributed launchers: the environment one node of a (SLURM) job exports (spec 11.1, 11.3 point 3, 11.4).

Pure functions, no I/O: the caller resolves host names, writes the DeepSpeed hostfile and renders the
variables into its job or task script.

Deliberate differences from the original (spec 15.5 item 41 and others):

* `megatron` is a launcher of its own (the original turned it into `docker`, so its environment was never
  rendered); `megatron-lm` is an alias of it.
* The launcher-specific variables are rendered for single-node jobs too (the original always gave them a plain
  torchrun runner and no vLLM/SGLang parallelism variables).
* An unknown launcher is a ConfigError instead of a silent fall-back to `docker`.
* Commands carry the actual values (`--node_rank=1 --master_addr=node1`), not `${NODE_RANK}`/`${MASTER_ADDR}`.
* `WORLD_SIZE` is the number of GPU processes of the job (nnodes * nproc_per_node), the torch meaning; the
  original exported `$SLURM_NTASKS`, the number of nodes.
* The SGLang-disaggregated node list comes from `NodeLayout.hosts` (the caller resolves them; no `getent`).
* Primus backend inference matches the longest launcher token, so `primus_pretrain/megatron_bridge_...` gives
  `megatron_bridge` (the original split at the first `_` and got `megatron`; `moe_package` was unreachable).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from .errors import ConfigError

DOCKER = "docker"
TORCHRUN = "torchrun"
TORCHTITAN = "torchtitan"
DEEPSPEED = "deepspeed"
MEGATRON = "megatron"
PRIMUS = "primus"
VLLM = "vllm"
SGLANG = "sglang"
SGLANG_DISAGG = "sglang-disagg"
SLURM_MULTI = "slurm_multi"

LAUNCHERS: Tuple[str, ...] = (
    DOCKER,
    TORCHRUN,
    TORCHTITAN,
    DEEPSPEED,
    MEGATRON,
    PRIMUS,
    VLLM,
    SGLANG,
    SGLANG_DISAGG,
    SLURM_MULTI,
)

# Lower-cased spelling with every "_" turned into "-" -> canonical name.
_ALIASES: Dict[str, str] = {
    **{name.replace("_", "-"): name for name in LAUNCHERS},
    "megatron-lm": MEGATRON,
    "native": DOCKER,
    "local": DOCKER,
}

# Launchers whose node processes are started by torchrun.
_TORCHRUN_FAMILY = (TORCHRUN, TORCHTITAN, MEGATRON)
# Launchers that start Ray workers and so need the single visibility variable of 11.3 point 3.
_RAY_LAUNCHERS = (VLLM, SGLANG)

DEFAULT_MASTER_PORT = 29500
DEFAULT_PRIMUS_CONFIG = "exp_pretrain.yaml"
DEEPSPEED_HOSTFILE = "/tmp/deepspeed_hostfile_{job_id}.txt"
PRIMUS_MODEL_PREFIX = "primus_pretrain/"
# Launcher token of a `primus_pretrain/<token>_<arch>_<config>` model name -> Primus BACKEND value.
PRIMUS_BACKENDS: Dict[str, str] = {
    "maxtext": "MaxText",
    "torchtitan": "torchtitan",
    "megatron": "megatron",
    "megatron_bridge": "megatron_bridge",
    "moe_package": "moe_package",
}
SGLANG_DISAGG_MIN_NODES = 3

GPU_VENDORS = ("AMD", "NVIDIA", "CPU")
VISIBILITY_VARS = ("HIP_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES")
RAY_NOSET_HIP = "RAY_EXPERIMENTAL_NOSET_HIP_VISIBLE_DEVICES"


def normalise_launcher(name: Optional[str]) -> str:
    """The canonical launcher name: None/"" -> docker; case, "_"/"-" and aliases folded; unknown -> ConfigError."""
    if name is None:
        return DOCKER
    if not isinstance(name, str):
        raise ConfigError(f"distributed.launcher must be a string, got {type(name).__name__}")
    key = name.strip().lower().replace("_", "-")
    if not key:
        return DOCKER
    if key not in _ALIASES:
        raise ConfigError(f"distributed.launcher '{name}' is unknown; known: {', '.join(LAUNCHERS)}")
    return _ALIASES[key]


@dataclass
class NodeLayout:
    """Where one node sits in the job. `hosts` are the node names in allocation order (rank i = hosts[i])."""

    nnodes: int
    nproc_per_node: int
    node_rank: int
    master_addr: str
    master_port: int = DEFAULT_MASTER_PORT
    job_id: str = ""
    hosts: Sequence[str] = ()


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_int(value: Any, key: str, low: int, high: Optional[int] = None) -> None:
    upper = f" and <= {high}" if high is not None else ""
    if not _is_int(value) or value < low or (high is not None and value > high):
        raise ConfigError(f"{key} must be an integer >= {low}{upper}, got {value!r}")


def validate_layout(layout: NodeLayout) -> None:
    """ConfigError unless nnodes >= 1, 0 <= node_rank < nnodes, nproc_per_node >= 1, 1 <= port <= 65535,
    master_addr is non-empty and hosts (when known) name one non-empty host per node."""
    _check_int(layout.nnodes, "distributed.nnodes", 1)
    _check_int(layout.nproc_per_node, "distributed.nproc_per_node", 1)
    _check_int(layout.master_port, "distributed.port", 1, 65535)
    if not _is_int(layout.node_rank) or not 0 <= layout.node_rank < layout.nnodes:
        raise ConfigError(f"node_rank must be an integer in 0..{layout.nnodes - 1}, got {layout.node_rank!r}")
    if not isinstance(layout.master_addr, str) or not layout.master_addr.strip():
        raise ConfigError(f"master_addr must be a non-empty host name, got {layout.master_addr!r}")
    hosts = list(layout.hosts)
    if hosts and len(hosts) != layout.nnodes:
        raise ConfigError(f"hosts lists {len(hosts)} nodes but distributed.nnodes is {layout.nnodes}")
    if any(not isinstance(h, str) or not h.strip() for h in hosts):
        raise ConfigError(f"hosts must be non-empty host names, got {hosts!r}")


def _section(distributed: Optional[Mapping[str, Any]], key: str) -> Mapping[str, Any]:
    value = (distributed or {}).get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"distributed.{key} must be an object, got {type(value).__name__}")
    return value


def _torchrun_runner(layout: NodeLayout) -> str:
    if layout.nnodes == 1:
        return f"torchrun --standalone --nproc_per_node={layout.nproc_per_node}"
    return (
        f"torchrun --nnodes={layout.nnodes} --nproc_per_node={layout.nproc_per_node}"
        f" --node_rank={layout.node_rank} --master_addr={layout.master_addr} --master_port={layout.master_port}"
    )


def deepspeed_hostfile_path(layout: NodeLayout) -> str:
    """`/tmp/deepspeed_hostfile_<job id>.txt` (`local` when the job id is unknown)."""
    return DEEPSPEED_HOSTFILE.format(job_id=layout.job_id or "local")


def deepspeed_hostfile(layout: NodeLayout) -> str:
    """The DeepSpeed hostfile content: `<host> slots=<nproc_per_node>` per node; the caller writes it."""
    validate_layout(layout)
    if not layout.hosts:
        raise ConfigError("deepspeed needs the node host names (hosts) to write its hostfile")
    return "".join(f"{host.strip()} slots={layout.nproc_per_node}\n" for host in layout.hosts)


def _deepspeed_runner(layout: NodeLayout) -> str:
    if layout.nnodes == 1:
        return f"deepspeed --num_gpus={layout.nproc_per_node}"
    if not layout.hosts:
        raise ConfigError(f"deepspeed on {layout.nnodes} nodes needs the node host names (hosts) for its hostfile")
    return (
        f"deepspeed --hostfile={deepspeed_hostfile_path(layout)}"
        f" --master_addr={layout.master_addr} --master_port={layout.master_port}"
    )


def _node_count(section: Mapping[str, Any], key: str) -> int:
    value = section[key]
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not _is_int(value) or value < 1:
        raise ConfigError(f"distributed.sglang_disagg.{key} must be an integer >= 1, got {value!r}")
    return int(value)


def sglang_disagg_split(nnodes: int, distributed: Optional[Mapping[str, Any]] = None) -> Tuple[int, int]:
    """(prefill nodes, decode nodes) of an SGLang disaggregated job: node 0 is the proxy, 1..prefill prefill,
    the rest decode. Explicit `distributed.sglang_disagg.{prefill_nodes, decode_nodes}` (both, >= 1 each,
    prefill + decode + 1 == nnodes) else prefill = max(1, (nnodes-1)*2//5), decode = nnodes-1-prefill."""
    if not _is_int(nnodes) or nnodes < SGLANG_DISAGG_MIN_NODES:
        raise ConfigError(
            f"distributed.nnodes must be >= {SGLANG_DISAGG_MIN_NODES} for sglang-disagg"
            f" (1 proxy + 1 prefill + 1 decode), got {nnodes!r}"
        )
    section = _section(distributed, "sglang_disagg")
    given = [key for key in ("prefill_nodes", "decode_nodes") if section.get(key) is not None]
    if not given:
        prefill = max(1, (nnodes - 1) * 2 // 5)
        return prefill, nnodes - 1 - prefill
    if len(given) == 1:
        raise ConfigError(f"distributed.sglang_disagg sets {given[0]} only; set both prefill_nodes and decode_nodes")
    prefill, decode = _node_count(section, "prefill_nodes"), _node_count(section, "decode_nodes")
    if prefill + decode + 1 != nnodes:
        raise ConfigError(
            f"distributed.sglang_disagg prefill_nodes ({prefill}) + decode_nodes ({decode}) + 1 proxy"
            f" must equal distributed.nnodes ({nnodes})"
        )
    return prefill, decode


def infer_primus_backend(model_name: str) -> Optional[str]:
    """BACKEND for a `primus_pretrain/<launcher>_<arch>_<config>` model name; None when not of that form or the
    launcher token is unknown. The longest token wins (`megatron_bridge_x` -> megatron_bridge, not megatron)."""
    name = (model_name or "").strip()
    if not name.startswith(PRIMUS_MODEL_PREFIX):
        return None
    rest = name[len(PRIMUS_MODEL_PREFIX) :].strip().lower()
    for token in sorted(PRIMUS_BACKENDS, key=len, reverse=True):
        if rest == token or rest.startswith(token + "_"):
            return PRIMUS_BACKENDS[token]
    return None


def _primus_string(section: Mapping[str, Any], key: str) -> str:
    value = section.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ConfigError(f"distributed.primus.{key} must be a string, got {type(value).__name__}")
    return value.strip()


def _primus_env(distributed: Optional[Mapping[str, Any]], model_name: str) -> Dict[str, str]:
    section = _section(distributed, "primus")
    env = {"PRIMUS_CONFIG_PATH": _primus_string(section, "config_path") or DEFAULT_PRIMUS_CONFIG}
    cli_extra = _primus_string(section, "cli_extra")
    if cli_extra:
        env["PRIMUS_CLI_EXTRA"] = cli_extra
    backend = _primus_string(section, "backend") or infer_primus_backend(model_name)
    if backend:
        env["BACKEND"] = backend
    return env


def _sglang_disagg_env(layout: NodeLayout, distributed: Optional[Mapping[str, Any]]) -> Dict[str, str]:
    prefill, decode = sglang_disagg_split(layout.nnodes, distributed)
    if not layout.hosts:
        raise ConfigError("sglang-disagg needs the node addresses (hosts) for SGLANG_NODE_IPS")
    return {
        "SGLANG_DISAGG_MODE": "enabled",
        "SGLANG_DISAGG_PREFILL_NODES": str(prefill),
        "SGLANG_DISAGG_DECODE_NODES": str(decode),
        "SGLANG_DISAGG_TOTAL_NODES": str(layout.nnodes),
        "SGLANG_TP_SIZE": str(layout.nproc_per_node),
        "SGLANG_NODE_IPS": ",".join(host.strip() for host in layout.hosts),
        "SGLANG_NODE_RANK": str(layout.node_rank),
    }


def _parallel_env(launcher: str, layout: NodeLayout) -> Dict[str, str]:
    """The parallelism variables of torchtitan, megatron, vllm and sglang (11.4)."""
    single = layout.nnodes == 1
    procs, nodes = str(layout.nproc_per_node), str(layout.nnodes)
    if launcher == MEGATRON:
        return {
            "TENSOR_MODEL_PARALLEL_SIZE": str(min(layout.nproc_per_node, 8)) if single else procs,
            "PIPELINE_MODEL_PARALLEL_SIZE": "1" if single else nodes,
            "CONTEXT_PARALLEL_SIZE": "1",
        }
    if launcher == TORCHTITAN:
        env = {"TORCHTITAN_TENSOR_PARALLEL_SIZE": procs, "TORCHTITAN_PIPELINE_PARALLEL_SIZE": "1" if single else nodes}
        if not single:
            env.update(TORCHTITAN_FSDP_ENABLED="1", TORCHTITAN_CONTEXT_PARALLEL_SIZE="1")
        return env
    if launcher == VLLM:
        return {
            "VLLM_TENSOR_PARALLEL_SIZE": procs,
            "VLLM_PIPELINE_PARALLEL_SIZE": "1",
            "VLLM_DISTRIBUTED_BACKEND": "auto" if single else "none",
        }
    if launcher == SGLANG:
        return {"SGLANG_TENSOR_PARALLEL_SIZE": procs, "SGLANG_PIPELINE_PARALLEL_SIZE": "1"}
    return {}


def multi_node_runner(launcher: str, layout: NodeLayout) -> str:
    """MAD_MULTI_NODE_RUNNER for this node; "" for launchers that start their own processes."""
    name = normalise_launcher(launcher)
    validate_layout(layout)
    if name in _TORCHRUN_FAMILY:
        return _torchrun_runner(layout)
    if name == DEEPSPEED:
        return _deepspeed_runner(layout)
    return ""


def launcher_environment(
    launcher: str,
    layout: NodeLayout,
    distributed: Optional[Mapping[str, Any]] = None,
    model_name: str = "",
) -> Dict[str, str]:
    """Every variable one node exports for `launcher` (any accepted spelling), single- and multi-node alike.

    Common to all launchers: MASTER_ADDR, MASTER_PORT, NNODES, NODE_RANK, RANK (= node_rank; torchrun and
    deepspeed set the per-process RANK of their children themselves), GPUS_PER_NODE, NPROC_PER_NODE,
    WORLD_SIZE (= nnodes * nproc_per_node, the number of GPU processes of the job), MAD_LAUNCHER_TYPE (canonical
    name), MAD_TOTAL_NODES, MAD_NODE_RANK and MAD_MULTI_NODE_RUNNER ("" for launchers without a runner). Then
    the launcher's own variables (11.4). `distributed` is the merged `distributed` section (manifest, then
    runtime); only its `sglang_disagg` and `primus` parts are read here; the node counts come from `layout`.
    `model_name` is used for the Primus BACKEND inference only.
    """
    name = normalise_launcher(launcher)
    validate_layout(layout)
    if distributed is not None and not isinstance(distributed, Mapping):
        raise ConfigError(f"distributed must be an object, got {type(distributed).__name__}")
    env: Dict[str, str] = {
        "MASTER_ADDR": layout.master_addr.strip(),
        "MASTER_PORT": str(layout.master_port),
        "NNODES": str(layout.nnodes),
        "NODE_RANK": str(layout.node_rank),
        "RANK": str(layout.node_rank),
        "GPUS_PER_NODE": str(layout.nproc_per_node),
        "NPROC_PER_NODE": str(layout.nproc_per_node),
        "WORLD_SIZE": str(layout.nnodes * layout.nproc_per_node),
        "MAD_LAUNCHER_TYPE": name,
        "MAD_TOTAL_NODES": str(layout.nnodes),
        "MAD_NODE_RANK": str(layout.node_rank),
        "MAD_MULTI_NODE_RUNNER": multi_node_runner(name, layout),
    }
    env.update(_parallel_env(name, layout))
    if name == SGLANG_DISAGG:
        env.update(_sglang_disagg_env(layout, distributed))
    elif name == PRIMUS:
        env.update(_primus_env(distributed, model_name))
    return env


def _vendor(gpu_vendor: str) -> str:
    vendor = (gpu_vendor or "").strip().upper() if isinstance(gpu_vendor, str) else ""
    if vendor not in GPU_VENDORS:
        raise ConfigError(f"gpu_vendor {gpu_vendor!r} is unknown; known: {', '.join(GPU_VENDORS)}")
    return vendor


def _ray_visibility(launcher: str, gpu_vendor: str, nproc_per_node: int) -> Optional[str]:
    """The single variable a Ray launcher sets, None for other launchers, "" when nothing is set."""
    name, vendor = normalise_launcher(launcher), _vendor(gpu_vendor)
    if not _is_int(nproc_per_node) or nproc_per_node < 0:
        raise ConfigError(f"distributed.nproc_per_node must be an integer >= 0, got {nproc_per_node!r}")
    if vendor == "CPU" or nproc_per_node == 0:
        return ""
    if name not in _RAY_LAUNCHERS:
        return None
    return "HIP_VISIBLE_DEVICES" if vendor == "AMD" else "CUDA_VISIBLE_DEVICES"


def visible_devices(launcher: str, gpu_vendor: str, nproc_per_node: int) -> Dict[str, str]:
    """GPU visibility variables to export (11.3 point 3), each "0,...,P-1".

    vllm/sglang (Ray): HIP_VISIBLE_DEVICES only on AMD, CUDA_VISIBLE_DEVICES only otherwise; the variables
    of `visible_devices_unset` must be removed from the environment as well. Other launchers: HIP, ROCR and
    CUDA_VISIBLE_DEVICES. Vendor CPU or no GPUs: nothing.
    """
    variable = _ray_visibility(launcher, gpu_vendor, nproc_per_node)
    if variable == "":
        return {}
    devices = ",".join(str(i) for i in range(nproc_per_node))
    names = VISIBILITY_VARS if variable is None else (variable,)
    return {name: devices for name in names}


def visible_devices_unset(launcher: str, gpu_vendor: str, nproc_per_node: int) -> List[str]:
    """Variables to unset next to `visible_devices`: for vllm/sglang the other visibility variables and, on AMD,
    RAY_EXPERIMENTAL_NOSET_HIP_VISIBLE_DEVICES (set by the rocm/vllm images; it makes Ray ignore
    HIP_VISIBLE_DEVICES). Empty for other launchers, vendor CPU or no GPUs."""
    variable = _ray_visibility(launcher, gpu_vendor, nproc_per_node)
    if not variable:
        return []
    others = [name for name in VISIBILITY_VARS if name != variable]
    return [RAY_NOSET_HIP, *others] if variable == "HIP_VISIBLE_DEVICES" else others
