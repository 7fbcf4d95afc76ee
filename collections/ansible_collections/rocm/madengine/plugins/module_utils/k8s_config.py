"""The `k8s` (or `kubernetes`) section of the additional context: presets, keys, types and defaults (spec 12.1).

The settings are the deep merge, in the original's order, of: the defaults, the GPU vendor's preset, the AMD
multi-GPU environment (AMD, multi-GPU or multi-node only), the profile (single-gpu, multi-gpu or multi-node)
and the user's config (`k8s`/`kubernetes`, `env_vars`, `distributed`, `launcher`).

Deliberate differences from the original:

* `backoff_limit` defaults to 0: a failed benchmark is reported, not silently retried (the original: 3).
* Vendor `CPU` gets no GPU resource, and the profiles' cpu/memory requests do not apply to it (nothing is
  requested unless the user sets it): the profiles size GPU pods.
* The single-gpu profile does not set `gpu_count`: unless the user sets `k8s.gpu_count` the model's `n_gpus`
  decides, as in local runs.
* Unknown keys, wrong types and the original's storage/profiling keys (this version creates no PVCs) are
  ConfigErrors, not silently ignored.
"""

from __future__ import annotations

import copy
import os
import re
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from .errors import ConfigError
from .suggest import did_you_mean

SECTION_NAMES = ("k8s", "kubernetes")
EXAMPLE = """-c '{"k8s": {"namespace": "bench", "gpu_count": 1}}'"""
GPU_VENDORS = ("AMD", "NVIDIA", "CPU")
DEFAULT_GPU_VENDOR = "AMD"
IMAGE_PULL_POLICIES = ("Always", "IfNotPresent", "Never")
SECRET_STRATEGIES = ("from_local_credentials", "existing", "omit")
CLEANUP_POLICIES = ("on_success", "always", "never")
TOLERATION_KEYS = ("key", "operator", "value", "effect", "tolerationSeconds")
TOLERATION_OPERATORS = ("Exists", "Equal")
TOLERATION_EFFECTS = ("", "NoSchedule", "PreferNoSchedule", "NoExecute")
PROFILES = ("single-gpu", "multi-gpu", "multi-node")

# --- presets (spec 12.1), one definition ---------------------------------------------------------------
DEFAULTS: Dict[str, Any] = {
    "k8s": {
        "kubeconfig": "",
        "context": "",
        "namespace": "default",
        "image_pull_policy": "Always",
        "backoff_limit": 0,
        "ttl_seconds_after_finished": None,
        "host_network": True,
        "host_ipc": False,
        "secrets": {"strategy": "from_local_credentials", "image_pull_secret_names": [], "runtime_secret_name": ""},
        "wait": True,
        "wait_timeout": None,
        "pending_timeout": 300,
        "cleanup": "on_success",
        "results_pvc": "",
        "output_dir": "k8s_results",
    },
    "env_vars": {"OMP_NUM_THREADS": "8"},
}
VENDOR_PRESETS: Dict[str, Dict[str, Any]] = {
    "AMD": {"k8s": {"gpu_resource_name": "amd.com/gpu"}},
    "NVIDIA": {
        "k8s": {"gpu_resource_name": "nvidia.com/gpu"},
        "env_vars": {
            "NCCL_DEBUG": "INFO",
            "NCCL_IB_DISABLE": "1",
            "NCCL_SOCKET_IFNAME": "eth0",
            "NCCL_P2P_DISABLE": "0",
            "NCCL_P2P_LEVEL": "NVL",
            "OMP_NUM_THREADS": "12",
        },
    },
    "CPU": {},
}
AMD_MULTI_GPU: Dict[str, Any] = {
    "env_vars": {
        "NCCL_DEBUG": "WARN",
        "NCCL_IB_DISABLE": "1",
        "NCCL_SOCKET_IFNAME": "eth0",
        "TORCH_NCCL_HIGH_PRIORITY": "1",
        "GPU_MAX_HW_QUEUES": "2",
        "HSA_ENABLE_SDMA": "0",
        "MIOPEN_FIND_MODE": "1",
        "MIOPEN_USER_DB_PATH": "/tmp/.miopen",
        "HSA_FORCE_FINE_GRAIN_PCIE": "1",
        "RCCL_ENABLE_HIPGRAPH": "0",
    }
}
_MULTI_GPU_DISTRIBUTED = {"enabled": True, "backend": "nccl", "launcher": "torchrun", "master_port": 29500}
PROFILE_PRESETS: Dict[str, Dict[str, Any]] = {
    "single-gpu": {"k8s": {"memory": "16Gi", "memory_limit": "32Gi", "cpu": "8", "cpu_limit": "16"}},
    "multi-gpu": {
        "k8s": {"memory": "64Gi", "memory_limit": "128Gi", "cpu": "16", "cpu_limit": "32"},
        "distributed": dict(_MULTI_GPU_DISTRIBUTED),
    },
    "multi-node": {
        "k8s": {"memory": "64Gi", "memory_limit": "128Gi", "cpu": "16", "cpu_limit": "32", "host_ipc": True},
        "distributed": dict(_MULTI_GPU_DISTRIBUTED),
        "env_vars": {"NCCL_DEBUG_SUBSYS": "INIT,NET", "TORCH_NCCL_ASYNC_ERROR_HANDLING": "1", "NCCL_TIMEOUT": "600"},
    },
}
# Profile keys that size GPU pods: not applied to vendor CPU.
GPU_SIZING_KEYS = ("memory", "memory_limit", "cpu", "cpu_limit")

# --- checks --------------------------------------------------------------------------------------------
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\Z")
_DNS_SUBDOMAIN = re.compile(r"^(?=.{1,253}\Z)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z")
_QUANTITY = re.compile(r"^\+?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+|Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E)?\Z")
_RESOURCE_NAME = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?\Z")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
_LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?\Z")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?\Z")


def _is_int(value: Any, minimum: int = 0) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _whole(minimum: int) -> Callable[[Any], bool]:
    return lambda value: _is_int(value, minimum)


def _optional_whole(minimum: int) -> Callable[[Any], bool]:
    return lambda value: value is None or _is_int(value, minimum)


def _flag(value: Any) -> bool:
    return isinstance(value, bool)


def _text(value: Any) -> bool:
    return isinstance(value, str) and "\n" not in value and "\x00" not in value


def _path(value: Any) -> bool:
    return _text(value) and bool(value)


def _quantity(value: Any) -> bool:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value > 0
    return isinstance(value, str) and bool(_QUANTITY.fullmatch(value))


def _one_of(choices: Tuple[str, ...]) -> Callable[[Any], bool]:
    return lambda value: value in choices


def _matches(pattern: re.Pattern, allow_empty: bool = False) -> Callable[[Any], bool]:
    return lambda value: isinstance(value, str) and ((allow_empty and value == "") or bool(pattern.fullmatch(value)))


def _node_selector(value: Any) -> bool:
    return isinstance(value, Mapping) and all(
        isinstance(k, str) and _LABEL_KEY.fullmatch(k) and isinstance(v, str) and _LABEL_VALUE.fullmatch(v)
        for k, v in value.items()
    )


def _toleration(item: Any) -> bool:
    if not isinstance(item, Mapping) or any(k not in TOLERATION_KEYS for k in item):
        return False
    return (
        all(isinstance(item.get(k, ""), str) for k in ("key", "value"))
        and item.get("operator", "Equal") in TOLERATION_OPERATORS
        and item.get("effect", "") in TOLERATION_EFFECTS
        and (item.get("tolerationSeconds") is None or _is_int(item["tolerationSeconds"]))
    )


def _tolerations(value: Any) -> bool:
    return isinstance(value, list) and all(_toleration(item) for item in value)


def _env_vars(value: Any) -> bool:
    return isinstance(value, Mapping) and all(
        isinstance(k, str) and _ENV_NAME.fullmatch(k) and (v is None or isinstance(v, (str, int, float, bool)))
        for k, v in value.items()
    )


def _secret_names(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(n, str) and _DNS_SUBDOMAIN.fullmatch(n) for n in value)


# key -> (check, what it must be)
SECRETS_KEYS: Dict[str, Tuple[Callable[[Any], bool], str]] = {
    "strategy": (_one_of(SECRET_STRATEGIES), "one of " + ", ".join(SECRET_STRATEGIES)),
    "image_pull_secret_names": (_secret_names, "a list of Secret names"),
    "runtime_secret_name": (
        lambda v: v is None or _matches(_DNS_SUBDOMAIN, allow_empty=True)(v),
        "a Secret name holding the key credential.json",
    ),
}
K8S_KEYS: Dict[str, Tuple[Callable[[Any], bool], str]] = {
    "kubeconfig": (_text, "a kubeconfig file path ('' for ~/.kube/config, then the in-cluster config)"),
    "context": (_text, "a kubeconfig context name"),
    "namespace": (_matches(_DNS_LABEL), "a namespace name (lower-case letters, digits and '-')"),
    "image_pull_policy": (_one_of(IMAGE_PULL_POLICIES), "one of " + ", ".join(IMAGE_PULL_POLICIES)),
    "backoff_limit": (_whole(0), "a whole number >= 0"),
    "ttl_seconds_after_finished": (_optional_whole(0), "seconds >= 0 or null"),
    "gpu_resource_name": (_matches(_RESOURCE_NAME), "an extended resource name such as 'amd.com/gpu'"),
    "gpu_count": (_optional_whole(1), "a whole number >= 1 (GPUs per pod)"),
    "memory": (_quantity, "a Kubernetes quantity such as '64Gi'"),
    "memory_limit": (_quantity, "a Kubernetes quantity such as '128Gi'"),
    "cpu": (_quantity, "a Kubernetes quantity such as '16' or '500m'"),
    "cpu_limit": (_quantity, "a Kubernetes quantity such as '32'"),
    "node_selector": (_node_selector, "an object of node label names to values"),
    "tolerations": (_tolerations, "a list of tolerations ({key, operator, value, effect, tolerationSeconds})"),
    "host_network": (_flag, "a boolean"),
    "host_ipc": (_flag, "a boolean"),
    "env_vars": (_env_vars, "an object of environment variables"),
    "secrets": (lambda v: isinstance(v, Mapping), "an object ({strategy, image_pull_secret_names, ...})"),
    "wait": (_flag, "a boolean"),
    "wait_timeout": (_optional_whole(0), "seconds (0 or null: no limit)"),
    "pending_timeout": (_whole(1), "seconds >= 1"),
    "cleanup": (_one_of(CLEANUP_POLICIES), "one of " + ", ".join(CLEANUP_POLICIES)),
    "results_pvc": (_matches(_DNS_SUBDOMAIN, allow_empty=True), "the name of an existing PersistentVolumeClaim"),
    "output_dir": (_path, "a directory path"),
}
MISPLACED = {
    "gpu_vendor": "the top level of the context",
    "guest_os": "the top level of the context",
    "debug": "the top level of the context",
    "docker_env_vars": "the top level of the context",
    "distributed": "the top level of the context",
    "launcher": "distributed (or the top-level 'launcher' object)",
    "nnodes": "distributed",
    "nproc_per_node": "distributed",
    "master_port": "distributed",
    "timeout": "--timeout (the model's limit, the Job's activeDeadlineSeconds)",
}
_NO_PVCS = "this version creates no PersistentVolumeClaims; set k8s.results_pvc to an existing claim"
NOT_SUPPORTED = {
    "allow_privileged_profiling": "profiling tools are not supported on Kubernetes",
    "nfs_storage_class": _NO_PVCS,
    "storage_class": _NO_PVCS,
    "data_storage_class": _NO_PVCS,
    "local_path_storage_class": _NO_PVCS,
    "single_node_results_storage_class": _NO_PVCS,
    "multi_node_results_storage_class": _NO_PVCS,
    "results_storage_size": _NO_PVCS,
    "data_storage_size": _NO_PVCS,
    "recreate_shared_data_pvc": _NO_PVCS,
    "data_pvc": "data providers are not supported on Kubernetes",
}
LAUNCHER_KEYS = {
    "type": "launcher",
    "nnodes": "nnodes",
    "nproc_per_node": "nproc_per_node",
    "master_port": "master_port",
}


@dataclass
class K8sSecrets:
    strategy: str = "from_local_credentials"
    image_pull_secret_names: List[str] = field(default_factory=list)
    runtime_secret_name: str = ""  # strategy existing/omit: a Secret with the key credential.json


@dataclass
class K8sSettings:
    """Validated, merged Kubernetes settings. None means "not set": left to the model or the cluster."""

    gpu_vendor: str = DEFAULT_GPU_VENDOR
    profile: str = "single-gpu"
    kubeconfig: str = ""  # '' = ~/.kube/config, then the in-cluster config
    context: str = ""
    namespace: str = "default"
    image_pull_policy: str = "Always"
    backoff_limit: int = 0
    ttl_seconds_after_finished: Optional[int] = None
    gpu_resource_name: str = ""  # '' for CPU
    gpu_count: Optional[int] = None  # None: the model's n_gpus
    memory: Optional[str] = None
    memory_limit: Optional[str] = None
    cpu: Optional[str] = None
    cpu_limit: Optional[str] = None
    node_selector: Dict[str, str] = field(default_factory=dict)
    tolerations: List[Dict[str, Any]] = field(default_factory=list)
    host_network: bool = True
    host_ipc: bool = False
    env_vars: Dict[str, str] = field(default_factory=dict)
    secrets: K8sSecrets = field(default_factory=K8sSecrets)
    wait: bool = True
    wait_timeout: Optional[int] = None  # seconds for the whole run; None: no limit
    pending_timeout: int = 300  # seconds a pod may stay unschedulable or fail to pull
    cleanup: str = "on_success"
    results_pvc: str = ""  # '' = an emptyDir results volume
    output_dir: str = "k8s_results"
    distributed: Dict[str, Any] = field(default_factory=dict)

    @property
    def uses_gpus(self) -> bool:
        return self.gpu_vendor != "CPU"

    @property
    def nnodes(self) -> int:
        return int(self.distributed.get("nnodes") or 1)

    def as_dict(self) -> Dict[str, Any]:
        result = {f.name: copy.deepcopy(getattr(self, f.name)) for f in fields(self)}
        result["secrets"] = {f.name: copy.deepcopy(getattr(self.secrets, f.name)) for f in fields(self.secrets)}
        return result


def is_k8s_target(ctx: Mapping[str, Any]) -> bool:
    deploy = ctx.get("deploy")
    return any(name in ctx for name in SECTION_NAMES) or (
        isinstance(deploy, str) and deploy.strip().lower() in SECTION_NAMES
    )


def deep_merge(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> Dict[str, Any]:
    """A new dict: `overlay` merged into `base`; objects merge key by key, anything else is replaced."""
    result = copy.deepcopy(dict(base))
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = deep_merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def merged_context(manifest: Mapping[str, Any], ctx: Mapping[str, Any]) -> Dict[str, Any]:
    """The run's context: the manifest's build-time deployment_config (k8s, distributed, env_vars) and context
    (gpu_vendor) under the run-time context, which wins; a `k8s`/`kubernetes` section merges key by key."""
    config = manifest.get("deployment_config") or {}
    base: Dict[str, Any] = {}
    built_vendor = (manifest.get("context") or {}).get("gpu_vendor")
    if built_vendor:
        base["gpu_vendor"] = built_vendor
    for key in ("distributed", "env_vars", *SECTION_NAMES):
        if isinstance(config.get(key), Mapping) and config[key]:
            base[key] = dict(config[key])
    target = config.get("target")
    if isinstance(target, str) and target.strip().lower() in SECTION_NAMES:
        base["deploy"] = target
    runtime = dict(ctx)
    runtime_section = next((name for name in SECTION_NAMES if name in runtime), None)
    built_section = next((name for name in SECTION_NAMES if name in base), None)
    if runtime_section and built_section and runtime_section != built_section:
        base[runtime_section] = base.pop(built_section)
    return deep_merge(base, runtime)


def _vendor(ctx: Mapping[str, Any], gpu_vendor: str) -> str:
    raw = ctx.get("gpu_vendor") or gpu_vendor or DEFAULT_GPU_VENDOR
    vendor = raw.strip().upper() if isinstance(raw, str) else ""
    if vendor not in GPU_VENDORS:
        raise ConfigError(f"additional context key 'gpu_vendor': must be one of {', '.join(GPU_VENDORS)}, got {raw!r}")
    return vendor


def _user_section(ctx: Mapping[str, Any]) -> Tuple[str, Dict[str, Any]]:
    given = [name for name in SECTION_NAMES if name in ctx]
    if len(given) > 1:
        raise ConfigError(
            "additional context keys 'k8s' and 'kubernetes' are both given", hint="keep one of them (they are aliases)"
        )
    where = given[0] if given else "k8s"
    section = ctx.get(where)
    if section is None:
        return where, {}
    if not isinstance(section, Mapping):
        raise ConfigError(f"additional context key '{where}': must be an object", hint=f"example: {EXAMPLE}")
    return where, dict(section)


def _check_keys(section: Mapping[str, Any], where: str, known: Mapping[str, Tuple[Callable[[Any], bool], str]]) -> None:
    for key, value in section.items():
        name = f"additional context key '{where}.{key}'"
        if key in MISPLACED and where in SECTION_NAMES:
            raise ConfigError(f"{name} is misplaced: it belongs in {MISPLACED[key]}", hint=f"move it out of '{where}'")
        if key in NOT_SUPPORTED and where in SECTION_NAMES:
            raise ConfigError(f"{name}: {NOT_SUPPORTED[key]}", hint="remove the key")
        if key not in known:
            suggestion = did_you_mean(str(key), known)
            hint = suggestion or "known keys: " + ", ".join(sorted(known))
            raise ConfigError(f"{name} is unknown", hint=hint)
        check, expected = known[key]
        if value is not None and not check(value):
            raise ConfigError(f"{name}: must be {expected}, got {value!r}")


def _launcher_override(ctx: Mapping[str, Any]) -> Dict[str, Any]:
    """The top-level `launcher {type, nnodes, nproc_per_node, master_port}` object as distributed keys."""
    section = ctx.get("launcher")
    if section is None:
        return {}
    if not isinstance(section, Mapping):
        raise ConfigError(
            "additional context key 'launcher': must be an object",
            hint='example: {"launcher": {"type": "torchrun", "nnodes": 2}}',
        )
    result: Dict[str, Any] = {}
    for key, value in section.items():
        if key not in LAUNCHER_KEYS:
            suggestion = did_you_mean(str(key), LAUNCHER_KEYS)
            raise ConfigError(
                f"additional context key 'launcher.{key}' is unknown",
                hint=suggestion or "known keys: " + ", ".join(LAUNCHER_KEYS),
            )
        if value is not None:
            result[LAUNCHER_KEYS[key]] = value
    return result


def _distributed(ctx: Mapping[str, Any]) -> Dict[str, Any]:
    section = ctx.get("distributed")
    if section is not None and not isinstance(section, Mapping):
        raise ConfigError("additional context key 'distributed': must be an object")
    merged = {**dict(section or {}), **_launcher_override(ctx)}
    for key in ("nnodes", "nproc_per_node"):
        if merged.get(key) is not None and not _is_int(merged[key], 1):
            raise ConfigError(f"additional context key 'distributed.{key}': must be a whole number >= 1")
    for key in ("master_port", "port"):
        if merged.get(key) is not None and not (_is_int(merged[key], 1) and merged[key] <= 65535):
            raise ConfigError(f"additional context key 'distributed.{key}': must be a port number (1-65535)")
    return merged


def _profile(section: Mapping[str, Any], distributed: Mapping[str, Any]) -> str:
    if int(distributed.get("nnodes") or 1) > 1:
        return "multi-node"
    if int(section.get("gpu_count") or 0) > 1 or distributed.get("launcher") or distributed.get("enabled"):
        return "multi-gpu"
    return "single-gpu"


def _string_map(mapping: Mapping[str, Any]) -> Dict[str, str]:
    return {name: "" if value is None else _scalar(value) for name, value in mapping.items()}


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _quantity_text(value: Any) -> Optional[str]:
    return None if value is None else _scalar(value)


def parse_settings(ctx: Mapping[str, Any], gpu_vendor: str = "") -> K8sSettings:
    """Validate the `k8s`/`kubernetes` section of `ctx` and merge it over the presets (see the module docstring).

    `gpu_vendor` is used when ctx has no `gpu_vendor` (pass the manifest context's); default AMD.
    """
    vendor = _vendor(ctx, gpu_vendor)
    where, user = _user_section(ctx)
    _check_keys(user, where, K8S_KEYS)
    secrets = user.get("secrets") or {}
    _check_keys(secrets, f"{where}.secrets", SECRETS_KEYS)
    env_vars = ctx.get("env_vars")
    if env_vars is not None and not _env_vars(env_vars):
        raise ConfigError("additional context key 'env_vars': must be an object of environment variables")
    distributed = _distributed(ctx)
    profile = _profile(user, distributed)

    merged = deep_merge(DEFAULTS, VENDOR_PRESETS[vendor])
    if vendor == "AMD" and profile != "single-gpu":
        merged = deep_merge(merged, AMD_MULTI_GPU)
    profile_preset = copy.deepcopy(PROFILE_PRESETS[profile])
    if vendor == "CPU":
        for key in GPU_SIZING_KEYS:
            profile_preset["k8s"].pop(key, None)
    merged = deep_merge(merged, profile_preset)
    user_config: Dict[str, Any] = {"k8s": {k: v for k, v in user.items() if v is not None}}
    user_config["env_vars"] = {**dict(env_vars or {}), **dict(user.get("env_vars") or {})}
    user_config["distributed"] = distributed
    merged = deep_merge(merged, user_config)

    k8s = merged["k8s"]
    secret_settings = K8sSecrets(
        strategy=k8s["secrets"]["strategy"],
        image_pull_secret_names=list(k8s["secrets"]["image_pull_secret_names"] or []),
        runtime_secret_name=k8s["secrets"].get("runtime_secret_name") or "",
    )
    if secret_settings.runtime_secret_name and secret_settings.strategy == "from_local_credentials":
        raise ConfigError(
            f"additional context key '{where}.secrets.runtime_secret_name': only used with strategy 'existing' "
            "or 'omit'",
            hint=f"set {where}.secrets.strategy to 'existing', or remove the key",
        )
    kubeconfig = k8s.get("kubeconfig") or ""
    return K8sSettings(
        gpu_vendor=vendor,
        profile=profile,
        kubeconfig=os.path.expanduser(kubeconfig) if kubeconfig else "",
        context=k8s.get("context") or "",
        namespace=k8s["namespace"],
        image_pull_policy=k8s["image_pull_policy"],
        backoff_limit=k8s["backoff_limit"],
        ttl_seconds_after_finished=k8s.get("ttl_seconds_after_finished"),
        gpu_resource_name=k8s.get("gpu_resource_name", "") if vendor != "CPU" else "",
        gpu_count=k8s.get("gpu_count"),
        memory=_quantity_text(k8s.get("memory")),
        memory_limit=_quantity_text(k8s.get("memory_limit")),
        cpu=_quantity_text(k8s.get("cpu")),
        cpu_limit=_quantity_text(k8s.get("cpu_limit")),
        node_selector=dict(k8s.get("node_selector") or {}),
        tolerations=[dict(t) for t in k8s.get("tolerations") or []],
        host_network=k8s["host_network"],
        host_ipc=k8s["host_ipc"],
        env_vars=_string_map(dict(merged.get("env_vars", {}))),
        secrets=secret_settings,
        wait=k8s["wait"],
        wait_timeout=k8s.get("wait_timeout") or None,
        pending_timeout=k8s["pending_timeout"],
        cleanup=k8s["cleanup"],
        results_pvc=k8s.get("results_pvc") or "",
        output_dir=k8s["output_dir"],
        distributed=dict(merged.get("distributed") or {}),
    )
