#!/usr/bin/python
# Copyright (c) 2026, madengine developers
# MIT License (see LICENSE or https://opensource.org/licenses/MIT)
# SPDX-License-Identifier: MIT

from __future__ import annotations

DOCUMENTATION = r"""
module: discover_models
short_description: List the models of a MAD package, or those some tags select
version_added: 0.1.0
description:
  - Reads the models of a MAD package on the target, like C(madengine discover) does; C(models.json),
    C(scripts/<dir>/models.json) and C(scripts/<dir>/get_models_json.py).
  - With O(tags), returns the models the tags select, in tag order, with extra arguments from C(:k=v) tag
    suffixes appended to their C(args); without, every model of the package.
  - Reads only; nothing on the target changes. Note that C(get_models_json.py) scripts of the package are
    executed to list their models; what they print goes to stderr, never into the module's result.
  - Returns a warning for each listed model whose card lacks C(dockerfile) or C(scripts), or whose Dockerfile
    prefix matches no C(<prefix>.*) file (a build of it would fail).
author:
  - madengine developers (!UNKNOWN)
extends_documentation_fragment:
  - rocm.madengine.common
  - rocm.madengine.common.actiongroup
  - rocm.madengine.common.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: N/A
    details: The module changes nothing.
  idempotent:
    support: full
options:
  tags:
    description:
      - Model names or tags; V(all); V(dir/model), V(dir/all) or V(dir/<tag>) for the models of
        C(scripts/<dir>); a C(:k=v) suffix appends C( --k v) to the model's arguments.
      - Comma-separated values in one item are split.
      - A tag that selects nothing (the error suggests close model names and tags), an empty item, or a tag
        that can be read in two ways selecting different models, is an error.
      - The same model with different C(:k=v) suffixes is selected once per distinct argument string.
      - Empty (the default) returns every model of the package.
    type: list
    elements: str
    default: []
  additional_context:
    description:
      - Not used to select models; accepted and validated so that one O(additional_context) can be set for the
        whole C(group/rocm.madengine.madengine) in C(module_defaults).
requirements:
  - Python >= 3.9 on the target.
seealso:
  - module: rocm.madengine.docker_build_model
notes:
  - The package is read where the module runs; use C(delegate_to) to read a package on the controller.
"""

EXAMPLES = r"""
- name: Every model of the package
  rocm.madengine.discover_models:
    package_dir: /opt/MAD
  register: madengine_all

- name: The models two tags select
  rocm.madengine.discover_models:
    package_dir: /opt/MAD
    tags:
      - pyt_huggingface_bert
      - dummy2/model1:batch-size=32
  register: madengine_selected

- name: Show their names
  ansible.builtin.debug:
    var: madengine_selected.names
"""

RETURN = r"""
models:
  description:
    - The selected model cards (all of them without O(tags)), as dictionaries.
    - Scoped models are named C(<dir>/<model>) and their C(dockerfile) and C(scripts) paths are relative to
      O(package_dir).
  returned: success
  type: list
  elements: dict
  sample:
    - name: dummy
      dockerfile: docker/dummy
      scripts: scripts/dummy/run.sh
      tags: [dummies]
      args: ""
names:
  description: The names of RV(models), in the same order.
  returned: success
  type: list
  elements: str
  sample: [dummy, dummy2/model1]
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.rocm.madengine.plugins.module_utils import ansible_glue as glue  # noqa: E402
from ansible_collections.rocm.madengine.plugins.module_utils.discovery import card_warnings, discover  # noqa: E402
from ansible_collections.rocm.madengine.plugins.module_utils.tags import select_models  # noqa: E402


def list_models(root, tags):
    """(models, warnings about their cards)."""
    catalog = discover(root)
    models = select_models(tags, catalog) if tags else [model.resolve() for model in catalog.models]
    return models, card_warnings(catalog, models)


def main():
    module = AnsibleModule(
        argument_spec={
            "package_dir": {"type": "path", "required": True},
            "tags": {"type": "list", "elements": "str", "default": []},
            "additional_context": {"type": "dict", "default": {}},
        },
        supports_check_mode=True,
    )
    root = glue.package_root(module)
    glue.context_of(module)
    models, warnings = glue.call_core(module, "package_dir", list_models, root, module.params["tags"])
    for warning in warnings:
        module.warn(warning)
    module.exit_json(changed=False, models=models, names=[m["name"] for m in models])


if __name__ == "__main__":
    main()
