"""One container per model: what it gets (devices, env, mounts, command) and running it to the end."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional

from . import dockerapi, interrupts
from .errors import RunError
from .ownership import Owner

WORKSPACE = "/myworkspace/"
# --keep-alive: a fixed wrapper (user data only ever arrives as "$@") runs the model, reports its exit code
# on a marker line, then keeps the container alive for `docker exec`.
EXIT_MARKER = "__MADENGINE_EXIT_CODE__="
KEEP_ALIVE_WRAPPER = '"$@"; rc=$?; echo "__MADENGINE_EXIT_CODE__=$rc"; exec tail -f /dev/null'
SLURM_PASSTHROUGH = (
    "MASTER_ADDR",
    "MASTER_PORT",
    "WORLD_SIZE",
    "RANK",
    "NODE_RANK",
    "NNODES",
    "NPROC_PER_NODE",
    "MAD_MULTI_NODE_RUNNER",
    "MAD_COLLECT_METRICS",
    "NCCL_SOCKET_IFNAME",
    "GLOO_SOCKET_IFNAME",
    "NCCL_DEBUG",
    "NCCL_IB_DISABLE",
    "NCCL_NET_GDR_LEVEL",
    "PRIMUS_CONFIG_PATH",
    "PRIMUS_CLI_EXTRA",
    "TORCH_ELASTIC_RDZV_TIMEOUT",
    "HIP_VISIBLE_DEVICES",
    "ROCR_VISIBLE_DEVICES",
    "CUDA_VISIBLE_DEVICES",
)


@dataclass
class ContainerPlan:
    name: str
    image: str
    command: List[str]
    working_dir: str
    environment: Dict[str, str] = field(repr=False)
    binds: Dict[str, Dict[str, str]]
    devices: List[str] = field(default_factory=list)
    gpu_ids: List[int] = field(default_factory=list)  # NVIDIA device requests
    group_add: List[str] = field(default_factory=list)
    cap_add: List[str] = field(default_factory=list)
    security_opt: List[str] = field(default_factory=list)
    network_mode: str = "host"
    ipc_mode: Optional[str] = "host"
    cpuset_cpus: Optional[str] = None
    shm_size: Optional[str] = None
    ulimits: List[Dict[str, Any]] = field(default_factory=list)
    privileged: bool = False
    user: str = "root"
    labels: Dict[str, str] = field(default_factory=dict)
    init: bool = True  # tini as PID 1: the model's script gets the SIGTERM of a stop

    def display_command(self) -> str:
        """A docker-run-like rendering for logs; environment values are not shown."""
        parts = (
            ["docker", "run", "--name", self.name]
            + (["--init"] if self.init else [])
            + ["--network", self.network_mode]
        )
        for device in self.devices:
            parts += ["--device", device]
        if self.gpu_ids:
            parts += ["--gpus", "device=" + ",".join(str(g) for g in self.gpu_ids)]
        for host, spec in self.binds.items():
            parts += ["-v", f"{host}:{spec['bind']}:{spec['mode']}"]
        for key in sorted(self.environment):
            parts += ["-e", key]
        parts += ["-w", self.working_dir, self.image] + self.command
        return " ".join(shlex.quote(p) for p in parts)


def script_command(scripts: str) -> tuple:
    """(directory holding the script, argv prefix) per the original: .sh/.slurm -> bash, .py -> python3,
    anything else is a directory with run.sh."""
    if scripts.endswith((".sh", ".slurm")):
        return os.path.dirname(scripts), ["bash", os.path.basename(scripts)]
    if scripts.endswith(".py"):
        return os.path.dirname(scripts), ["python3", os.path.basename(scripts)]
    return scripts, ["bash", "run.sh"]


def split_args(args: str, model_name: str) -> List[str]:
    """Model args are split like POSIX shell words but never evaluated: `$HOME` and `a;b` stay literal."""
    try:
        return shlex.split(args, comments=False, posix=True)
    except ValueError as exc:
        raise RunError(
            f"model '{model_name}': cannot split its args {args!r}: {exc}", hint="balance the quotes"
        ) from None


_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def container_name(image: str, *parts: str) -> str:
    """container_<image>[_<part>...], with every character Docker refuses in a name turned into '_'."""
    name = "_".join(["container_" + image] + [p for p in parts if p])
    return _NAME_UNSAFE.sub("_", name)


# docker-run options a model card may carry in additional_docker_run_options, mapped onto the plan.
def apply_run_options(plan: ContainerPlan, options: str, model_name: str) -> None:
    words = split_args(options, model_name)
    i = 0

    def value() -> str:
        nonlocal i
        word = words[i]
        if "=" in word and word.startswith("--"):
            return word.split("=", 1)[1]
        i += 1
        if i >= len(words):
            raise RunError(f"model '{model_name}': additional_docker_run_options: {word} needs a value")
        return words[i]

    while i < len(words):
        word = words[i]
        flag = word.split("=", 1)[0] if word.startswith("--") else word
        if flag == "--shm-size":
            plan.shm_size = value()
        elif flag == "--cap-add":
            plan.cap_add.append(value())
        elif flag == "--device":
            plan.devices.append(value())
        elif flag == "--group-add":
            plan.group_add.append(value())
        elif flag == "--security-opt":
            plan.security_opt.append(value())
        elif flag in ("-e", "--env"):
            key, sep, val = value().partition("=")
            plan.environment[key] = val if sep else os.environ.get(key, "")
        elif flag in ("-v", "--volume"):
            parts = value().split(":")
            if len(parts) < 2:
                raise RunError(f"model '{model_name}': additional_docker_run_options: bad volume {':'.join(parts)}")
            plan.binds[parts[0]] = {"bind": parts[1], "mode": parts[2] if len(parts) > 2 else "rw"}
        elif flag == "--ipc":
            plan.ipc_mode = value()
        elif flag in ("--network", "--net"):
            plan.network_mode = value()
        elif flag == "--privileged":
            plan.privileged = word.split("=", 1)[1].lower() != "false" if "=" in word else True
        elif flag == "--ulimit":
            spec = value()
            name, _sep, limits = spec.partition("=")
            soft, _sep, hard = limits.partition(":")
            try:
                plan.ulimits.append({"name": name, "soft": _limit(soft), "hard": _limit(hard or soft)})
            except ValueError:
                raise RunError(
                    f"model '{model_name}': additional_docker_run_options: bad --ulimit {spec!r}",
                    hint="use name=soft[:hard] with numbers or 'unlimited'",
                ) from None
        elif flag == "--cpuset-cpus":
            plan.cpuset_cpus = value()
        else:
            raise RunError(
                f"model '{model_name}': additional_docker_run_options: option {word!r} is not supported",
                hint="supported: --shm-size --cap-add --device --group-add --security-opt -e -v --ipc --network "
                "--privileged --ulimit --cpuset-cpus",
            )
        i += 1


def _limit(text: str) -> int:
    return -1 if text.strip() == "unlimited" else int(text)


@dataclass
class ContainerOutcome:
    exit_code: Optional[int]
    timed_out: bool
    duration: float
    output: str


def run_container(
    plan: ContainerPlan,
    timeout: Optional[int],
    sink: Callable[[str], None],
    keep: bool = False,
) -> ContainerOutcome:
    """Create, start, stream output into `sink`, wait up to `timeout`, and remove it (unless `keep`:
    then the container stays running after the model ends). Interrupted (a signal) stops the container with
    a grace period and removes it, also when `keep`, before it is raised again."""
    client = dockerapi.client()
    command = ["sh", "-c", KEEP_ALIVE_WRAPPER, "madengine-model"] + plan.command if keep else plan.command
    host_config = client.api.create_host_config(
        binds=plan.binds,
        devices=plan.devices or None,
        device_requests=_device_requests(plan.gpu_ids),
        group_add=plan.group_add or None,
        cap_add=plan.cap_add or None,
        security_opt=plan.security_opt or None,
        network_mode=plan.network_mode,
        ipc_mode=plan.ipc_mode,
        cpuset_cpus=plan.cpuset_cpus,
        shm_size=plan.shm_size,
        ulimits=[_ulimit(u) for u in plan.ulimits] or None,
        privileged=plan.privileged,
        init=plan.init or None,
    )
    pump = _Pump(sink, EXIT_MARKER if keep else None)
    start = time.monotonic()
    container_id = ""
    remove = True
    try:
        container_id = _create(client, plan, command, host_config)
        stream = client.api.attach(container_id, stdout=True, stderr=True, stream=True, logs=True)
        client.api.start(container_id)
        reader = threading.Thread(target=pump.run, args=(stream,), daemon=True)
        reader.start()
        exit_code: Optional[int] = None
        timed_out = False
        if keep:
            if pump.done.wait(timeout):
                exit_code = pump.exit_code
            else:
                timed_out = True
                client.api.kill(container_id)
        else:
            try:
                exit_code = int(client.api.wait(container_id, timeout=timeout).get("StatusCode", -1))
            except Exception as exc:
                if not _is_timeout(exc):
                    raise
                timed_out = True
                client.api.kill(container_id)
            reader.join(timeout=10)
        remove = not keep
        return ContainerOutcome(exit_code, timed_out, time.monotonic() - start, pump.text())
    except interrupts.Interrupted:
        with interrupts.deferred(raise_pending=False):
            _stop(client, container_id, plan.name)
        raise
    finally:
        if remove:
            with interrupts.deferred(raise_pending=False):
                _remove(client, container_id, plan.name)


def _create(client: Any, plan: ContainerPlan, command: List[str], host_config: Any) -> str:
    def create() -> str:
        created = client.api.create_container(
            plan.image,
            command=command,
            name=plan.name,
            working_dir=plan.working_dir,
            environment=plan.environment,
            user=plan.user,
            labels=plan.labels,
            host_config=host_config,
            entrypoint=[],
        )
        return str(created["Id"])

    try:
        try:
            return create()
        except dockerapi.api_error() as exc:
            if getattr(exc, "status_code", None) != 409:
                raise
            _take_over_name(client, plan.name)
            return create()
    except dockerapi.api_error() as exc:
        raise RunError(f"cannot create container {plan.name} for {plan.image}: {dockerapi.short_error(exc)}") from None


def _take_over_name(client: Any, name: str) -> None:
    """A container of this name exists: remove it when its run is over, never a live run's."""
    try:
        record = client.api.inspect_container(name)
    except dockerapi.not_found_error():
        return
    owner = Owner.from_labels((record.get("Config") or {}).get("Labels") or {})
    if owner is not None and owner.alive():
        raise RunError(
            f"container name {name} is in use by the live run {owner.run_id} (pid {owner.pid})",
            hint="give each concurrent run its own --run-id",
        )
    _remove(client, name, name, ours_only=False)


def _ours(client: Any, container_id: str, name: str) -> str:
    """The container to clean up: ours by id, or, when a signal cut the create short before its id came back,
    the container of that name if this process made it."""
    if container_id:
        return container_id
    try:
        labels = (client.api.inspect_container(name).get("Config") or {}).get("Labels") or {}
    except dockerapi.not_found_error():
        return ""
    owner = Owner.from_labels(labels)
    return name if owner is not None and owner.pid == os.getpid() else ""


def _stop(client: Any, container_id: str, name: str) -> None:
    ident = _ours(client, container_id, name)
    if ident:
        with contextlib.suppress(dockerapi.not_found_error()):
            client.api.stop(ident, timeout=interrupts.STOP_GRACE)


def _remove(client: Any, container_id: str, name: str, ours_only: bool = True) -> None:
    ident = _ours(client, container_id, name) if ours_only else name
    if not ident:
        return
    try:
        client.api.remove_container(ident, force=True)
    except dockerapi.not_found_error():
        pass
    except dockerapi.api_error() as exc:
        if getattr(exc, "status_code", None) != 409:  # 409: its removal is already under way
            raise


class _Pump:
    """Copies a container's output to a sink; with a marker, stops at the marker line and reads the exit code."""

    def __init__(self, sink: Callable[[str], None], marker: Optional[str]) -> None:
        self.sink = sink
        self.marker = marker
        self.chunks: List[str] = []
        self.pending = ""
        self.exit_code: Optional[int] = None
        self.done = threading.Event()

    def text(self) -> str:
        return "".join(self.chunks)

    def run(self, stream: Any) -> None:
        try:
            for raw in stream:
                self.feed(raw.decode("utf-8", errors="replace"))
                if self.done.is_set():
                    return
        except Exception:  # the stream ends abruptly when the container is killed
            pass
        finally:
            if self.pending:
                self.emit(self.pending)
                self.pending = ""
            self.done.set()

    def feed(self, text: str) -> None:
        if self.marker is None:
            self.emit(text)
            return
        self.pending += text
        while "\n" in self.pending:
            line, self.pending = self.pending.split("\n", 1)
            if line.startswith(self.marker):
                self.exit_code = int(line[len(self.marker) :].strip() or -1)
                self.pending = ""
                self.done.set()
                return
            self.emit(line + "\n")

    def emit(self, text: str) -> None:
        self.chunks.append(text)
        self.sink(text)


def _is_timeout(exc: BaseException) -> bool:
    """The engine's wait ran past its timeout (requests reports it as a timeout or a timed-out connection)."""
    from requests.exceptions import ConnectionError as RequestsConnectionError
    from requests.exceptions import ReadTimeout

    if isinstance(exc, ReadTimeout):
        return True
    return isinstance(exc, RequestsConnectionError) and "timed out" in str(exc).lower()


def _device_requests(gpu_ids: List[int]) -> Optional[list]:
    if not gpu_ids:
        return None
    from docker.types import DeviceRequest

    return [DeviceRequest(device_ids=[str(g) for g in gpu_ids], capabilities=[["gpu"]])]


def _ulimit(spec: Mapping[str, Any]) -> Any:
    from docker.types import Ulimit

    return Ulimit(name=spec["name"], soft=spec["soft"], hard=spec["hard"])
