"""The Kubernetes objects of one model (spec 12.3, 12.4, 12.6) as plain dicts: rendered, never applied.

Per model, in apply order: Secrets (`<job>-registry-pull`, `<job>-runtime`), the ConfigMap `<job>-config`
holding the model's script directory and build_manifest.json, the headless Service `<job>` (multi-node) and
the Job `<job>`. The pod runs the fixed POD_WRAPPER, which rebuilds the script directory as
/myworkspace/run_directory (the working directory of local runs) and runs the model's command, given as argv.

Deliberate differences from the original (spec 15.5 item 42 and others):

* Names carry the run id (`madengine-<model>-<run id>`), so concurrent runs never collide and no other run's
  objects are ever deleted.
* Every model of the manifest is rendered, not only the first.
* The model's args are argv entries of the container command (never shell text), also for torchrun `.sh`
  scripts; every `$` of a literal value is doubled, Kubernetes' escape, so `$(NAME)` is never expanded.
* MAD_SYSTEM_GPU_ARCHITECTURE comes from the context (`gpu_architecture` or docker_env_vars), else it is
  not set (the original: always gfx90a).
* The model's timeout is its pod's activeDeadlineSeconds (from the pod's start, pulling included): the kubelet
  stops the pod, which stays with its log, so a timed-out model's partial output is still collected.
* Only the model's script directory is shipped (not the package's common scripts, tools or data providers);
  the pull secret is for the registry the image is in (the original: always Docker Hub); secret values reach
  the pod only through Secrets (secretKeyRef and a mounted credential.json), never the ConfigMap or the Job.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from . import atomic, containers, launchers
from .context import secret_env
from .credentials import model_credential_env, registry_auth, registry_of
from .errors import ConfigError
from .k8s_config import K8sSettings
from .manifest import ManifestEntry, entries
from .run import effective_timeout, requested_gpus

RESULTS_BEGIN = "madengine-k8s: results-begin"
RESULTS_END = "madengine-k8s: results-end"
WRAPPER_NAME = "madengine-pod"  # $0 of the wrapper
CONTAINER_NAME = "model"

WORKSPACE = "/myworkspace"
RUN_DIRECTORY = WORKSPACE + "/run_directory"
SCRIPTS_MOUNT = "/madengine/scripts"
CREDENTIAL_MOUNT = "/madengine/credential.json"
RESULTS_MOUNT = "/results"

CREDENTIAL_KEY = "credential.json"
MANIFEST_KEY = "build_manifest.json"
CONFIGMAP_LIMIT = 1024 * 1024 - 25600  # bytes of keys and values
MAX_JOB_NAME = 56  # a DNS label (<= 63) that leaves room for the "-<index>" hostnames of an Indexed Job
DEFAULT_MASTER_PORT = launchers.DEFAULT_MASTER_PORT
TERMINATION_GRACE_SECONDS = 30

LABEL_APP = "app"
LABEL_MODEL = "model"
LABEL_RUN = "madengine/run"
APP = "madengine"
ANNOTATION_RUN_ID = "madengine/run-id"
ANNOTATION_MODEL = "madengine/model"
ANNOTATION_MANIFEST_KEY = "madengine/manifest-key"
ANNOTATION_SPEC_HASH = "madengine/spec-hash"
JOB_NAME_LABEL = "job-name"  # set on the pods by the Job controller
COMPLETION_INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"
# Per-pod variables of a multi-node Job, all the pod's completion index (fieldRef to the annotation).
RANK_VARIABLES = ("JOB_COMPLETION_INDEX", "NODE_RANK", "RANK", "MAD_NODE_RANK")

# The pod's command: sh -c POD_WRAPPER madengine-pod <model argv...>. POSIX sh (busybox too). The model runs in
# the background so that a TERM/INT to the wrapper (PID 1: a Job deletion) reaches it: as TERM, since an
# asynchronous command of a non-interactive shell ignores INT. Its output file is printed between marker
# lines and copied to the results volume; the wrapper exits with the model's exit code. It holds neither `$(`
# nor `$$`, so Kubernetes' $(NAME) expansion leaves it as it is (the model's argv is escaped).
POD_WRAPPER = """\
src=/madengine/scripts
dest=/myworkspace/run_directory
mkdir -p "$dest" || exit 1
for f in "$src"/* "$src"/.[!.]*; do
  [ -e "$f" ] || continue
  cp -RL "$f" "$dest"/ || exit 1
done
if [ -f /madengine/credential.json ]; then
  cp /madengine/credential.json /myworkspace/credential.json || exit 1
fi
cd "$dest" || exit 1
child=
trap '[ -n "$child" ] && kill -TERM "$child" 2>/dev/null' TERM INT
"$@" &
child=$!
wait "$child"
rc=$?
while kill -0 "$child" 2>/dev/null; do
  wait "$child"
  rc=$?
done
if [ -n "${MAD_OUTPUT_CSV:-}" ] && [ -f "$MAD_OUTPUT_CSV" ]; then
  echo "madengine-k8s: results-begin"
  cat "$MAD_OUTPUT_CSV"
  [ -z "`tail -c 1 "$MAD_OUTPUT_CSV"`" ] || echo
  echo "madengine-k8s: results-end"
  out="/results/${MAD_K8S_POD_NAME:-pod}"
  mkdir -p "$out" && cp "$MAD_OUTPUT_CSV" "$out"/
fi
exit "$rc"
"""

_NAME_UNSAFE = re.compile(r"[^a-z0-9-]+")
_LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?\Z")
_LABEL_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_KEY_UNSAFE = re.compile(r"[^-._a-zA-Z0-9]+")
HASH_LENGTH = 12


def _sha(text: str, length: int = HASH_LENGTH) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def _dns_label(text: str, limit: int) -> str:
    """Lower-case, runs of characters outside [a-z0-9-] -> '-', alphanumeric ends; longer than `limit`: the
    truncated body and the 12-hex sha256 of the text."""
    name = _NAME_UNSAFE.sub("-", text.lower()).strip("-")
    if len(name) <= limit:
        return name
    body = name[: limit - HASH_LENGTH - 1].rstrip("-")
    return f"{body}-{_sha(text)}"


def job_name(model_name: str, run_id: str, selection: str = "") -> str:
    """`madengine-<model>[-<selection>]-<run id>`, a DNS label of at most MAX_JOB_NAME characters."""
    parts = ["madengine", model_name] + ([selection] if selection else []) + [run_id]
    return _dns_label("-".join(parts), MAX_JOB_NAME)


def configmap_name(job: str) -> str:
    return f"{job}-config"


def pull_secret_name(job: str) -> str:
    return f"{job}-registry-pull"


def runtime_secret_name(job: str) -> str:
    return f"{job}-runtime"


def label_value(text: str) -> str:
    """`text` when it is a valid label value; else its safe characters and a 12-hex sha256 (<= 63)."""
    if _LABEL_VALUE.fullmatch(text):
        return text
    body = _LABEL_UNSAFE.sub("-", text)[: 63 - HASH_LENGTH - 1]
    body = re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", body)
    return f"{body}-{_sha(text)}" if body else _sha(text)


def labels(model_name: str, run_id: str) -> Dict[str, str]:
    return {LABEL_APP: APP, LABEL_MODEL: label_value(model_name), LABEL_RUN: label_value(run_id)}


def run_selector(run_id: str) -> str:
    """A label selector for every object of a run."""
    return f"{LABEL_APP}={APP},{LABEL_RUN}={label_value(run_id)}"


def k8s_literal(value: str) -> str:
    """A value Kubernetes passes on unchanged: it expands `$(NAME)` in command, args and env values and
    reads `$$` as `$`."""
    return value.replace("$", "$$")


@dataclass
class RenderedModel:
    """One model's objects, ready to apply in order; `job` is the last. The pods carry the label
    `job-name=<job_name>` (pod_selector); every object carries `app`, `model` and `madengine/run` labels."""

    entry: ManifestEntry
    job_name: str
    nnodes: int
    objects: List[Dict[str, Any]]  # apply order: Secrets, ConfigMap, Service, Job
    spec_hash: str
    multiple_results: str
    timeout: Optional[int]
    namespace: str = "default"
    image: str = ""
    gpu_count: int = 0  # GPUs per pod
    launcher: str = launchers.DOCKER
    service_name: str = ""  # multi-node only
    warnings: List[str] = field(default_factory=list)

    @property
    def job(self) -> Dict[str, Any]:
        return self.objects[-1]

    @property
    def pod_selector(self) -> str:
        return f"{JOB_NAME_LABEL}={self.job_name}"


# --- the script directory as a ConfigMap --------------------------------------------------------------


@dataclass
class _ScriptFile:
    path: str  # relative to the script directory, '/'-separated
    content: bytes


def _script_files(model_name: str, package_root: str, script_dir: str) -> List[_ScriptFile]:
    root = os.path.join(package_root, script_dir)
    if not os.path.isdir(root):
        raise ConfigError(
            f"model '{model_name}': script directory {script_dir or '.'} not found in {package_root}",
            hint="check the model card's 'scripts'",
        )
    found: List[_ScriptFile] = []
    for directory, subdirs, names in os.walk(root):
        subdirs.sort()
        for name in sorted(names):
            path = os.path.join(directory, name)
            relative = os.path.relpath(path, root).replace(os.sep, "/")
            if relative.startswith(".."):
                raise ConfigError(
                    f"model '{model_name}': {script_dir}/{relative}: a name starting with '..' cannot be shipped "
                    "in a ConfigMap",
                    hint="rename the file",
                )
            try:
                with open(path, "rb") as handle:
                    found.append(_ScriptFile(relative, handle.read()))
            except OSError as exc:
                raise ConfigError(
                    f"model '{model_name}': cannot read {script_dir}/{relative}: {exc.strerror}"
                ) from None
    return found


def _file_key(index: int, path: str) -> str:
    base = _KEY_UNSAFE.sub("_", path.rsplit("/", 1)[-1])[:100] or "file"
    return f"f{index}-{base}"


def _configmap(
    model_name: str, script_dir: str, files: Sequence[_ScriptFile], manifest_text: str, metadata: Dict[str, Any]
) -> Tuple[Dict[str, Any], List[Dict[str, str]]]:
    data: Dict[str, str] = {MANIFEST_KEY: manifest_text}
    binary: Dict[str, str] = {}
    items: List[Dict[str, str]] = []
    sizes: List[Tuple[int, str]] = []
    for index, script in enumerate(files):
        key = _file_key(index, script.path)
        try:
            data[key] = script.content.decode("utf-8")
        except UnicodeDecodeError:
            binary[key] = base64.b64encode(script.content).decode("ascii")
        items.append({"key": key, "path": script.path})
        sizes.append((len(script.content), script.path))
    total = sum(len(k) + len(v.encode("utf-8")) for k, v in data.items())
    total += sum(len(k) + len(v) for k, v in binary.items())
    if total > CONFIGMAP_LIMIT:
        largest = ", ".join(f"{path} ({size} bytes)" for size, path in sorted(sizes, reverse=True)[:3])
        raise ConfigError(
            f"model '{model_name}': script directory {script_dir or '.'} is {total} bytes, over the ConfigMap "
            f"limit of {CONFIGMAP_LIMIT}; largest: {largest}",
            hint="move data out of the scripts directory (download it at run time)",
        )
    configmap: Dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data}
    if binary:
        configmap["binaryData"] = binary
    return configmap, items


# --- Secrets ---------------------------------------------------------------------------------------------

DOCKERHUB_SERVER = "https://index.docker.io/v1/"


def _docker_config(server: str, username: str, password: str) -> str:
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return json.dumps({"auths": {server: {"username": username, "password": password, "auth": token}}})


def _secret(metadata: Dict[str, Any], secret_type: str, values: Mapping[str, str]) -> Dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": metadata, "type": secret_type, "stringData": dict(values)}


@dataclass
class _Secrets:
    objects: List[Dict[str, Any]] = field(default_factory=list)
    pull_names: List[str] = field(default_factory=list)
    credential_secret: str = ""  # a Secret holding credential.json, mounted for the wrapper to copy
    env_keys: List[str] = field(default_factory=list)  # keys of the runtime Secret passed as env


def _secrets(
    job: str,
    image: str,
    model: Mapping[str, Any],
    settings: K8sSettings,
    credentials: Mapping[str, Any],
    environ: Optional[Mapping[str, str]],
    metadata: Callable[[str], Dict[str, Any]],
) -> _Secrets:
    """from_local_credentials: a pull Secret for the image's registry (when credential.json has an entry for
    it) and a runtime Secret with credential.json (the `credentials` mapping as JSON), the model's `cred`
    variables and MAD_SECRETS variables. existing/omit: nothing created, nothing secret leaves this host; the
    named Secrets are referenced (runtime_secret_name must hold the key credential.json)."""
    strategy = settings.secrets.strategy
    result = _Secrets()
    if strategy == "from_local_credentials":
        registry = registry_of(image)
        auth = registry_auth(credentials, registry)
        if auth is not None:
            name = pull_secret_name(job)
            config = _docker_config(registry or DOCKERHUB_SERVER, auth.username, auth.password)
            result.objects.append(
                _secret(metadata(name), "kubernetes.io/dockerconfigjson", {".dockerconfigjson": config})
            )
            result.pull_names.append(name)
        values: Dict[str, str] = {}
        if credentials:
            values[CREDENTIAL_KEY] = json.dumps(credentials, indent=2, sort_keys=True) + "\n"
        env_values = {**model_credential_env(model, credentials), **secret_env(environ)}
        values.update(env_values)
        if values:
            name = runtime_secret_name(job)
            result.objects.append(_secret(metadata(name), "Opaque", values))
            result.credential_secret = name if CREDENTIAL_KEY in values else ""
            result.env_keys = sorted(env_values)
    elif settings.secrets.runtime_secret_name:  # existing, or omit with a named Secret
        result.credential_secret = settings.secrets.runtime_secret_name
    result.pull_names += [n for n in settings.secrets.image_pull_secret_names if n not in result.pull_names]
    return result


# --- environment ---------------------------------------------------------------------------------------


def _literal(name: str, value: str) -> Dict[str, Any]:
    return {"name": name, "value": k8s_literal(value)}


def _field_ref(name: str, path: str) -> Dict[str, Any]:
    return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}}


def _secret_ref(name: str, secret: str, key: str) -> Dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


@dataclass
class _Layout:
    launcher: str
    nnodes: int
    nproc_per_node: int
    master_port: int
    hosts: List[str]


def _layout(model: Mapping[str, Any], settings: K8sSettings, job: str, gpus: int, nnodes: int, service: str) -> _Layout:
    distributed = settings.distributed
    model_distributed = model.get("distributed") if isinstance(model.get("distributed"), Mapping) else {}
    name = launchers.normalise_launcher(distributed.get("launcher") or (model_distributed or {}).get("launcher"))
    if name == launchers.DOCKER:  # as local runs: the plain launcher gets a torchrun runner
        name = launchers.TORCHRUN
    if name == launchers.DEEPSPEED and nnodes > 1:
        raise ConfigError(
            f"model '{model.get('name')}': deepspeed on {nnodes} nodes needs a hostfile, not supported on Kubernetes",
            hint="use torchrun, or one node",
        )
    if name == launchers.SLURM_MULTI:
        raise ConfigError(f"model '{model.get('name')}': the slurm_multi launcher needs SLURM, not Kubernetes")
    port = distributed.get("master_port") or distributed.get("port") or DEFAULT_MASTER_PORT
    nproc = int(distributed.get("nproc_per_node") or max(gpus, 1))
    hosts = [f"{job}-{i}.{service}.{settings.namespace}.svc.cluster.local" for i in range(nnodes)] if nnodes > 1 else []
    return _Layout(name, nnodes, nproc, int(port), hosts)


def _launcher_env(layout: _Layout, settings: K8sSettings, model_name: str) -> Dict[str, str]:
    node = launchers.NodeLayout(
        nnodes=layout.nnodes,
        nproc_per_node=layout.nproc_per_node,
        node_rank=0,
        master_addr=layout.hosts[0] if layout.hosts else "localhost",
        master_port=layout.master_port,
        hosts=layout.hosts,
    )
    return launchers.launcher_environment(layout.launcher, node, settings.distributed, model_name)


def _environment(
    entry: ManifestEntry,
    model: Mapping[str, Any],
    settings: K8sSettings,
    context: Mapping[str, Any],
    built_context: Mapping[str, Any],
    layout: _Layout,
    gpus: int,
    secrets: _Secrets,
    runtime_secret: str,
) -> List[Dict[str, Any]]:
    per_pod = [_field_ref("MAD_K8S_POD_NAME", "metadata.name"), _field_ref("MAD_K8S_NAMESPACE", "metadata.namespace")]
    rank_names = list(RANK_VARIABLES) + (["SGLANG_NODE_RANK"] if layout.launcher == launchers.SGLANG_DISAGG else [])
    if layout.nnodes > 1:
        index = f"metadata.annotations['{COMPLETION_INDEX_ANNOTATION}']"
        per_pod += [_field_ref(name, index) for name in rank_names]

    env: Dict[str, str] = {
        "MAD_MODEL_NAME": entry.model_name,
        "MAD_DEPLOYMENT_TYPE": "kubernetes",
        "MAD_K8S_JOB": "true",
        "MAD_GPU_VENDOR": settings.gpu_vendor,
        "MAD_RUNTIME_NGPUS": str(gpus),
        "MAD_GUEST_OS": str(context.get("guest_os") or built_context.get("guest_os") or "UBUNTU").upper(),
    }
    architecture = context.get("gpu_architecture") or built_context.get("gpu_architecture")
    if architecture:
        env["MAD_SYSTEM_GPU_ARCHITECTURE"] = str(architecture)
    if model.get("multiple_results"):
        env["MAD_OUTPUT_CSV"] = str(model["multiple_results"])
    env.update(_launcher_env(layout, settings, entry.model_name))
    if gpus:
        env.update(launchers.visible_devices(layout.launcher, settings.gpu_vendor, gpus))
    env.update(settings.env_vars)
    env.update(built_context.get("docker_env_vars") or {})
    env.update(context.get("docker_env_vars") or {})
    if settings.gpu_vendor == "AMD":
        env.setdefault("HSA_NO_SCRATCH_RECLAIM", "1")
    if "HIP_VISIBLE_DEVICES" in env:
        env.setdefault(launchers.RAY_NOSET_HIP, "")

    fixed = {item["name"] for item in per_pod} | set(secrets.env_keys)
    literal = [_literal(name, str(value)) for name, value in env.items() if name not in fixed]
    if layout.nnodes > 1:  # the runner names this pod's rank: expanded by Kubernetes from NODE_RANK above
        for item in literal:
            if item["name"] == "MAD_MULTI_NODE_RUNNER":
                item["value"] = item["value"].replace("--node_rank=0 ", "--node_rank=$(NODE_RANK) ")
    secret = [_secret_ref(name, runtime_secret, name) for name in secrets.env_keys]
    return per_pod + literal + secret


def _resources(settings: K8sSettings, gpus: int) -> Dict[str, Any]:
    requests: Dict[str, Any] = {}
    limits: Dict[str, Any] = {}
    if settings.uses_gpus and gpus > 0:
        requests[settings.gpu_resource_name] = limits[settings.gpu_resource_name] = gpus
    for name, request, limit in (
        ("cpu", settings.cpu, settings.cpu_limit),
        ("memory", settings.memory, settings.memory_limit),
    ):
        if request is not None:
            requests[name] = request
        if limit is not None:
            limits[name] = limit
    resources: Dict[str, Any] = {}
    if requests:
        resources["requests"] = requests
    if limits:
        resources["limits"] = limits
    return resources


def _gpu_count(model: Mapping[str, Any], settings: K8sSettings, context: Mapping[str, Any]) -> int:
    if not settings.uses_gpus:
        return 0
    if settings.gpu_count is not None:
        return settings.gpu_count
    wanted = requested_gpus(model, context)
    if wanted < 0:
        raise ConfigError(
            f"model '{model.get('name')}': n_gpus {wanted} ('all GPUs') has no meaning on Kubernetes; "
            "set k8s.gpu_count",
            hint='the GPUs per pod, e.g. -c \'{"k8s": {"gpu_count": 8}}\'',
        )
    return wanted


# --- the model ------------------------------------------------------------------------------------------


def _model_command(model: Mapping[str, Any], context: Mapping[str, Any]) -> Tuple[str, List[str]]:
    name = str(model.get("name") or "")
    scripts = str(model.get("scripts") or "")
    if not scripts:
        raise ConfigError(f"model '{name}': no 'scripts' in its model card")
    script_dir, prefix = containers.script_command(scripts)
    args = context["model_args"] if "model_args" in context else model.get("args")
    return script_dir, list(prefix) + containers.split_args(str(args or ""), name)


def _volumes(
    job: str, items: List[Dict[str, str]], settings: K8sSettings, credential_secret: str
) -> Tuple[List[Dict[str, Any]], List[Dict[str, Any]]]:
    volumes: List[Dict[str, Any]] = [
        {"name": "workspace", "emptyDir": {}},
        {"name": "scripts", "configMap": {"name": configmap_name(job), "items": items, "defaultMode": 0o755}},
        {"name": "shm", "emptyDir": {"medium": "Memory"}},
        {"name": "results", **_results_source(settings)},
    ]
    mounts: List[Dict[str, Any]] = [
        {"name": "workspace", "mountPath": WORKSPACE},
        {"name": "scripts", "mountPath": SCRIPTS_MOUNT, "readOnly": True},
        {"name": "shm", "mountPath": "/dev/shm"},
        {"name": "results", "mountPath": RESULTS_MOUNT},
    ]
    if credential_secret:
        source = {"secretName": credential_secret, "items": [{"key": CREDENTIAL_KEY, "path": CREDENTIAL_KEY}]}
        volumes.append({"name": "runtime", "secret": source})
        mounts.append({"name": "runtime", "mountPath": CREDENTIAL_MOUNT, "subPath": CREDENTIAL_KEY, "readOnly": True})
    return volumes, mounts


def _results_source(settings: K8sSettings) -> Dict[str, Any]:
    if settings.results_pvc:
        return {"persistentVolumeClaim": {"claimName": settings.results_pvc}}
    return {"emptyDir": {}}


def _job(
    metadata: Dict[str, Any],
    pod_labels: Dict[str, str],
    pod_spec: Dict[str, Any],
    settings: K8sSettings,
    nnodes: int,
    timeout: Optional[int],
) -> Dict[str, Any]:
    spec: Dict[str, Any] = {"backoffLimit": settings.backoff_limit}
    if settings.ttl_seconds_after_finished is not None:
        spec["ttlSecondsAfterFinished"] = settings.ttl_seconds_after_finished
    spec.update(completions=nnodes, parallelism=nnodes)
    if nnodes > 1:
        spec["completionMode"] = "Indexed"
    spec["template"] = {"metadata": {"labels": dict(pod_labels)}, "spec": pod_spec}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata, "spec": spec}


def _service(job: str, metadata: Dict[str, Any], port: int) -> Dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata,
        "spec": {
            "clusterIP": "None",
            "selector": {JOB_NAME_LABEL: job},
            "publishNotReadyAddresses": True,
            "ports": [{"name": "master", "port": port, "protocol": "TCP"}],
        },
    }


def _redacted(objects: Sequence[Mapping[str, Any]], placeholder: Any) -> List[Dict[str, Any]]:
    """Copies with every Secret value replaced by placeholder(key)."""
    result = copy.deepcopy([dict(o) for o in objects])
    for obj in result:
        if obj.get("kind") == "Secret":
            for section in ("stringData", "data"):
                if section in obj:
                    obj[section] = {key: placeholder(key) for key in obj[section]}
    return result


def spec_hash(objects: Sequence[Mapping[str, Any]]) -> str:
    """sha256 of the objects without the Job's spec-hash annotation and without Secret values (their keys
    count): equal inputs give equal hashes, and no secret is derivable from the hash."""
    copies = _redacted(objects, lambda _key: "")
    for obj in copies:
        obj.get("metadata", {}).get("annotations", {}).pop(ANNOTATION_SPEC_HASH, None)
    return hashlib.sha256(json.dumps(copies, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def render_model(
    entry: ManifestEntry,
    settings: K8sSettings,
    *,
    run_id: str,
    package_root: str,
    manifest_text: str,
    credentials: Mapping[str, Any],
    timeout: Optional[int],
    context: Mapping[str, Any],
    manifest_context: Optional[Mapping[str, Any]] = None,
    environ: Optional[Mapping[str, str]] = None,
) -> RenderedModel:
    """The objects of one manifest entry. `manifest_context` is the manifest's `context` block (docker_env_vars,
    guest_os, gpu_architecture at build time; the run-time `context` wins); `environ` (default os.environ) is
    where MAD_SECRETS variables come from."""
    name = entry.model_name
    if entry.model is None:
        raise ConfigError(
            f"manifest entry '{entry.key}' has no built_models record",
            hint="rebuild the manifest with 'madengine build'",
        )
    model = dict(entry.model)
    image = entry.registry_image
    if not image:
        raise ConfigError(
            f"model '{name}': image {entry.local_name} was not pushed to a registry; Kubernetes pulls images",
            hint="build with --registry HOST:PORT",
        )
    if model.get("url"):
        raise ConfigError(f"model '{name}': cloning its 'url' is not supported on Kubernetes")
    built_context = manifest_context or {}
    warnings = []
    if model.get("data"):
        warnings.append(f"{name}: data providers are not supported on Kubernetes; running without data")

    job = job_name(name, run_id, entry.selection)
    nnodes = settings.nnodes
    service = job if nnodes > 1 else ""
    object_labels = labels(name, run_id)

    def metadata(object_name: str) -> Dict[str, Any]:
        return {"name": object_name, "namespace": settings.namespace, "labels": dict(object_labels)}

    script_dir, argv = _model_command(model, context)
    files = _script_files(name, package_root, script_dir)
    configmap, items = _configmap(name, script_dir, files, manifest_text, metadata(configmap_name(job)))
    secrets = _secrets(job, image, model, settings, credentials, environ, metadata)

    gpus = _gpu_count(model, settings, context)
    layout = _layout(model, settings, job, gpus, nnodes, service)
    env = _environment(entry, model, settings, context, built_context, layout, gpus, secrets, runtime_secret_name(job))
    volumes, mounts = _volumes(job, items, settings, secrets.credential_secret)
    container: Dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": image,
        "imagePullPolicy": settings.image_pull_policy,
        "command": ["sh", "-c", POD_WRAPPER, WRAPPER_NAME, *[k8s_literal(part) for part in argv]],
        "env": env,
        "resources": _resources(settings, gpus),
        "volumeMounts": mounts,
    }
    pod_spec: Dict[str, Any] = {
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": TERMINATION_GRACE_SECONDS,
        "hostNetwork": settings.host_network,
    }
    if timeout:
        pod_spec["activeDeadlineSeconds"] = int(timeout)
    if settings.host_network:
        pod_spec["dnsPolicy"] = "ClusterFirstWithHostNet"
    if settings.host_ipc:
        pod_spec["hostIPC"] = True
    if service:
        pod_spec["subdomain"] = service
    if settings.node_selector:
        pod_spec["nodeSelector"] = dict(settings.node_selector)
    if settings.tolerations:
        pod_spec["tolerations"] = copy.deepcopy(settings.tolerations)
    if secrets.pull_names:
        pod_spec["imagePullSecrets"] = [{"name": n} for n in secrets.pull_names]
    pod_spec.update(containers=[container], volumes=volumes)

    job_metadata = metadata(job)
    job_metadata["annotations"] = {
        ANNOTATION_RUN_ID: run_id,
        ANNOTATION_MODEL: name,
        ANNOTATION_MANIFEST_KEY: entry.key,
    }
    objects = [*secrets.objects, configmap]
    if service:
        objects.append(_service(job, metadata(service), layout.master_port))
    objects.append(_job(job_metadata, object_labels, pod_spec, settings, nnodes, timeout))
    digest = spec_hash(objects)
    job_metadata["annotations"][ANNOTATION_SPEC_HASH] = digest
    return RenderedModel(
        entry=entry,
        job_name=job,
        nnodes=nnodes,
        objects=objects,
        spec_hash=digest,
        multiple_results=str(model.get("multiple_results") or ""),
        timeout=int(timeout) if timeout else None,
        namespace=settings.namespace,
        image=image,
        gpu_count=gpus,
        launcher=layout.launcher,
        service_name=service,
        warnings=warnings,
    )


def render_manifest(
    manifest: Mapping[str, Any],
    settings: K8sSettings,
    *,
    run_id: str,
    package_root: str,
    manifest_text: str,
    credentials: Mapping[str, Any],
    cli_timeout: Optional[int],
    context: Mapping[str, Any],
    environ: Optional[Mapping[str, str]] = None,
) -> List[RenderedModel]:
    """Every entry of the manifest, each with its own timeout (--timeout, else the model's, else 7200)."""
    built_context = manifest.get("context") or {}
    return [
        render_model(
            entry,
            settings,
            run_id=run_id,
            package_root=package_root,
            manifest_text=manifest_text,
            credentials=credentials,
            timeout=effective_timeout(cli_timeout, entry.model or {}),
            context=context,
            manifest_context=built_context,
            environ=environ,
        )
        for entry in entries(manifest)
    ]


# --- files -----------------------------------------------------------------------------------------------


GENERATED_HEADER = """\
# Rendered by madengine for review or GitOps; `madengine run` applies its own copy.
# Secret values are placeholders: madengine creates the Secrets at run time from credential.json and
# MAD_SECRETS variables. In command and env values `$$` is Kubernetes' escape for a literal `$`.
"""


def to_yaml(objects: Sequence[Mapping[str, Any]]) -> str:
    """Multi-document YAML; multi-line strings (the pod wrapper) as literal blocks."""
    import yaml  # only `generate` writes YAML; modules on targets without PyYAML never get here

    class Dumper(yaml.SafeDumper):
        pass

    def literal_blocks(dumper: yaml.SafeDumper, value: str) -> Any:
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    Dumper.add_representer(str, literal_blocks)
    return yaml.dump_all([dict(o) for o in objects], Dumper=Dumper, sort_keys=False, default_flow_style=False)


def _placeholder(key: str) -> str:
    source = "the environment" if "MAD_SECRETS" in key else "credential.json"
    return f"<from {source}: {key}>"


def write_manifests(directory: str, rendered: Sequence[RenderedModel]) -> List[str]:
    """One `<job>.yaml` per model, Secret values replaced by placeholders; the paths written."""
    os.makedirs(directory, exist_ok=True)
    paths = []
    for model in rendered:
        path = os.path.join(directory, f"{model.job_name}.yaml")
        with atomic.replacing(path) as handle:
            handle.write(GENERATED_HEADER)
            handle.write(to_yaml(_redacted(model.objects, _placeholder)))
        paths.append(path)
    return paths
