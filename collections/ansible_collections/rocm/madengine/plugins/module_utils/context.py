"""The additional context (-c / --additional-context-file): parsing, merging and validation."""

from __future__ import annotations

import ast
import json
import os
import re
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from .errors import ConfigError
from .hostinfo import parse_gpu_list
from .jsonfile import load_json
from .suggest import did_you_mean

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
EXAMPLE = """-c '{"gpu_vendor": "AMD", "docker_env_vars": {"HF_HOME": "/data"}}'"""

GPU_VENDORS = ("AMD", "NVIDIA", "CPU")
GUEST_OSES = ("UBUNTU", "CENTOS")
GPU_COUNT_KEYS = ("gpus_per_node", "gpu_count", "n_gpus", "num_gpus", "ngpus")


def _str(value: Any) -> bool:
    return isinstance(value, str)


def _dict(value: Any) -> bool:
    return isinstance(value, dict)


def _bool(value: Any) -> bool:
    return isinstance(value, bool)


def _int(value: Any) -> bool:
    return not isinstance(value, bool) and (
        isinstance(value, int) or (isinstance(value, str) and value.strip().lstrip("-").isdigit())
    )


def _scalar_or_none(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _nonempty_str_list(value: Any) -> bool:
    return _str_list(value) and len(value) > 0


# key -> (check, expected type in words). These keys are implemented by this version.
KNOWN_KEYS: Dict[str, Tuple[Callable[[Any], bool], str]] = {
    "gpu_vendor": (_str, "one of AMD, NVIDIA, CPU"),
    "guest_os": (_str, "one of UBUNTU, CENTOS"),
    "docker_build_arg": (_dict, "an object of build args"),
    "docker_env_vars": (_dict, "an object of environment variables"),
    "docker_mounts": (_dict, "an object mapping container path to host path"),
    "docker_gpus": (_str, "a string such as '0,2-3'"),
    "docker_cpus": (_str, "a string such as '0-7'"),
    "MAD_ROCM_PATH": (lambda v: v is None or _str(v), "a string"),
    "model_args": (_str, "a string"),
    "log_error_pattern_scan": (_scalar_or_none, "a boolean"),
    "log_error_benign_patterns": (_str_list, "a list of strings"),
    "log_error_patterns": (_nonempty_str_list, "a non-empty list of strings"),
    "skip_perf_collection": (_bool, "a boolean"),
    "gen_sys_env_details": (_bool, "a boolean"),
    "rocenv_mode": (_str, "'lite' or 'full'"),
    "distributed": (_dict, "an object"),
    "slurm": (_dict, "an object of SLURM settings"),
    "k8s": (_dict, "an object of Kubernetes settings"),
    "kubernetes": (_dict, "an object of Kubernetes settings"),
    "env_vars": (_dict, "an object"),
    "deployment_config": (_dict, "an object"),
    "debug": (lambda v: v is None or _bool(v), "a boolean"),
    "deploy": (_str, "'local', 'slurm' or 'k8s'"),
    **{key: (_int, "a whole number") for key in GPU_COUNT_KEYS},
}

# Keys the original accepts that this version does not act on yet: refusing them is more honest
# than silently running without them.
NOT_YET_SUPPORTED = {
    "tools": "profiling tools",
    "pre_scripts": "pre-scripts",
    "post_scripts": "post-scripts",
    "encapsulate_script": "encapsulation scripts",
    "data": "data providers",
    "vllm": "vLLM deployments",
    "launcher": "Kubernetes launcher overrides",
    "shared_data": "SLURM shared data",
    "MAD_CONTAINER_IMAGE": "running a given container image",
    "monitor": "deployment monitoring",
    "cleanup_on_failure": "deployment cleanup",
}

NO_EFFECT = {
    "timeout": "use --timeout",
    "timeout_multiplier": "use --timeout",
}

# Keys that belong inside a section; found at the top level they are a mistake.
MISPLACED = {
    "partition": "slurm",
    "nodes": "slurm",
    "time": "slurm",
    "exclusive": "slurm",
    "reservation": "slurm",
    "nodelist": "slurm",
    "qos": "slurm",
    "account": "slurm",
    "constraint": "slurm",
    "modules": "slurm",
    "namespace": "k8s",
    "image_pull_policy": "k8s",
    "nnodes": "distributed",
    "nproc_per_node": "distributed",
    "backend": "distributed",
    "master_port": "distributed",
    "BASE_DOCKER": "docker_build_arg",
    "MAD_SYSTEM_GPU_ARCHITECTURE": "docker_build_arg (build) or docker_env_vars (run)",
    "HIP_VISIBLE_DEVICES": "docker_env_vars",
    "CUDA_VISIBLE_DEVICES": "docker_env_vars",
}

DISTRIBUTED_KEYS = (
    "launcher",
    "nnodes",
    "nproc_per_node",
    "backend",
    "port",
    "master_port",
    "sglang_disagg",
    "vllm_disagg",
    "primus",
)


def parse_context_string(text: Optional[str]) -> Dict[str, Any]:
    """JSON first, then a Python literal (single quotes, True/False/None)."""
    if text is None or not text.strip() or text.strip() == "{}":
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        try:
            value = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            raise ConfigError(
                "--additional-context: not valid JSON or a Python dict literal", hint=f"example: {EXAMPLE}"
            ) from None
    if not isinstance(value, dict):
        raise ConfigError(
            f"--additional-context: must be an object, got {type(value).__name__}", hint=f"example: {EXAMPLE}"
        )
    return value


def read_context_file(path: str) -> Dict[str, Any]:
    return load_json(path, f"--additional-context-file {path}", dict)


def load_context(text: Optional[str] = None, path: Optional[str] = None) -> Dict[str, Any]:
    """File first, then the string shallow-updates it; the result is validated and normalised."""
    merged: Dict[str, Any] = {}
    if path:
        from_file = read_context_file(path)
        try:
            validate_context(from_file)
        except ConfigError as exc:
            raise ConfigError(f"--additional-context-file {path}: {exc.msg}", hint=exc.hint, **exc.details) from None
        merged.update(from_file)
    merged.update(parse_context_string(text))
    return validate_context(merged)


def _known_names() -> List[str]:
    return sorted(KNOWN_KEYS)


def validate_context(ctx: Mapping[str, Any], warn: Optional[Callable[[str], None]] = None) -> Dict[str, Any]:
    result: Dict[str, Any] = {}
    for key, value in ctx.items():
        if not isinstance(key, str):
            raise ConfigError(f"additional context: key {key!r} must be a string")
        if key in NOT_YET_SUPPORTED:
            raise ConfigError(
                f"additional context key '{key}': {NOT_YET_SUPPORTED[key]} are not supported by this "
                "version of madengine yet",
                hint="remove the key",
            )
        if key in NO_EFFECT:
            if warn:
                warn(f"additional context key '{key}' has no effect; {NO_EFFECT[key]}")
            continue
        if key in MISPLACED:
            raise ConfigError(
                f"additional context key '{key}' is misplaced: it belongs under '{MISPLACED[key]}'",
                hint=f"move it into the '{MISPLACED[key].split()[0]}' object",
            )
        if key in KNOWN_KEYS:
            check, expected = KNOWN_KEYS[key]
            if not check(value):
                raise ConfigError(f"additional context key '{key}': must be {expected}, got {value!r}")
            result[key] = value
            continue
        suggestion = did_you_mean(key, list(KNOWN_KEYS) + list(NOT_YET_SUPPORTED))
        if suggestion:
            raise ConfigError(f"additional context key '{key}' is unknown; {suggestion}")
        if not isinstance(value, str):
            raise ConfigError(
                f"additional context key '{key}' is unknown",
                hint="known keys: "
                + ", ".join(_known_names())
                + "; any other key must be a string matched against Dockerfile CONTEXT headers",
            )
        result[key] = value
    _normalise(result)
    return result


def _normalise(ctx: Dict[str, Any]) -> None:
    if "gpu_vendor" in ctx:
        vendor = ctx["gpu_vendor"].strip().upper()
        if vendor not in GPU_VENDORS:
            allowed = ", ".join(GPU_VENDORS)
            raise ConfigError(
                f"additional context key 'gpu_vendor': must be one of {allowed}, got {ctx['gpu_vendor']!r}"
            )
        ctx["gpu_vendor"] = vendor
    if "guest_os" in ctx:
        guest = ctx["guest_os"].strip().upper()
        if guest not in GUEST_OSES:
            raise ConfigError(
                f"additional context key 'guest_os': must be one of {', '.join(GUEST_OSES)}, got {ctx['guest_os']!r}"
            )
        ctx["guest_os"] = guest
    from .deployment import target_name

    target_name(ctx)  # one target at most, and a known one
    for section in ("docker_build_arg", "docker_env_vars", "env_vars"):
        if section in ctx:
            ctx[section] = _string_map(section, ctx[section])
    if ctx.get("docker_gpus"):
        parse_gpu_list(ctx["docker_gpus"])
    if "docker_mounts" in ctx:
        for container_path, host_path in ctx["docker_mounts"].items():
            if not isinstance(host_path, str) or not str(container_path).startswith("/"):
                raise ConfigError(
                    f"additional context key 'docker_mounts.{container_path}': must map an absolute container "
                    "path to a host path string",
                    hint="example: {'docker_mounts': {'/data': '/mnt/datasets'}}",
                )
    if "distributed" in ctx:
        for key in ctx["distributed"]:
            if key not in DISTRIBUTED_KEYS:
                raise ConfigError(
                    f"additional context key 'distributed.{key}' is unknown",
                    hint="known keys: " + ", ".join(DISTRIBUTED_KEYS),
                )
    if "slurm" in ctx:
        from .slurm_config import parse_settings

        parse_settings(ctx["slurm"])
    if "k8s" in ctx or "kubernetes" in ctx:
        from .k8s_config import parse_settings as parse_k8s_settings

        parse_k8s_settings(ctx)
    if "rocenv_mode" in ctx and ctx["rocenv_mode"] not in ("lite", "full"):
        raise ConfigError(f"additional context key 'rocenv_mode': must be 'lite' or 'full', got {ctx['rocenv_mode']!r}")


def _string_map(section: str, mapping: Mapping[str, Any]) -> Dict[str, str]:
    result = {}
    for name, value in mapping.items():
        if not isinstance(name, str) or not ENV_NAME.match(name):
            raise ConfigError(f"additional context key '{section}': {name!r} is not a valid variable name")
        if isinstance(value, (dict, list)):
            raise ConfigError(
                f"additional context key '{section}.{name}': must be a scalar, got {type(value).__name__}"
            )
        result[name] = "" if value is None else str(value)
    return result


def secret_env(environ: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    """Host variables whose name contains MAD_SECRETS: passed to builds and containers, never recorded."""
    environ = os.environ if environ is None else environ
    return {name: value for name, value in environ.items() if "MAD_SECRETS" in name}


def dockerfile_match_context(ctx: Mapping[str, Any], root: str, default_vendor: str) -> Dict[str, str]:
    """The string keys a Dockerfile CONTEXT header is compared against."""
    match = {key: value for key, value in ctx.items() if isinstance(value, str)}
    match.setdefault("gpu_vendor", default_vendor)
    match.setdefault("guest_os", "UBUNTU")
    if "ctx_test" not in match:
        ctx_file = os.path.join(root, "ctx_test")
        match["ctx_test"] = open(ctx_file, encoding="utf-8").read().strip() if os.path.isfile(ctx_file) else "None"
    return match


def runtime_gpu_override(ctx: Mapping[str, Any]) -> Optional[int]:
    for key in GPU_COUNT_KEYS:
        if key in ctx:
            return int(ctx[key])
        dc = ctx.get("deployment_config") or {}
        if key in dc:
            return int(dc[key])
    return None
