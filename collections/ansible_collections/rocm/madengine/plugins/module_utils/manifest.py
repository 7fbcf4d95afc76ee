"""build_manifest.json: writing it as the original does, and reading any of its producers' shapes."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional

from . import atomic
from .errors import ConfigError
from .jsonfile import load_json

CONTEXT_KEYS_KEPT = ("tools", "pre_scripts", "post_scripts", "encapsulate_script")
DEPLOYMENT_KEYS = ("slurm", "k8s", "kubernetes", "distributed", "vllm")


def manifest_context(ctx: Mapping[str, Any], gpu_vendor: str) -> Dict[str, Any]:
    """The `context` block. Secret values never enter it (MAD_SECRETS variables are added at build and
    run time from the environment, not stored)."""
    block: Dict[str, Any] = {
        "docker_env_vars": dict(ctx.get("docker_env_vars") or {}),
        "docker_mounts": dict(ctx.get("docker_mounts") or {}),
        "docker_build_arg": dict(ctx.get("docker_build_arg") or {}),
        "gpu_vendor": gpu_vendor,
        "guest_os": ctx.get("guest_os", "UBUNTU"),
        "docker_gpus": ctx.get("docker_gpus", ""),
    }
    for key in CONTEXT_KEYS_KEPT:
        if key in ctx:
            block[key] = ctx[key]
    return block


def deployment_config(ctx: Mapping[str, Any]) -> Dict[str, Any]:
    config: Dict[str, Any] = {"target": ctx.get("deploy", "local")}
    for key in DEPLOYMENT_KEYS:
        if ctx.get(key):
            config[key] = {k: v for k, v in ctx[key].items() if v is not None}
    env_vars = dict(ctx.get("env_vars") or {})
    env_vars.pop("MIOPEN_USER_DB_PATH", None)
    config["env_vars"] = env_vars
    config["debug"] = bool(ctx.get("debug"))
    return config


def new_manifest(ctx: Mapping[str, Any], gpu_vendor: str) -> Dict[str, Any]:
    return {
        "built_images": {},
        "built_models": {},
        "context": manifest_context(ctx, gpu_vendor),
        "credentials_required": [],
        "summary": {
            "successful_builds": [],
            "failed_builds": [],
            "total_build_time": 0.0,
            "successful_pushes": [],
            "failed_pushes": [],
        },
        "deployment_config": deployment_config(ctx),
    }


def write_manifest(path: str, manifest: Mapping[str, Any]) -> None:
    """Replaced in one step (0644, like the original's): an interrupted write leaves the old manifest."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic.replacing(path) as handle:
        json.dump(manifest, handle, indent=2)
        handle.write("\n")


@dataclass
class ManifestEntry:
    key: str
    image: Dict[str, Any]
    model: Optional[Dict[str, Any]]

    @property
    def local_name(self) -> str:
        """The name the image has (or had) on the build host."""
        local = self.image.get("local_image")
        if isinstance(local, str) and local:
            return local
        return str(self.image.get("docker_image") or self.image.get("image_name") or self.key)

    @property
    def registry_image(self) -> str:
        value = self.image.get("registry_image")
        if value:
            return str(value)
        if self.image.get("built_on_compute") or isinstance(self.image.get("local_image"), str):
            return str(self.image.get("docker_image") or self.image.get("image_name") or "")
        return ""

    @property
    def selection(self) -> str:
        """'' for the first selection of its image, 'n' for the n-th (key '<image>#n', see selection_key)."""
        return self.key.rpartition("#")[2] if "#" in self.key else ""

    @property
    def task_name(self) -> str:
        """The model's name, made unique among the selections of the same model."""
        return f"{self.model_name}-{self.selection}" if self.selection else self.model_name

    @property
    def model_name(self) -> str:
        if self.model and self.model.get("name"):
            return str(self.model["name"])
        return str(self.image.get("model") or self.key)


REBUILD_HINT = "fix it, or write it again with 'madengine build'"


def load_manifest(path: str) -> Dict[str, Any]:
    label = f"--manifest-file {path}"
    data = load_json(path, label, dict, hint=REBUILD_HINT, missing_hint="build first with 'madengine build'")
    missing = [key for key in ("built_images", "built_models") if not isinstance(data.get(key), dict)]
    if missing:
        raise ConfigError(f"{label}: missing or invalid {', '.join(missing)}", hint=REBUILD_HINT)
    for section in ("built_images", "built_models"):
        for key, record in data[section].items():
            if record is not None and not isinstance(record, dict):
                raise ConfigError(
                    f"{label}: {section}[{key!r}] must be a JSON object, got {type(record).__name__}",
                    hint=REBUILD_HINT,
                )
    for key in ("context", "deployment_config"):
        if data.get(key) is not None and not isinstance(data[key], dict):
            raise ConfigError(
                f"{label}: '{key}' must be a JSON object, got {type(data[key]).__name__}", hint=REBUILD_HINT
            )
    return data


def entries(manifest: Mapping[str, Any]) -> List[ManifestEntry]:
    models = manifest.get("built_models") or {}
    return [
        ManifestEntry(key, dict(record or {}), dict(models[key]) if isinstance(models.get(key), dict) else None)
        for key, record in (manifest.get("built_images") or {}).items()
    ]


def selection_key(data: Mapping[str, Any], image: str) -> str:
    """The key of a new entry for `image`: the image itself, or `<image>#<n>` for its n-th selection
    (the same model selected again with other args runs in the same image)."""
    taken = data.get("built_images") or {}
    if image not in taken:
        return image
    n = 2
    while f"{image}#{n}" in taken:
        n += 1
    return f"{image}#{n}"
