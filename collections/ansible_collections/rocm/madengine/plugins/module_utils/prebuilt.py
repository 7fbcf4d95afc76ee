"""Manifests for images that are not built here: --use-image and --batch-manifest's build_new=false."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional

from . import dockerfiles, manifest
from .context import dockerfile_match_context
from .credentials import load_credentials, registry_image
from .discovery import discover
from .errors import ConfigError, MadengineError
from .jsonfile import load_json
from .tags import select_models


@dataclass(frozen=True)
class BatchEntry:
    model_name: str
    build_new: bool
    registry: str
    registry_image: str


def read_batch_manifest(path: str) -> List[BatchEntry]:
    data = load_json(path, f"--batch-manifest {path}", list)
    batch = []
    for index, item in enumerate(data):
        if not isinstance(item, dict):
            raise ConfigError(f"--batch-manifest {path}: entry {index} must be an object")
        name = item.get("model_name")
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"--batch-manifest {path}: entry {index} has no 'model_name'")
        unknown = sorted(set(item) - {"model_name", "build_new", "registry", "registry_image"})
        if unknown:
            raise ConfigError(
                f"--batch-manifest {path}: entry {index} ('{name}') has unknown key(s) {', '.join(unknown)}",
                hint="known keys: model_name, build_new, registry, registry_image",
            )
        if not isinstance(item.get("build_new", False), bool):
            raise ConfigError(f"--batch-manifest {path}: entry {index} ('{name}'): build_new must be true or false")
        batch.append(
            BatchEntry(
                name.strip(),
                bool(item.get("build_new", False)),
                str(item.get("registry") or ""),
                str(item.get("registry_image") or ""),
            )
        )
    return batch


def use_image_manifest(root: str, image: str, tags: List[str], ctx: Mapping[str, Any], vendor: str) -> Dict[str, Any]:
    """A manifest that runs the selected models in an existing image (`auto`: the models' DOCKER_IMAGE_NAME)."""
    models = select_models(tags, discover(root)) if tags else []
    if not models:
        raise ConfigError("--use-image: no models selected", hint="pass --tags")
    if image == "auto":
        named = [str((m.get("env_vars") or {}).get("DOCKER_IMAGE_NAME") or "") for m in models]
        named = [n for n in named if n]
        if not named:
            raise ConfigError(
                "--use-image auto: no selected model has env_vars.DOCKER_IMAGE_NAME", hint="name the image"
            )
        if len(set(named)) > 1:
            raise ConfigError(
                f"--use-image auto: the selected models name different images: {', '.join(sorted(set(named)))}"
            )
        image = named[0]
    data = manifest.new_manifest(ctx, vendor)
    for model in models:
        key = manifest.selection_key(data, model["name"])
        data["built_images"][key] = {
            "image_name": image,
            "docker_image": image,
            "local_image": True,
            "dockerfile": "",
            "build_time": 0,
            "prebuilt": True,
        }
        built = dict(model)
        built["env_vars"] = {**(model.get("env_vars") or {}), "DOCKER_IMAGE_NAME": image}
        built["prebuilt"] = True
        data["built_models"][key] = built
    data["summary"]["successful_builds"] = [m["name"] for m in models]
    return data


def skipped_entry(
    root: str, entry: BatchEntry, ctx: Mapping[str, Any], vendor: str, default_registry: Optional[str]
) -> tuple:
    """(image key, image record, model) for a build_new=false entry: named as a build would name it."""
    model = select_models([entry.model_name], discover(root))[0]
    match = dockerfile_match_context(ctx, root, vendor)
    dockerfile = dockerfiles.select_dockerfiles(root, model, match)[0]
    image = dockerfiles.image_name(model["name"], dockerfile)
    registry = entry.registry or default_registry or ""
    remote = entry.registry_image
    if not remote and registry:
        remote = registry_image(load_credentials(root), registry, image)
    record = {
        "model": model["name"],
        "docker_image": image,
        "dockerfile": dockerfile,
        "base_docker": "",
        "docker_sha": "",
        "build_duration": 0,
        "build_command": f"# Skipped build for {model['name']} (build_new=false)",
        "log_file": "",
        "gpu_vendor": dockerfiles.infer_gpu_vendor(dockerfile, ""),
        "registry_image": remote,
        "registry": registry,
    }
    return image, record, model


def add_skipped_entries(
    root: str,
    data: Dict[str, Any],
    batch: List[BatchEntry],
    ctx: Mapping[str, Any],
    vendor: str,
    default_registry: Optional[str],
    failures: List[Dict[str, Any]],
) -> None:
    for entry in batch:
        if entry.build_new:
            continue
        try:
            image, record, model = skipped_entry(root, entry, ctx, vendor, default_registry)
        except MadengineError as exc:
            failures.append({"model": entry.model_name, "error": exc.one_line()})
            continue
        key = manifest.selection_key(data, image)
        data["built_images"][key] = record
        data["built_models"][key] = model
