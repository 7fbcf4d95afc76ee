# Copyright (c) 2026, madengine developers
# MIT License (see LICENSE or https://opensource.org/licenses/MIT)
# SPDX-License-Identifier: MIT

from __future__ import annotations


class ModuleDocFragment:
    """Options and attributes shared by the rocm.madengine modules."""

    # package_dir and additional_context: the modules that read a MAD package.
    DOCUMENTATION = r"""
options:
  package_dir:
    description:
      - The root of the MAD package on the target (the directory that holds C(models.json)).
      - Relative paths given to other options are taken relative to it; the target's working directory
        does not matter.
    type: path
    required: true
  additional_context:
    description:
      - The additional context of madengine, as a dictionary (what C(madengine -c) takes as JSON).
      - Known keys include C(gpu_vendor) (V(AMD), V(NVIDIA), V(CPU)), C(guest_os), C(docker_build_arg),
        C(docker_env_vars), C(docker_mounts), C(docker_gpus), C(docker_cpus), C(model_args) and the log
        scan keys; any other string key is matched against Dockerfile C(# CONTEXT {...}) headers.
      - Unknown, misplaced or not yet supported keys are errors that name the key.
    type: dict
    default: {}
"""

    # Attributes every module of the collection shares.
    ACTIONGROUP = r"""
options: {}
attributes:
  action_group:
    description: Use C(group/rocm.madengine.madengine) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - rocm.madengine.madengine
"""

    # The descriptions of the attributes every module documents; each module gives their support and details.
    ATTRIBUTES = r"""
options: {}
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second invocation
      indicates no change.
"""
