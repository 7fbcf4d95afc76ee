"""The build phase: selected models -> Dockerfiles -> images (cached by content hash) -> registry."""

from __future__ import annotations

import os
import shlex
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence

from . import dockerfiles, images, interrupts, manifest, prebuilt
from .context import dockerfile_match_context, secret_env
from .credentials import load_credentials, model_credential_env, registry_auth, registry_image
from .discovery import discover
from .errors import BuildError, ConfigError, MadengineError
from .reporting import Reporter
from .tags import select_models


@dataclass
class BuildOptions:
    tags: Sequence[str]
    context: Mapping[str, Any]
    registry: Optional[str] = None
    clean_docker_cache: bool = False
    manifest_output: str = "build_manifest.json"
    live_output: bool = False
    default_vendor: str = "AMD"
    check_only: bool = False
    batch_manifest: Optional[str] = None
    use_image: Optional[str] = None
    target_archs: Sequence[str] = ()
    # Credentials given by a caller (e.g. an Ansible module's no_log options), merged over credential.json.
    extra_credentials: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PushTarget:
    registry: str
    image: str


@dataclass
class BuildOutcome:
    manifest: Dict[str, Any]
    models: List[Dict[str, Any]]
    successes: List[Dict[str, Any]] = field(default_factory=list)
    failures: List[Dict[str, Any]] = field(default_factory=list)
    interrupted: Optional[interrupts.Interrupted] = None  # a signal stopped the build; no manifest was written
    not_started: List[Dict[str, Any]] = field(default_factory=list)  # the models the signal kept from building

    @property
    def changed(self) -> bool:
        return any(not record.get("cached") for record in self.successes)


def _display_build_command(
    image: str, dockerfile: str, context_dir: str, args: Mapping[str, str], secret_names: Sequence[str], no_cache: bool
) -> str:
    argv = (
        ["docker", "build"] + (["--no-cache"] if no_cache else []) + ["--network=host", "-t", image, "-f", dockerfile]
    )
    for key in args:
        argv += ["--build-arg", f"{key}={'***' if key in secret_names else args[key]}"]
    return " ".join(shlex.quote(a) for a in argv + [context_dir])


def build_models(root: str, options: BuildOptions, reporter: Optional[Reporter] = None) -> BuildOutcome:
    reporter = reporter or Reporter()
    root = os.path.abspath(root)
    ctx = options.context
    if options.registry is not None and not options.registry.strip():
        raise ConfigError("--registry: empty value", hint="give a registry such as localhost:5000")
    if options.use_image:
        return _use_image(root, options)
    batch = prebuilt.read_batch_manifest(options.batch_manifest) if options.batch_manifest else []
    if options.batch_manifest and list(options.tags):
        raise ConfigError("--batch-manifest and --tags cannot be used together")
    tags = [e.model_name for e in batch if e.build_new] if options.batch_manifest else list(options.tags)
    if not tags and not batch:
        raise ConfigError("no models selected", hint="pass --tags (e.g. --tags all)")
    targets = {e.model_name: PushTarget(e.registry, e.registry_image) for e in batch if e.build_new}
    models = select_models(tags, discover(root)) if tags else []
    match = dockerfile_match_context(ctx, root, options.default_vendor)
    creds = {**load_credentials(root), **options.extra_credentials}
    if options.registry:
        registry_image(creds, options.registry, "probe")  # configuration errors surface before any build
        registry_auth(creds, options.registry)
    outcome = BuildOutcome(manifest.new_manifest(ctx, match["gpu_vendor"]), models)
    archs = target_architectures(options, reporter)
    started = time.monotonic()
    # Each image is built once: another selection of its model (other args) reuses the outcome.
    built: Dict[str, Dict[str, Any]] = {}
    failed: Dict[str, str] = {}
    with interrupts.guarded():
        for index, model in enumerate(models):
            outcome.interrupted = outcome.interrupted or interrupts.take()
            if outcome.interrupted is not None:
                outcome.not_started = list(models[index:])
                break
            try:
                selected = dockerfiles.select_dockerfiles(root, model, match)
            except BuildError as exc:
                outcome.failures.append(_failure(model, exc.one_line()))
                reporter.model_done(model["name"], "build", "FAILURE", exc.one_line())
                continue
            target = targets.get(model["name"])
            for dockerfile, arch in [(d, a) for d in selected for a in archs]:
                image = dockerfiles.image_name(model["name"], dockerfile, arch)
                if image in failed:
                    outcome.failures.append(_failure(model, failed[image], dockerfile, arch))
                    reporter.model_done(model["name"], "build", "FAILURE", failed[image])
                    continue
                record = built.get(image)
                if record is None:
                    try:
                        with interrupts.allowed():
                            record = _build_one(root, model, dockerfile, options, creds, reporter, target, arch)
                    except interrupts.Interrupted as exc:
                        outcome.interrupted = exc
                        outcome.failures.append(
                            {**_failure(model, f"interrupted by {exc.name}", dockerfile, arch), "interrupted": True}
                        )
                        reporter.model_done(model["name"], "build", "FAILURE", f"interrupted by {exc.name}")
                        break
                    except MadengineError as exc:
                        failed[image] = exc.one_line()
                        outcome.failures.append(_failure(model, exc.one_line(), dockerfile, arch))
                        if "push of" in exc.msg:
                            outcome.manifest["summary"]["failed_pushes"].append(
                                {"model": model["name"], "error": exc.one_line()}
                            )
                        reporter.model_done(model["name"], "build", "FAILURE", exc.one_line())
                        continue
                    built[image] = record
                    outcome.successes.append(record)
                    if record.get("registry_image"):
                        outcome.manifest["summary"]["successful_pushes"].append(record["registry_image"])
                    reporter.model_done(model["name"], "build", "CACHED" if record["cached"] else "BUILT", image)
                built_model = dict(model)
                if record.get("registry_image"):
                    env_vars = dict(built_model.get("env_vars") or {})
                    env_vars["DOCKER_IMAGE_NAME"] = record["registry_image"]
                    built_model["env_vars"] = env_vars
                key = manifest.selection_key(outcome.manifest, image)
                outcome.manifest["built_images"][key] = record
                outcome.manifest["built_models"][key] = built_model
            if outcome.interrupted is not None:
                outcome.not_started = list(models[index + 1 :])
                break
        outcome.interrupted = outcome.interrupted or interrupts.take()
    prebuilt.add_skipped_entries(
        root, outcome.manifest, batch, ctx, match["gpu_vendor"], options.registry, outcome.failures
    )
    summary = outcome.manifest["summary"]
    summary["successful_builds"] = list(outcome.successes)
    summary["failed_builds"] = list(outcome.failures)
    summary["total_build_time"] = round(time.monotonic() - started, 3)
    outcome.manifest["credentials_required"] = sorted(
        {m.get("cred") for m in outcome.manifest["built_models"].values() if m.get("cred")}
    )
    if not options.check_only and outcome.interrupted is None:  # an interrupted build leaves the old manifest
        manifest.write_manifest(os.path.join(root, options.manifest_output), outcome.manifest)
    return outcome


def _failure(model: Mapping[str, Any], error: str, dockerfile: str = "", arch: Optional[str] = None) -> Dict[str, Any]:
    failure: Dict[str, Any] = {"model": model["name"], "error": error}
    if dockerfile:
        failure["dockerfile"] = dockerfile
    if arch:
        failure["architecture"] = arch
    if model.get("args"):
        failure["args"] = model["args"]
    return failure


def target_architectures(options: BuildOptions, reporter: Reporter) -> List[Optional[str]]:
    """[None] for a plain build; one entry per --target-archs value otherwise."""
    archs: List[Optional[str]] = []
    for value in options.target_archs:
        archs.extend(dockerfiles.normalise_arch(a) for a in str(value).split(",") if a.strip())
    if archs and (options.context.get("docker_build_arg") or {}).get("MAD_SYSTEM_GPU_ARCHITECTURE"):
        reporter.info("--target-archs ignored: docker_build_arg sets MAD_SYSTEM_GPU_ARCHITECTURE")
        return [None]
    return list(dict.fromkeys(archs)) or [None]


def _use_image(root: str, options: BuildOptions) -> BuildOutcome:
    if options.registry:
        raise ConfigError("--use-image and --registry cannot be used together")
    if options.batch_manifest:
        raise ConfigError("--use-image and --batch-manifest cannot be used together")
    data = prebuilt.use_image_manifest(
        root, str(options.use_image), list(options.tags), options.context, options.default_vendor
    )
    outcome = BuildOutcome(data, [data["built_models"][k] for k in data["built_models"]])
    if not options.check_only:
        manifest.write_manifest(os.path.join(root, options.manifest_output), data)
    return outcome


def _build_one(
    root: str,
    model: Mapping[str, Any],
    dockerfile: str,
    options: BuildOptions,
    creds: Mapping[str, Any],
    reporter: Reporter,
    target: Optional[PushTarget],
    arch: Optional[str] = None,
) -> Dict[str, Any]:
    name = model["name"]
    image = dockerfiles.image_name(name, dockerfile, arch)
    with open(os.path.join(root, dockerfile), encoding="utf-8", errors="replace") as handle:
        text = handle.read()
    user_args = dict(options.context.get("docker_build_arg") or {})
    secrets = secret_env()
    cred_args = model_credential_env(model, creds)
    build_args = {**user_args, **secrets, **cred_args}
    if arch:
        build_args["MAD_SYSTEM_GPU_ARCHITECTURE"] = arch
    secret_names = sorted(set(secrets) | set(cred_args))
    base = dockerfiles.base_docker(text, build_args)
    if dockerfiles.needs_gpu_architecture(text, build_args):
        reporter.warn(
            f"{dockerfile} declares ARG MAD_SYSTEM_GPU_ARCHITECTURE without a default; pass it with "
            """-c '{"docker_build_arg": {"MAD_SYSTEM_GPU_ARCHITECTURE": "gfx942"}}'"""
        )
    context_dir = os.path.normpath(os.path.join(root, dockerfiles.build_context_dir(model)))
    if not os.path.isdir(context_dir):
        source = f"its 'dockercontext' {model['dockercontext']!r}" if model.get("dockercontext") else "the default"
        raise BuildError(
            f"model '{name}': build context {os.path.relpath(context_dir, root)} ({source}) is not a directory",
            hint="set 'dockercontext' in its card to a directory of the package",
        )
    log_name = dockerfiles.build_log_name(name, dockerfile, arch)
    request = images.BuildRequest(
        image=image,
        dockerfile=os.path.join(root, dockerfile),
        context_dir=context_dir,
        build_args=build_args,
        secret_arg_names=secret_names,
        labels={images.MODEL_LABEL: name},
        no_cache=options.clean_docker_cache,
    )
    if options.check_only:  # predict from the content hash; touch nothing
        result = images.build(request, base, lambda _text: None, check_only=True)
    else:
        with open(os.path.join(root, log_name), "w", encoding="utf-8") as log:

            def sink(text: str) -> None:
                log.write(text)
                log.flush()
                if options.live_output:
                    reporter.live(text)

            result = images.build(request, base, sink)
            if result.cached:
                sink(f"Image {image} is up to date (content hash {result.content_hash}); not rebuilt.\n")
    record: Dict[str, Any] = {
        "model": name,
        "docker_image": image,
        "dockerfile": dockerfile,
        "base_docker": base,
        "docker_sha": images.repo_digest(base) if base else "",
        "build_duration": round(result.duration, 3),
        "build_command": _display_build_command(
            image, dockerfile, os.path.relpath(context_dir, root), build_args, secret_names, options.clean_docker_cache
        ),
        "log_file": log_name,
        "gpu_vendor": dockerfiles.infer_gpu_vendor(dockerfile, text),
        "image_id": result.image_id,
        "content_hash": result.content_hash,
        "cached": result.cached,
    }
    arch = dockerfiles.gpu_architecture(text, build_args)
    if arch:
        record["gpu_architecture"] = arch
    registry = (target.registry if target else "") or options.registry
    if registry and not options.check_only:
        remote = (target.image if target else "") or registry_image(creds, registry, image)
        auth = registry_auth(creds, registry)
        with open(os.path.join(root, log_name), "a", encoding="utf-8") as log:
            digest = images.push(image, remote, auth, log.write)
        record["registry"] = registry
        record["registry_image"] = remote
        record["image_digest"] = f"{images.repository(remote)}@{digest}"
    return record
