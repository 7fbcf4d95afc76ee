"""One container per model: what it gets (devices, env, mounts, command) and running it to the end."""

from __future__ import annotations

import os
import shlex
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional

from . import dockerapi
from .errors import RunError

WORKSPACE = "/myworkspace/"
RUN_DIRECTORY = "run_directory"
RUN_LABEL = "org.madengine.run-id"
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

    def display_command(self) -> str:
        """A docker-run-like rendering for logs; environment values are not shown."""
        parts = ["docker", "run", "--name", self.name, "--network", self.network_mode]
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


def container_name(image: str, suffix: str = "") -> str:
    name = "container_" + image.replace("/", "_").replace(":", "_").replace("@", "_")
    return name + (f"_{suffix}" if suffix else "")


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
    then the container stays running after the model ends)."""
    client = dockerapi.client()
    not_found = dockerapi.not_found_error()
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
    )

    def create() -> Any:
        return client.api.create_container(
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

    try:
        try:
            created = create()
        except dockerapi.api_error() as exc:
            if getattr(exc, "status_code", None) != 409:  # a leftover container of the same name
                raise
            client.api.remove_container(plan.name, force=True)
            created = create()
    except dockerapi.api_error() as exc:
        raise RunError(f"cannot create container for {plan.image}: {dockerapi.short_error(exc)}") from None
    container_id = created["Id"]
    pump = _Pump(sink, EXIT_MARKER if keep else None)
    start = time.monotonic()
    try:
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
        return ContainerOutcome(exit_code, timed_out, time.monotonic() - start, pump.text())
    finally:
        if not keep:
            try:
                client.api.remove_container(container_id, force=True)
            except not_found:
                pass


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


def remove_containers_by_label(run_id: str) -> None:
    client = dockerapi.client()
    for container in client.api.containers(all=True, filters={"label": f"{RUN_LABEL}={run_id}"}):
        client.api.remove_container(container["Id"], force=True)
