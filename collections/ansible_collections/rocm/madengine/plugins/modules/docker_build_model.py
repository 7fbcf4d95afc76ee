#!/usr/bin/python
# Copyright (c) 2026, madengine developers
# MIT License (see LICENSE or https://opensource.org/licenses/MIT)
# SPDX-License-Identifier: MIT

from __future__ import annotations

DOCUMENTATION = r"""
module: docker_build_model
short_description: Build the Docker images of MAD models and write the build manifest
version_added: 0.1.0
description:
  - Builds the image of every model the O(tags) select, on the target's Docker engine, like C(madengine build).
    The Dockerfiles are chosen by the models' C(dockerfile) prefix and their C(# CONTEXT) headers, for the
    GPU vendor of O(additional_context) or else of the target (a host without GPUs builds CPU images).
  - Images are cached by content. A hash of the Dockerfile, the build context, the build arguments (secret
    values excluded) and the base image id is stored in the image label C(org.madengine.content-hash); an image
    whose label matches is not rebuilt and does not count as a change.
  - Writes the build manifest (O(manifest_output)) and one C(<model>_<dockerfile>.build.live.log) per image
    in O(package_dir).
  - With O(registry), every image is pushed after it is built or found current, on every run. A push is not
    reported as a change (the module cannot tell whether the registry already held the same image), so this
    part is not idempotent in what it does, only in what it reports.
author:
  - madengine developers (!UNKNOWN)
extends_documentation_fragment:
  - rocm.madengine.common
  - rocm.madengine.common.actiongroup
  - rocm.madengine.common.attributes
attributes:
  check_mode:
    support: full
    details:
      - The content hash of each image is computed and compared with the existing image's label; nothing is built
        or pushed and the manifest is not written.
      - The build logs in O(package_dir) are left as they are.
  diff_mode:
    support: none
  idempotent:
    support: partial
    details:
      - An unchanged image is not rebuilt. O(clean_docker_cache=true) rebuilds every image on every run.
      - Images are pushed to O(registry) again on every run (not reported as a change).
options:
  tags:
    description:
      - Model names or tags selecting the models to build (see M(rocm.madengine.discover_models)).
      - Required unless O(batch_manifest) is given; cannot be combined with it.
    type: list
    elements: str
  registry:
    description:
      - Push the built images to this registry (V(host[:port]), or V(dockerhub) with a repository configured in
        C(credential.json)).
      - Images are pushed as C(<registry>/<image>), or C(<registry>/<repository>:<image>) when C(credential.json)
        names a repository for the registry.
    type: str
  registry_username:
    description:
      - User name for O(registry); overrides the registry's entry in C(credential.json).
    type: str
  registry_password:
    description:
      - Password or token for O(registry_username). Never logged and never returned.
    type: str
  manifest_output:
    description:
      - The build manifest to write, relative to O(package_dir).
    type: str
    default: build_manifest.json
  clean_docker_cache:
    description:
      - Build without the Docker layer cache and regardless of the content hash.
    type: bool
    default: false
  target_archs:
    description:
      - Build one image per GPU architecture (V(gfx942), V(MI300X), ...), each with
        C(MAD_SYSTEM_GPU_ARCHITECTURE) as build argument. Comma-separated values in one item are split.
      - Ignored when O(additional_context) sets C(docker_build_arg.MAD_SYSTEM_GPU_ARCHITECTURE).
    type: list
    elements: str
    default: []
  batch_manifest:
    description:
      - A JSON list of C({model_name, build_new, registry, registry_image}) objects selecting the models instead of
        O(tags); models with C(build_new=false) are added to the manifest without being built.
      - A relative path is taken relative to O(package_dir).
    type: path
  use_image:
    description:
      - Do not build; write a manifest that runs the selected models in this existing image (V(auto) uses the
        models' C(env_vars.DOCKER_IMAGE_NAME)).
    type: str
  fail_on_error:
    description:
      - Fail the task when a build (or push) fails. With V(false) the task succeeds and RV(failed_builds) lists
        the failures; the manifest holds the images that were built.
    type: bool
    default: true
requirements:
  - Python >= 3.9 and the Python C(docker) package (7.0 or later) on the target.
  - A Docker engine on the target that the connecting user may use.
seealso:
  - module: rocm.madengine.discover_models
  - module: rocm.madengine.run_model
  - module: community.docker.docker_image_build
    description: A general-purpose image builder.
"""

EXAMPLES = r"""
- name: Build the images of two models
  rocm.madengine.docker_build_model:
    package_dir: /opt/MAD
    tags:
      - pyt_huggingface_bert
      - dummy
  register: madengine_build

- name: Build AMD images for two architectures on a CPU build host and push them
  rocm.madengine.docker_build_model:
    package_dir: /opt/MAD
    tags: [pyt_huggingface_bert]
    additional_context:
      gpu_vendor: AMD
    target_archs: [gfx942, gfx90a]
    registry: registry.example.com:5000
    registry_username: ci
    registry_password: "{{ vault_registry_password }}"

- name: Would anything be rebuilt?
  rocm.madengine.docker_build_model:
    package_dir: /opt/MAD
    tags: [dummy]
  check_mode: true
  register: madengine_prediction
"""

RETURN = r"""
manifest:
  description: The absolute path of the build manifest (in check mode it is not written).
  returned: success
  type: str
  sample: /opt/MAD/build_manifest.json
images:
  description: The images of the manifest, one per model and Dockerfile (and architecture).
  returned: success
  type: list
  elements: dict
  contains:
    model:
      description: The model name.
      type: str
      sample: dummy
    docker_image:
      description: The local image name.
      type: str
      sample: ci-dummy_dummy.ubuntu.cpu
    dockerfile:
      description: The Dockerfile, relative to O(package_dir) (empty for prebuilt images).
      type: str
      sample: docker/dummy.ubuntu.cpu.Dockerfile
    built:
      description: Whether the image was built by this task (in check mode, whether it would be).
      type: bool
      sample: true
    cached:
      description: Whether an image with the same content hash existed, so nothing was built.
      type: bool
      sample: false
    image_id:
      description: The image id (empty in check mode for an image that would be built).
      type: str
      sample: sha256:1d9e14cf3085...
    content_hash:
      description: The content hash stored in the image label C(org.madengine.content-hash).
      type: str
      sample: sha256:5c0e...
    registry_image:
      description: Where the image was pushed (empty without O(registry)).
      type: str
      sample: registry.example.com:5000/ci-dummy_dummy.ubuntu.cpu
    image_digest:
      description: The pushed image's C(repository@digest) (empty without O(registry)).
      type: str
      sample: registry.example.com:5000/ci-dummy_dummy.ubuntu.cpu@sha256:7d3a...
    log_file:
      description: The absolute path of the build log (empty for prebuilt images).
      type: str
      sample: /opt/MAD/dummy_dummy.ubuntu.cpu.build.live.log
failed_builds:
  description:
    - The builds and pushes that failed, each with a one-line error and the tail of its build log.
    - Returned on failure too.
  returned: always
  type: list
  elements: dict
  sample:
    - model: dummy_noheader
      dockerfile: docker/dummy_noheader.ubuntu.cpu.Dockerfile
      error: "docker build of ci-dummy_noheader_dummy_noheader.ubuntu.cpu failed: ..."
      log_file: /opt/MAD/dummy_noheader_dummy_noheader.ubuntu.cpu.build.live.log
      log_tail: ["Step 1/2 : FROM ...", "..."]
"""

import os  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.rocm.madengine.plugins.module_utils import ansible_glue as glue  # noqa: E402
from ansible_collections.rocm.madengine.plugins.module_utils import dockerfiles, workflow  # noqa: E402
from ansible_collections.rocm.madengine.plugins.module_utils.build import BuildOptions  # noqa: E402

LOG_TAIL_LINES = 20


def image_list(root, data, successes):
    built = {record["docker_image"]: not record.get("cached") for record in successes}
    result = []
    for key, record in (data.get("built_images") or {}).items():
        model = (data.get("built_models") or {}).get(key) or {}
        log_file = str(record.get("log_file") or "")
        result.append(
            {
                "model": str(record.get("model") or model.get("name") or key),
                "docker_image": str(record.get("docker_image") or key),
                "dockerfile": str(record.get("dockerfile") or ""),
                "built": built.get(record.get("docker_image") or key, False),
                "cached": bool(record.get("cached", False)),
                "image_id": str(record.get("image_id") or ""),
                "content_hash": str(record.get("content_hash") or ""),
                "registry_image": str(record.get("registry_image") or ""),
                "image_digest": str(record.get("image_digest") or ""),
                "log_file": glue.under(root, log_file) if log_file else "",
            }
        )
    return result


def failure_list(root, failures):
    result = []
    for failure in failures:
        item = dict(failure)
        if failure.get("dockerfile"):
            log = glue.under(
                root, dockerfiles.build_log_name(failure["model"], failure["dockerfile"], failure.get("architecture"))
            )
            if os.path.isfile(log):
                item["log_file"] = log
                item["log_tail"] = glue.log_tail(log, LOG_TAIL_LINES)
        result.append(item)
    return result


def main():
    module = AnsibleModule(
        argument_spec={
            "package_dir": {"type": "path", "required": True},
            "additional_context": {"type": "dict", "default": {}},
            "tags": {"type": "list", "elements": "str"},
            "registry": {"type": "str"},
            "registry_username": {"type": "str"},
            "registry_password": {"type": "str", "no_log": True},
            "manifest_output": {"type": "str", "default": "build_manifest.json"},
            "clean_docker_cache": {"type": "bool", "default": False},
            "target_archs": {"type": "list", "elements": "str", "default": []},
            "batch_manifest": {"type": "path"},
            "use_image": {"type": "str"},
            "fail_on_error": {"type": "bool", "default": True},
        },
        required_one_of=[("tags", "batch_manifest")],
        mutually_exclusive=[("tags", "batch_manifest"), ("use_image", "batch_manifest"), ("use_image", "registry")],
        required_together=[("registry_username", "registry_password")],
        required_by={"registry_username": "registry"},
        supports_check_mode=True,
    )
    params = module.params
    root = glue.package_root(module)
    ctx = glue.context_of(module)
    credentials = {}
    if params["registry"] and params["registry_username"]:
        credentials[params["registry"]] = {
            "username": params["registry_username"],
            "password": params["registry_password"],
        }
    options = BuildOptions(
        tags=list(params["tags"] or []),
        context=ctx,
        registry=params["registry"],
        clean_docker_cache=params["clean_docker_cache"],
        manifest_output=params["manifest_output"],
        check_only=module.check_mode,
        batch_manifest=glue.under(root, params["batch_manifest"]) if params["batch_manifest"] else None,
        use_image=params["use_image"],
        target_archs=list(params["target_archs"]),
        extra_credentials=credentials,
    )
    result = glue.call_core(module, "", workflow.do_build, root, options, glue.ModuleReporter(module))
    outcome = result.build
    failed = failure_list(root, outcome.failures)
    summary = {
        "changed": outcome.changed,
        "manifest": glue.under(root, params["manifest_output"]),
        "images": image_list(root, outcome.manifest, outcome.successes),
        "failed_builds": failed,
    }
    if failed and params["fail_on_error"]:
        shown = "; ".join(f"{f['model']}: {f.get('error', '')}" for f in failed[:3])
        more = f" (and {len(failed) - 3} more)" if len(failed) > 3 else ""
        module.fail_json(msg=f"{len(failed)} build(s) failed: {shown}{more}", **summary)
    module.exit_json(**summary)


if __name__ == "__main__":
    main()
