"""The `slurm` section of the additional context: one definition of its keys, types and defaults."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from .errors import ConfigError

EXAMPLE = """-c '{"slurm": {"partition": "gpu", "time": "01:00:00", "gpus_per_node": 8}}'"""
GPU_REQUEST_STYLES = ("gpus-per-node", "gres")
# Slurm's --time formats: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S, and the unlimited spellings.
_TIME = re.compile(r"^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?\Z")
_UNLIMITED = ("UNLIMITED", "INFINITE")
# A value that ends up on an #SBATCH line or an sbatch option: no whitespace breaks, no quotes, no shell syntax.
_DIRECTIVE_VALUE = re.compile(r"^[A-Za-z0-9_.,:@%=+/\[\]-]+\Z")
_MODULE_NAME = re.compile(r"^[A-Za-z0-9_.+/-]+\Z")
_EXTRA_DIRECTIVE = re.compile(r"^--[a-z][a-z-]*(?:=[^\s'\"`$;&|<>\\]+)?\Z")


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(_DIRECTIVE_VALUE.fullmatch(value))


def _whole(minimum: int) -> Callable[[Any], bool]:
    return lambda value: isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _flag(value: Any) -> bool:
    return isinstance(value, bool)


def _time(value: Any) -> bool:
    if isinstance(value, int) and not isinstance(value, bool):
        return value > 0
    return isinstance(value, str) and (value.upper() in _UNLIMITED or bool(_TIME.fullmatch(value)))


def _modules(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(m, str) and _MODULE_NAME.fullmatch(m) for m in value)


def _extra(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(d, str) and _EXTRA_DIRECTIVE.fullmatch(d) for d in value)


def _path(value: Any) -> bool:
    return isinstance(value, str) and bool(value) and "\n" not in value and "\x00" not in value


# key -> (check, what it must be)
SLURM_KEYS: Dict[str, Tuple[Callable[[Any], bool], str]] = {
    "partition": (_text, "a partition name"),
    "nodes": (_whole(1), "a whole number >= 1"),
    "gpus_per_node": (_whole(0), "a whole number >= 0 (0: request no GPUs)"),
    "gpu_request": (lambda v: v in GPU_REQUEST_STYLES, "'gpus-per-node' or 'gres'"),
    "ntasks": (_whole(1), "a whole number >= 1"),
    "cpus_per_task": (_whole(1), "a whole number >= 1"),
    "mem": (_text, "a memory size such as '64G'"),
    "time": (_time, "a Slurm time such as '30', '01:30:00', '1-00:00:00' or minutes as a number"),
    "exclusive": (_flag, "a boolean"),
    "reservation": (_text, "a reservation name"),
    "nodelist": (_text, "a node list such as 'n[1-2]'"),
    "exclude": (_text, "a node list such as 'n3'"),
    "qos": (_text, "a QOS name"),
    "account": (_text, "an account name"),
    "constraint": (_text, "a feature constraint such as 'mi300x'"),
    "mail_user": (_text, "an e-mail address"),
    "mail_type": (_text, "a Slurm mail type such as 'END,FAIL'"),
    "modules": (_modules, "a list of environment module names"),
    "extra_directives": (_extra, "a list of sbatch options such as '--comment=nightly'"),
    "output_dir": (_path, "a directory path (shared with the compute nodes)"),
    "array": (_flag, "a boolean"),
    "max_parallel": (_whole(1), "a whole number >= 1"),
    "madengine_command": (_path, "the path of madengine on the compute nodes"),
    "network_interface": (_text, "an interface name such as 'ib0'"),
    "wait": (_flag, "a boolean"),
    "wait_timeout": (_whole(0), "seconds (0: no limit)"),
    "wait_sleep": (_whole(1), "seconds >= 1"),
}
# Keys seen in the seeds' and the original's configs that belong elsewhere.
MISPLACED = {
    "launcher": "distributed",
    "nnodes": "distributed",
    "nproc_per_node": "distributed",
    "backend": "distributed",
    "port": "distributed",
    "master_port": "distributed",
    "env_vars": "the top level of the context",
    "docker_env_vars": "the top level of the context",
    "timeout": "--timeout (the model's limit inside the job) or slurm.time",
    "monitor": "slurm.wait",
}

# Keys of the original's `slurm` section this version does not act on: refused, not silently ignored.
NOT_SUPPORTED = {
    "enable_node_check": "node preflight checks are not supported",
    "auto_cleanup_nodes": "node preflight checks are not supported",
    "allow_submit_without_clean_nodes": "node preflight checks are not supported",
    "verbose_node_check": "node preflight checks are not supported",
    "shared_workspace": "the MAD package directory is the jobs' workspace (keep it on the shared file system)",
    "results_dir": "results go to slurm.output_dir",
}


def parse_time(value: Any) -> Optional[int]:
    """Seconds of a Slurm time limit; None for unlimited. Bare numbers are minutes, as sbatch reads them."""
    if isinstance(value, int):
        return value * 60
    text = str(value)
    if text.upper() in _UNLIMITED:
        return None
    match = _TIME.fullmatch(text)
    if not match:
        raise ConfigError(f"slurm.time {value!r}: not a Slurm time", hint="use e.g. '30', '01:30:00' or '1-00:00:00'")
    days, first, second, third = match.groups()
    parts = [int(p) for p in (first, second, third) if p is not None]
    if days is not None:  # D-H, D-H:M, D-H:M:S
        hours, minutes, seconds = (parts + [0, 0])[:3]
        return ((int(days) * 24 + hours) * 60 + minutes) * 60 + seconds
    if len(parts) == 1:
        return parts[0] * 60
    if len(parts) == 2:
        return parts[0] * 60 + parts[1]
    return (parts[0] * 60 + parts[1]) * 60 + parts[2]


@dataclass
class SlurmSettings:
    """Validated `slurm` settings; None means "not given: leave it to the cluster's defaults"."""

    partition: Optional[str] = None
    nodes: int = 1
    gpus_per_node: Optional[int] = None  # None: from the model (0 for CPU images)
    gpu_request: str = "gpus-per-node"
    ntasks: Optional[int] = None
    cpus_per_task: Optional[int] = None
    mem: Optional[str] = None
    time: Optional[Any] = None
    exclusive: bool = True
    reservation: Optional[str] = None
    nodelist: Optional[str] = None
    exclude: Optional[str] = None
    qos: Optional[str] = None
    account: Optional[str] = None
    constraint: Optional[str] = None
    mail_user: Optional[str] = None
    mail_type: Optional[str] = None
    modules: List[str] = field(default_factory=list)
    extra_directives: List[str] = field(default_factory=list)
    output_dir: str = "slurm_results"
    array: bool = True
    max_parallel: Optional[int] = None
    madengine_command: Optional[str] = None  # None: this madengine's path
    network_interface: Optional[str] = None
    wait: bool = True
    wait_timeout: int = 0
    wait_sleep: int = 5

    @property
    def time_limit_seconds(self) -> Optional[int]:
        return None if self.time is None else parse_time(self.time)

    def as_dict(self) -> Dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def parse_settings(section: Optional[Mapping[str, Any]], where: str = "slurm") -> SlurmSettings:
    """Validate a `slurm` mapping (from -c or a manifest: where="slurm"; module options: where="")."""
    if section is None:
        return SlurmSettings()
    if not isinstance(section, Mapping):
        raise ConfigError(f"additional context key '{where}': must be an object", hint=f"example: {EXAMPLE}")

    def name(key: str) -> str:
        return f"additional context key '{where}.{key}'" if where else f"option '{key}'"

    values: Dict[str, Any] = {}
    for key, value in section.items():
        if key in MISPLACED:
            raise ConfigError(
                f"{name(key)} is misplaced: it belongs in {MISPLACED[key]}",
                hint=f"move it out of '{where}'" if where else "set it there instead",
            )
        if key in NOT_SUPPORTED:
            raise ConfigError(f"{name(key)}: {NOT_SUPPORTED[key]}", hint="remove the key")
        if key not in SLURM_KEYS:
            raise ConfigError(f"{name(key)} is unknown", hint="known keys: " + ", ".join(sorted(SLURM_KEYS)))
        if value is None:
            continue
        check, expected = SLURM_KEYS[key]
        if not check(value):
            details = {} if where else {"option": key}
            raise ConfigError(f"{name(key)}: must be {expected}, got {value!r}", **details)
        values[key] = value
    return SlurmSettings(**values)


def resolve_madengine_command(settings: SlurmSettings, which: Callable[[str], Optional[str]]) -> str:
    if settings.madengine_command:
        return settings.madengine_command
    return which("madengine") or "madengine"
