"""credential.json, the MAD_DOCKERHUB_* overrides, and registry credentials and names.

Secrets only ever leave this module inside an auth mapping handed to the Docker engine's API.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional

from .errors import ConfigError
from .jsonfile import load_json

DOCKERHUB_ALIASES = ("docker.io", "dockerhub", "index.docker.io", "registry-1.docker.io")


@dataclass(frozen=True)
class RegistryAuth:
    username: str
    password: str = field(repr=False)

    def auth_config(self) -> Dict[str, str]:
        return {"username": self.username, "password": self.password}


def load_credentials(root: str, environ: Optional[Mapping[str, str]] = None) -> Dict[str, Any]:
    environ = os.environ if environ is None else environ
    path = os.path.join(root, "credential.json")
    creds: Dict[str, Any] = {}
    if os.path.isfile(path):
        creds = load_json(path, path, dict, hint="credential.json holds an object keyed by credential name")
    if environ.get("MAD_DOCKERHUB_USER") and environ.get("MAD_DOCKERHUB_PASSWORD"):
        hub = {"username": environ["MAD_DOCKERHUB_USER"], "password": environ["MAD_DOCKERHUB_PASSWORD"]}
        if environ.get("MAD_DOCKERHUB_REPO"):
            hub["repository"] = environ["MAD_DOCKERHUB_REPO"]
        creds["dockerhub"] = hub
    return creds


def model_credential_env(model: Mapping[str, Any], creds: Mapping[str, Any]) -> Dict[str, str]:
    """`<cred>_<FIELD>` values of the credential.json entry a model card names in `cred` ({} when none): build
    args of its image and environment of its container, as the original passes them."""
    name = model.get("cred") or ""
    if not name:
        return {}
    entry = creds.get(name)
    if entry is None:
        raise ConfigError(
            f"model '{model.get('name')}': credential '{name}' not found in credential.json",
            hint=f"add a '{name}' object to credential.json",
        )
    if not isinstance(entry, dict):
        raise ConfigError(
            f"model '{model.get('name')}': credential.json entry '{name}' must be an object, got "
            f"{type(entry).__name__}",
            hint='write it as {"username": ..., "password": ...}',
        )
    return {f"{name}_{key.upper()}": str(value) for key, value in entry.items()}


def is_dockerhub(registry: str) -> bool:
    return registry.strip().lower().rstrip("/") in DOCKERHUB_ALIASES


def credential_entry(creds: Mapping[str, Any], registry: str) -> Optional[Mapping[str, Any]]:
    """The entry for a registry: the literal registry string first, then normalised forms."""
    registry = registry.strip()
    keys = [registry, registry.rstrip("/")]
    if not registry or is_dockerhub(registry):
        keys.append("dockerhub")
    for key in keys:
        entry = creds.get(key)
        if isinstance(entry, dict):
            return entry
        if entry is not None:
            raise ConfigError(
                f"credential.json entry '{key}': must be an object, got {type(entry).__name__}",
                hint='e.g. {"username": "...", "password": "...", "repository": "..."}',
            )
    return None


def registry_auth(creds: Mapping[str, Any], registry: str) -> Optional[RegistryAuth]:
    entry = credential_entry(creds, registry)
    if entry is None:
        return None
    username, password = entry.get("username"), entry.get("password")
    if not username or not password:
        raise ConfigError(
            f"credential.json entry for registry '{registry}': needs both 'username' and 'password'",
            hint="or set MAD_DOCKERHUB_USER and MAD_DOCKERHUB_PASSWORD for Docker Hub",
        )
    return RegistryAuth(str(username), str(password))


def registry_image(creds: Mapping[str, Any], registry: str, image: str) -> str:
    """Where `image` is pushed: <registry>/<repository>:<image> when a repository is configured,
    else <registry>/<image>; Docker Hub needs a repository (a bare name would push to library/)."""
    entry = credential_entry(creds, registry) or {}
    repository = str(entry.get("repository") or "").strip("/")
    if is_dockerhub(registry):
        if not repository:
            raise ConfigError(
                f"--registry {registry}: Docker Hub needs a repository to push to",
                hint="set 'repository' in credential.json's dockerhub entry or MAD_DOCKERHUB_REPO",
            )
        return f"{repository}:{image}"
    host = registry.strip().rstrip("/")
    return f"{host}/{repository}:{image}" if repository else f"{host}/{image}"


def registry_of(image_ref: str) -> str:
    """The registry host of an image reference ('' for Docker Hub names)."""
    first = image_ref.split("/", 1)[0]
    if "/" in image_ref and ("." in first or ":" in first or first == "localhost"):
        return first
    return ""
