"""Building, tagging, pushing and pulling images through the Docker engine API."""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence

from . import dockerapi
from .credentials import RegistryAuth, registry_of
from .errors import BuildError

HASH_LABEL = "org.madengine.content-hash"
MODEL_LABEL = "org.madengine.model"
HASH_SCHEME = "v1"

LineSink = Callable[[str], object]


@dataclass
class BuildRequest:
    image: str
    dockerfile: str  # absolute path
    context_dir: str  # absolute path
    build_args: Dict[str, str] = field(repr=False)
    secret_arg_names: Sequence[str] = ()
    labels: Dict[str, str] = field(default_factory=dict)
    no_cache: bool = False


@dataclass
class BuildResult:
    image: str
    image_id: str
    content_hash: str
    cached: bool
    duration: float


def _hash_tree(digest: Any, directory: str) -> None:
    for current, dirs, files in os.walk(directory, followlinks=False):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(current, name)
            rel = os.path.relpath(path, directory)
            digest.update(b"\0F" + rel.encode())
            if os.path.islink(path):
                digest.update(b"\0L" + os.readlink(path).encode())
                continue
            with open(path, "rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(chunk)


def content_hash(request: BuildRequest, base_image_id: str = "") -> str:
    """Dockerfile + build context + build args (secret values excluded) + the base image's id."""
    digest = hashlib.sha256(HASH_SCHEME.encode())
    with open(request.dockerfile, "rb") as handle:
        digest.update(b"\0D" + handle.read())
    _hash_tree(digest, request.context_dir)
    for name in sorted(request.build_args):
        value = "<secret>" if name in request.secret_arg_names else request.build_args[name]
        digest.update(f"\0A{name}={value}".encode())
    digest.update(f"\0B{base_image_id}\0N{request.no_cache}".encode())
    return "sha256:" + digest.hexdigest()


def image_id(name: str) -> str:
    record = dockerapi.inspect_image(name)
    return record["Id"] if record else ""


def is_current(image: str, wanted_hash: str) -> Optional[str]:
    """The image id when `image` exists and carries `wanted_hash`, else None."""
    record = dockerapi.inspect_image(image)
    if not record:
        return None
    labels = (record.get("Config") or {}).get("Labels") or {}
    return record["Id"] if labels.get(HASH_LABEL) == wanted_hash else None


def build(request: BuildRequest, base_image: str, log: LineSink, check_only: bool = False) -> BuildResult:
    """Build unless an image with the same content hash exists. `log` receives the build output."""
    start = time.monotonic()
    base_id = image_id(base_image) if base_image and "$" not in base_image else ""
    wanted = content_hash(request, base_id)
    current = None if request.no_cache else is_current(request.image, wanted)
    if current or check_only:
        return BuildResult(request.image, current or "", wanted, bool(current), time.monotonic() - start)
    labels = dict(request.labels)
    labels[HASH_LABEL] = wanted
    api = dockerapi.client().api
    built_id = ""
    errors: List[str] = []
    try:
        stream = api.build(
            path=request.context_dir,
            dockerfile=request.dockerfile,
            tag=request.image,
            buildargs=request.build_args,
            labels=labels,
            nocache=request.no_cache,
            rm=True,
            forcerm=True,
            pull=False,
            network_mode="host",
            decode=True,
        )
        for chunk in stream:
            if "stream" in chunk:
                log(chunk["stream"])
            if "error" in chunk:
                errors.append(str(chunk["error"]).strip())
                log(str(chunk["error"]) + "\n")
            aux = chunk.get("aux")
            if isinstance(aux, dict) and aux.get("ID"):
                built_id = aux["ID"]
    except dockerapi.api_error() as exc:
        raise BuildError(f"docker build of {request.image} failed: {dockerapi.short_error(exc)}") from None
    if errors:
        raise BuildError(f"docker build of {request.image} failed: {errors[-1]}")
    if not built_id:
        built_id = image_id(request.image)
    return BuildResult(request.image, built_id, wanted, False, time.monotonic() - start)


def _split_ref(ref: str) -> tuple:
    """('repo', 'tag') of a reference; the tag defaults to latest."""
    last = ref.rsplit("/", 1)[-1]
    if ":" in last:
        repo, tag = ref.rsplit(":", 1)
        return repo, tag
    return ref, "latest"


def repository(ref: str) -> str:
    """The reference without its tag."""
    return _split_ref(ref)[0]


def _consume(stream: Iterable[Dict[str, Any]], log: LineSink) -> Dict[str, Any]:
    aux: Dict[str, Any] = {}
    for chunk in stream:
        if "error" in chunk:
            raise RuntimeError(str(chunk["error"]).strip())
        status = chunk.get("status")
        if status and "progress" not in chunk:
            log(f"{chunk.get('id', '')} {status}".strip() + "\n")
        if isinstance(chunk.get("aux"), dict):
            aux.update(chunk["aux"])
    return aux


# How the engine words a registry it cannot reach, or one that refuses our credentials.
_UNREACHABLE = (
    "connection refused",
    "no such host",
    "i/o timeout",
    "network is unreachable",
    "connection reset",
    "tls handshake timeout",
    "server misbehaving",
    "unexpected eof",
)
_REFUSED = ("unauthorized", "no basic auth credentials", "authentication required", "denied")


def registry_error(action: str, ref: str, exc: BaseException) -> BuildError:
    """'push of R/x:t failed: <engine's words>' plus what to do when the registry is down or refuses us."""
    text = dockerapi.short_error(exc)
    registry = registry_of(ref) or "Docker Hub"
    lowered = text.lower()
    hint = None
    if any(words in lowered for words in _UNREACHABLE):
        hint = f"the registry {registry} is not reachable; check that it is running and reachable from this host"
    elif any(words in lowered for words in _REFUSED):
        hint = f"the registry {registry} refused the credentials; check its entry in credential.json"
    return BuildError(f"{action} of {ref} failed: {text}", hint=hint, registry=registry)


def push(local: str, target: str, auth: Optional[RegistryAuth], log: LineSink) -> str:
    """Tag `local` as `target`, push it, and return the pushed digest (sha256:...)."""
    api = dockerapi.client().api
    repo, tag = _split_ref(target)
    try:
        if local != target:
            api.tag(local, repo, tag)
        stream = api.push(repo, tag, auth_config=auth.auth_config() if auth else None, stream=True, decode=True)
        aux = _consume(stream, log)
    except (RuntimeError, dockerapi.api_error()) as exc:
        raise registry_error("push", target, exc) from None
    digest = aux.get("Digest") or ""
    if not digest.startswith("sha256:"):
        raise BuildError(f"push of {target} returned no digest")
    return str(digest)


def pull(ref: str, auth: Optional[RegistryAuth], log: LineSink) -> str:
    """Pull `ref` and return its local image id."""
    api = dockerapi.client().api
    repo, tag = _split_ref(ref)
    try:
        _consume(api.pull(repo, tag, auth_config=auth.auth_config() if auth else None, stream=True, decode=True), log)
    except (RuntimeError, dockerapi.api_error()) as exc:
        raise registry_error("pull", ref, exc) from None
    return image_id(ref)


def repo_digest(ref: str, record: Optional[Mapping[str, Any]] = None) -> str:
    """`repo@sha256:...` when the image was pulled from or pushed to `ref`'s repository, else its image id
    (a digest under another repository name would describe a different reference)."""
    record = record if record is not None else dockerapi.inspect_image(ref)
    if not record:
        return ""
    wanted = repository(ref)
    for digest in record.get("RepoDigests") or []:
        if str(digest).split("@", 1)[0] == wanted:
            return str(digest)
    return str(record.get("Id", ""))
