#!/usr/bin/python
# Copyright (c) 2026, madengine developers
# MIT License (see LICENSE or https://opensource.org/licenses/MIT)
# SPDX-License-Identifier: MIT

from __future__ import annotations

DOCUMENTATION = r"""
module: run_model
short_description: Run the models of a build manifest in containers and collect their performance rows
version_added: 0.1.0
description:
  - Runs every image of a build manifest (written by M(rocm.madengine.docker_build_model)) on the target's Docker
    engine, one container per model, like C(madengine run --manifest-file). Nothing is built; an image the
    target lacks is pulled from its registry.
  - >-
    Each model's output is parsed for C(performance: <value> <metric>) (or its C(multiple_results) CSV); every
    attempted model ends as at least one row with a status (V(SUCCESS), V(FAILURE), V(SKIPPED)) and, when it
    failed, a C(failure_reason) (V(NO_METRIC), V(TIMEOUT), V(EXIT_CODE), V(ERROR_PATTERN), V(IMAGE_MISSING),
    V(VENDOR_MISMATCH), ...). A run without a metric fails.
  - The rows are appended to O(output) and written to C(perf_entry.json) and C(perf_entry.csv) in
    O(package_dir); each model's output goes to C(<model>_<dockerfile>.run.live.log) there. The task returns the
    rows, the log paths and short log tails, never whole logs.
  - Not idempotent, like running a command; every run appends rows. Containers are removed after each model
    unless O(keep_alive=true).
  - With O(state=absent) it stops the run O(run_id) on the target instead, as Ctrl-C would, for example after the
    controller lost an async job or to cancel a fleet run; see O(state).
author:
  - madengine developers (!UNKNOWN)
extends_documentation_fragment:
  - rocm.madengine.common
  - rocm.madengine.common.actiongroup
  - rocm.madengine.common.attributes
attributes:
  check_mode:
    support: none
    details:
      - Whether a model succeeds cannot be predicted without running it; the task is skipped in check mode.
  diff_mode:
    support: none
  idempotent:
    support: N/A
    details:
      - Every invocation runs the models again (like M(community.docker.docker_container_exec)).
options:
  state:
    description:
      - V(present) runs the models.
      - V(absent) stops the run O(run_id) on the target. Each live madengine process that owns one of its
        containers gets SIGTERM (it stops its container, writes V(INTERRUPTED) and V(NOT_STARTED) rows and
        exits); once they ended, the containers and run directories the run left (a killed process's) are
        removed. Nothing is run. Changed when anything was stopped or removed.
    type: str
    choices: [present, absent]
    default: present
  manifest_file:
    description:
      - The build manifest whose images run, relative to O(package_dir).
    type: str
    default: build_manifest.json
  timeout:
    description:
      - Seconds each model may run before its container is killed (a V(TIMEOUT) failure).
      - V(-1) uses the model's own C(timeout), else 7200 seconds; V(0) means no timeout.
      - For long runs, also give the task C(async) and C(poll) so that the connection does not time out.
    type: int
    default: -1
  repeat:
    description:
      - Run each model this many times, one after another; each run is a row with its C(repeat) index (1..N).
      - With V(1) the C(repeat) column stays empty.
    type: int
    default: 1
  output:
    description:
      - The perf CSV to append the rows to, relative to O(package_dir).
    type: str
    default: perf.csv
  keep_alive:
    description:
      - Leave each container running (and the model directory in place) after the model ends.
    type: bool
    default: false
  keep_model_dir:
    description:
      - Keep C(run_directory) (the copy of the model's scripts) after the run.
    type: bool
    default: false
  skip_model_run:
    description:
      - Prepare everything (image, GPUs, environment) but do not start the containers; rows are V(SKIPPED).
    type: bool
    default: false
  disable_skip_gpu_arch:
    description:
      - Run models even on the GPU architectures their C(skip_gpu_arch) lists.
    type: bool
    default: false
  container_suffix:
    description:
      - Appended to each container name, so that several runs sharing one Docker engine (a fleet of test hosts,
        parallel jobs) do not collide. The C(rocm.madengine.run) role passes the inventory hostname.
    type: str
    default: ""
  run_id:
    description:
      - Written to the C(run_id) column of every row, to tell one run's rows from another's (default a random id).
      - Give all hosts of one benchmark the same value to merge their rows by it.
      - Up to 128 letters, digits and C(. _ @ + -), starting with a letter or digit.
      - Required with O(state=absent), naming the run to stop.
    type: str
  machine_name:
    description:
      - The C(machine_name) of the rows (default the target's host name).
    type: str
  registry:
    description:
      - The registry whose credentials O(registry_username) and O(registry_password) are, for pulling images
        the target lacks (overrides the registry's entry in C(credential.json)).
    type: str
  registry_username:
    description:
      - User name for O(registry).
    type: str
  registry_password:
    description:
      - Password or token for O(registry_username). Never logged and never returned.
    type: str
  log_tail_lines:
    description:
      - How many of the last lines of each model's log to return in RV(logs[].log_tail); V(0) returns none.
    type: int
    default: 20
  fail_on_error:
    description:
      - Fail the task when any row is a V(FAILURE). With V(false) the task succeeds and the failures are in
        RV(rows), RV(logs) and RV(summary).
      - A run stopped by SIGINT, SIGTERM or SIGHUP always fails, after the running model's container was stopped
        and removed and every model got its row (C(INTERRUPTED) for the running one, C(NOT_STARTED) for the rest).
    type: bool
    default: true
requirements:
  - Python >= 3.9 and the Python C(docker) package (7.0 or later) on the target.
  - A Docker engine on the target that the connecting user may use; for GPU models, the vendor's driver and
    tools (C(amd-smi) or C(rocm-smi), C(nvidia-smi)) to detect the GPUs.
seealso:
  - module: rocm.madengine.docker_build_model
  - module: rocm.madengine.parse_perf
"""

EXAMPLES = r"""
- name: Run the models of the manifest
  rocm.madengine.run_model:
    package_dir: /opt/MAD
    manifest_file: build_manifest.json
    timeout: 3600
  register: madengine_run

- name: Run on every GPU host of a fleet that shares one Docker engine, collecting failures instead of failing
  rocm.madengine.run_model:
    package_dir: /opt/MAD
    additional_context:
      docker_env_vars:
        HF_HOME: /data/hf
    container_suffix: "{{ inventory_hostname }}"
    machine_name: "{{ inventory_hostname }}"
    run_id: "{{ madengine_run_id }}"
    fail_on_error: false
  async: 7200
  poll: 30
  register: madengine_run

- name: Show the failures
  ansible.builtin.debug:
    msg: "{{ madengine_run.logs | selectattr('status', 'equalto', 'FAILURE') | list }}"
"""

RETURN = r"""
rows:
  description:
    - The perf rows of this run, one per model (several for a C(multiple_results) model), keyed by the perf.csv
      column names (C(model), C(performance), C(metric), C(status), C(failure_reason), C(exit_code),
      C(docker_image), C(image_digest), C(run_id), ...).
  returned: success, and when a model failed
  type: list
  elements: dict
  sample:
    - model: dummy
      performance: "1234"
      metric: samples_per_second
      status: SUCCESS
      failure_reason: ""
      run_id: 5f0c2a9d1e3b
summary:
  description: Which models succeeded and failed (C(successful_runs), C(failed_runs) lists) and the counts.
  returned: success, and when a model failed
  type: dict
  sample:
    successful_runs:
      - model: dummy
        image: ci-dummy_dummy.ubuntu.cpu
        status: SUCCESS
        performance: "1234"
        duration: 0.61
        log: /opt/MAD/dummy_dummy.ubuntu.cpu.run.live.log
    failed_runs: []
    total_runs: 1
    session_row_count: 1
perf_csv:
  description: The absolute path of the perf CSV the rows were appended to.
  returned: success, and when a model failed
  type: str
  sample: /opt/MAD/perf.csv
run_id:
  description: The run id written to the rows.
  returned: success, and when a model failed
  type: str
  sample: 5f0c2a9d1e3b
interrupted:
  description: The signal that stopped the run (V(SIGTERM), V(SIGINT), V(SIGHUP)), or null.
  returned: success, and when a model failed
  type: str
  sample: null
stopped:
  description: The process ids of the run's madengine processes that got SIGTERM.
  returned: when O(state=absent)
  type: list
  elements: int
  sample: [41877]
removed:
  description: What the run had left behind and was removed (C(kind) V(container) or V(run directory), C(name)).
  returned: when O(state=absent)
  type: list
  elements: dict
  sample:
    - kind: container
      name: container_ci-dummy_dummy.ubuntu.cpu_gpu-node-0_20261203T101500Z
logs:
  description: One entry per model, with its status, its log's path and the last O(log_tail_lines) lines.
  returned: success, and when a model failed
  type: list
  elements: dict
  contains:
    model:
      description: The model name.
      type: str
      sample: dummy_exit
    status:
      description: V(SUCCESS), V(FAILURE) or V(SKIPPED).
      type: str
      sample: FAILURE
    failure_reason:
      description: Why the model failed (empty when it did not).
      type: str
      sample: EXIT_CODE
    log_path:
      description: The absolute path of the model's run log (empty when no container ran).
      type: str
      sample: /opt/MAD/dummy_exit_dummy.ubuntu.cpu.run.live.log
    log_tail:
      description: The last lines of the log.
      type: list
      elements: str
      sample: ["exiting with 3", "Test Duration: 0.52 seconds"]
"""

import os  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.rocm.madengine.plugins.module_utils import ansible_glue as glue  # noqa: E402
from ansible_collections.rocm.madengine.plugins.module_utils import cleanup, workflow  # noqa: E402
from ansible_collections.rocm.madengine.plugins.module_utils.run import RunOptions, check_run_id  # noqa: E402


def log_entries(summary, lines):
    entries = []
    for record in list(summary["successful_runs"]) + list(summary["failed_runs"]):
        path = str(record.get("log") or "")
        entries.append(
            {
                "model": record["model"],
                "status": record["status"],
                "failure_reason": str(record.get("failure_reason") or ""),
                "log_path": path,
                "log_tail": glue.log_tail(path, lines),
            }
        )
    return sorted(entries, key=lambda entry: entry["model"])


def stop(module, root):
    run_id = glue.call_core(module, "run_id", check_run_id, module.params["run_id"], "run_id:")
    outcome = glue.call_core(module, "run_id", cleanup.stop_run, root, run_id)
    result = {
        "changed": bool(outcome.signalled or outcome.removed),
        "run_id": run_id,
        "stopped": outcome.signalled,
        "removed": [{"kind": item.kind, "name": item.name} for item in outcome.removed],
    }
    if outcome.still_running or outcome.errors:
        waiting = f"processes {outcome.still_running} did not end; " if outcome.still_running else ""
        module.fail_json(msg=f"run {run_id}: {waiting}{'; '.join(outcome.errors)}".rstrip("; "), **result)
    module.exit_json(**result)


def main():
    module = AnsibleModule(
        argument_spec={
            "package_dir": {"type": "path", "required": True},
            "additional_context": {"type": "dict", "default": {}},
            "manifest_file": {"type": "str", "default": "build_manifest.json"},
            "repeat": {"type": "int", "default": 1},
            "timeout": {"type": "int", "default": -1},
            "output": {"type": "str", "default": "perf.csv"},
            "keep_alive": {"type": "bool", "default": False},
            "keep_model_dir": {"type": "bool", "default": False},
            "skip_model_run": {"type": "bool", "default": False},
            "disable_skip_gpu_arch": {"type": "bool", "default": False},
            "container_suffix": {"type": "str", "default": ""},
            "run_id": {"type": "str"},
            "machine_name": {"type": "str"},
            "registry": {"type": "str"},
            "registry_username": {"type": "str"},
            "registry_password": {"type": "str", "no_log": True},
            "log_tail_lines": {"type": "int", "default": 20},
            "fail_on_error": {"type": "bool", "default": True},
            "state": {"type": "str", "default": "present", "choices": ["present", "absent"]},
        },
        required_if=[("state", "absent", ["run_id"])],
        required_together=[("registry_username", "registry_password")],
        required_by={"registry_username": "registry"},
        supports_check_mode=False,
    )
    params = module.params
    if params["timeout"] < -1:
        module.fail_json(
            msg=f"timeout: {params['timeout']} is not allowed; use -1 (the model's own), 0 (none) or seconds",
            option="timeout",
        )
    if params["log_tail_lines"] < 0:
        module.fail_json(msg="log_tail_lines: must be 0 or more", option="log_tail_lines")
    root = glue.package_root(module)
    if params["state"] == "absent":
        stop(module, root)
    # This module runs the models on this host: a target section in the context belongs to slurm_submit/k8s_job.
    ctx = {k: v for k, v in glue.context_of(module).items() if k not in ("slurm", "k8s", "kubernetes", "deploy")}
    credentials = {}
    if params["registry"] and params["registry_username"]:
        credentials[params["registry"]] = {
            "username": params["registry_username"],
            "password": params["registry_password"],
        }
    options = RunOptions(
        context=ctx,
        timeout=None if params["timeout"] == -1 else params["timeout"],
        keep_alive=params["keep_alive"],
        keep_model_dir=params["keep_model_dir"],
        skip_model_run=params["skip_model_run"],
        output=params["output"],
        disable_skip_gpu_arch=params["disable_skip_gpu_arch"],
        container_suffix=params["container_suffix"],
        extra_credentials=credentials,
        machine_name=params["machine_name"] or "",
        repeat=params["repeat"],
    )
    if params["run_id"]:
        options.run_id = glue.call_core(module, "run_id", check_run_id, params["run_id"], "run_id:")
    result = glue.call_core(
        module,
        "",
        workflow.execute,
        root,
        options,
        params["manifest_file"],
        None,
        glue.ModuleReporter(module),
    )
    rows = workflow.session_rows(result)
    outcome = {
        "changed": any(str(row.get("test_duration") or "") != "" for row in rows),
        "rows": rows,
        "summary": result.summary,
        "perf_csv": os.path.join(root, params["output"]),
        "run_id": options.run_id,
        "logs": log_entries(result.summary, params["log_tail_lines"]),
        "interrupted": result.interrupted.name if result.interrupted else None,
    }
    if result.interrupted is not None:
        module.fail_json(
            msg=f"interrupted by {result.interrupted.name}: the running model's container was stopped and removed; "
            f"every model has its row in {outcome['perf_csv']}",
            **outcome,
        )
    glue.exit_with_rows(module, rows, params["fail_on_error"], "; see logs[].log_tail and logs[].log_path", **outcome)


if __name__ == "__main__":
    main()
