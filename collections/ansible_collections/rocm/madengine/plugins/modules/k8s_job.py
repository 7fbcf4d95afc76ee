#!/usr/bin/python
# Copyright (c) 2026, madengine developers
# MIT License (see LICENSE or https://opensource.org/licenses/MIT)
# SPDX-License-Identifier: MIT

from __future__ import annotations

DOCUMENTATION = r"""
module: k8s_job
short_description: Run the models of a build manifest as Kubernetes Jobs and collect their performance rows
version_added: 0.3.0
description:
  - Runs where a kubeconfig reaches the cluster (a controller, a CI runner). Every model of the manifest becomes its
    own C(batch/v1) Job (an Indexed Job and a headless Service for multi-node launchers) with a ConfigMap holding
    the model's scripts, a C(kubernetes.io/dockerconfigjson) pull Secret for the registry its image is in and a
    runtime Secret, both made from the package's C(credential.json). Secret values never appear in the Job, the
    ConfigMap, the task output or the logs.
  - The pods use the host network, request the GPU resource of the vendor (C(amd.com/gpu), C(nvidia.com/gpu), none
    for CPU) and run the model's script as a local run does (C(/myworkspace/run_directory)), with its arguments
    passed as argv, never through a shell string.
  - The module follows the pods with a watch. Every model ends as rows parsed from its pod log by the same parser
    as M(rocm.madengine.run_model), C(multiple_results) included. Failures have a reason, V(IMAGE_PULL_FAILED),
    V(UNSCHEDULABLE) (with the scheduler's message), V(OOM_KILLED), V(EXIT_CODE), V(TIMEOUT) (the model's timeout as
    the pod's C(activeDeadlineSeconds)), V(K8S_DELETED), V(SUBMIT_FAILED), V(WAIT_TIMEOUT) or V(INTERRUPTED).
  - The rows, pod logs and C(jobs.json) are in C(<output_dir>/<run_id>/) (RV(results_dir)) under O(package_dir);
    the rows are also appended to O(output) once.
  - Idempotent per O(run_id). Jobs already created for the run id are not created again; a call after the rows
    were collected returns them with C(changed=false).
  - When the wait times out or the task is interrupted (SIGINT, SIGTERM, SIGHUP), the Jobs still running are
    deleted and their models end as V(WAIT_TIMEOUT) or V(INTERRUPTED) rows. O(state=absent) deletes the Jobs of
    O(run_id).
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
      - Creates nothing. Every object that would be created is sent to the API server as a server-side dry run
        (C(dryRun=All)), so admission, quota and schema errors show up; the answers are in RV(dry_run).
  diff_mode:
    support: full
    details:
      - The diff lists the Jobs of the run id before and after, by name, with their state.
  idempotent:
    support: full
    details:
      - Given the same O(run_id). Without one, every call is a new run.
options:
  manifest_file:
    description:
      - The build manifest whose models run, relative to O(package_dir). Its images must be in a registry
        (C(madengine build --registry)); the cluster pulls them.
    type: str
    default: build_manifest.json
  run_id:
    description:
      - Names the Jobs and the results directory and is written to every row. Give it to make the task
        idempotent, to collect a run submitted with O(wait=false), or with O(state=absent); default a new id.
      - Up to 128 letters, digits and C(. _ @ + -), starting with a letter or digit.
    type: str
  state:
    description:
      - V(present) runs the models (or collects them); V(absent) deletes the Jobs of O(run_id) and what they own.
    type: str
    choices: [present, absent]
    default: present
  timeout:
    description:
      - Seconds each model may run, as its pod's C(activeDeadlineSeconds); V(-1) the model's own C(timeout)
        (else 7200), V(0) none.
    type: int
    default: -1
  output:
    description:
      - The perf CSV (relative to O(package_dir)) the rows are appended to, once per run id.
    type: str
    default: perf.csv
  kubeconfig:
    description:
      - The kubeconfig file. Default the C(kubeconfig) key of C(additional_context.k8s), else C(~/.kube/config),
        else the in-cluster service account.
    type: path
  kube_context:
    description:
      - The context of the kubeconfig to use; default its current context.
    type: str
  namespace:
    description:
      - The namespace of the Jobs; it must exist. Default V(default).
    type: str
  wait:
    description:
      - Wait for the Jobs and collect their rows. V(false) creates them and returns; a later call with the same
        O(run_id) waits and collects. Default V(true).
    type: bool
  wait_timeout:
    description:
      - Seconds to wait for all the models before their Jobs are deleted; default none.
    type: int
  pending_timeout:
    description:
      - Seconds a pod may stay unschedulable or fail to pull its image before its model fails; default V(300).
    type: int
  cleanup:
    description:
      - What happens to the finished Jobs once their rows are collected. V(on_success) (default) deletes the
        Jobs whose models succeeded and keeps the failed ones for a look; V(always); V(never). Jobs whose pods
        could not start are always deleted.
    type: str
    choices: [on_success, always, never]
  image_pull_policy:
    description:
      - The pods' C(imagePullPolicy); default V(Always).
    type: str
    choices: [Always, IfNotPresent, Never]
  fail_on_error:
    description:
      - Fail the task when any row is a V(FAILURE) (the rows are in the result either way).
    type: bool
    default: true
requirements:
  - Python >= 3.9 with the C(kubernetes) client (installed with madengine).
  - A cluster whose nodes can pull the manifest's images, and for GPU models the AMD or NVIDIA device plugin.
  - RBAC in the namespace to create, get, list, watch, patch and delete Jobs, ConfigMaps, Secrets and Services,
    and to get, list and watch pods and read their logs; to list nodes for the GPU check.
seealso:
  - module: rocm.madengine.docker_build_model
  - module: rocm.madengine.slurm_submit
  - name: Kubernetes Jobs
    description: How a Job runs pods to completion.
    link: https://kubernetes.io/docs/concepts/workloads/controllers/job/
"""

EXAMPLES = r"""
- name: Run the manifest's models on the cluster and wait for their rows
  rocm.madengine.k8s_job:
    package_dir: /srv/MAD
    run_id: "nightly-{{ ansible_date_time.date }}"
    kubeconfig: ~/.kube/config
    namespace: benchmarks
    additional_context:
      gpu_vendor: AMD
      k8s:
        gpu_count: 1
        node_selector:
          amd.com/gpu.product-name: AMD_Instinct_MI300X
  register: madengine_k8s

- name: Submit only; collect later with the same run id
  rocm.madengine.k8s_job:
    package_dir: /srv/MAD
    run_id: weekly-1
    wait: false

- name: Delete the Jobs of a run
  rocm.madengine.k8s_job:
    package_dir: /srv/MAD
    run_id: weekly-1
    state: absent
"""

RETURN = r"""
run_id:
  description: The run id of the Jobs and rows.
  returned: always
  type: str
  sample: nightly-2026-12-03
results_dir:
  description: The run's directory with C(jobs.json), one directory per Job with its pod logs, and the merged
    C(perf.csv).
  returned: always
  type: str
  sample: /srv/MAD/k8s_results/nightly-2026-12-03
jobs:
  description: One entry per model with its Job, final state and reason.
  returned: always
  type: list
  elements: dict
  contains:
    model:
      description: The model name.
      type: str
      sample: dummy
    job_name:
      description: The Job's name (C(madengine-<model>-<run id>), shortened with a hash when long).
      type: str
      sample: madengine-dummy-nightly-2026-12-03
    job_id:
      description: The Job's name once it exists; empty when it was never created.
      type: str
      sample: madengine-dummy-nightly-2026-12-03
    state:
      description: V(SUCCEEDED), V(FAILED), V(SUBMITTED) (not waited for), V(COLLECTED) or V(NOT_SUBMITTED).
      type: str
      sample: SUCCEEDED
    exit_code:
      description: The exit code of the model's container, when it ran.
      type: str
      sample: "0"
    reason:
      description: Why the model failed, with the cluster's message.
      type: str
      sample: ""
rows:
  description: The perf rows of the run (the perf.csv columns), one or more per model; empty with O(wait=false).
  returned: always
  type: list
  elements: dict
  sample:
    - model: dummy
      performance: "1234"
      metric: samples_per_second
      status: SUCCESS
      machine_name: node-1
      deployment_type: kubernetes
      run_id: nightly-2026-12-03
submitted:
  description: The Jobs created by this call.
  returned: always
  type: list
  elements: str
  sample: [madengine-dummy-nightly-2026-12-03]
cancelled:
  description: The Jobs this call deleted (wait timeout, interruption, O(state=absent)).
  returned: always
  type: list
  elements: str
  sample: []
dry_run:
  description: In check mode, the Jobs the API server would refuse, with its message (empty when all pass).
  returned: check mode
  type: list
  elements: dict
  sample: []
perf_csv:
  description: The perf CSV the rows were appended to.
  returned: always
  type: str
  sample: /srv/MAD/perf.csv
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.rocm.madengine.plugins.module_utils import ansible_glue as glue  # noqa: E402
from ansible_collections.rocm.madengine.plugins.module_utils import workflow  # noqa: E402

# Module options that are keys of the `k8s` section (k8s_config checks them all).
SETTING_OPTIONS = {
    "kubeconfig": "kubeconfig",
    "kube_context": "context",
    "namespace": "namespace",
    "wait": "wait",
    "wait_timeout": "wait_timeout",
    "pending_timeout": "pending_timeout",
    "cleanup": "cleanup",
    "image_pull_policy": "image_pull_policy",
}


def main():
    module = AnsibleModule(
        argument_spec={
            "package_dir": {"type": "path", "required": True},
            "additional_context": {"type": "dict", "default": {}},
            "manifest_file": {"type": "str", "default": "build_manifest.json"},
            "run_id": {"type": "str"},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "timeout": {"type": "int", "default": -1},
            "output": {"type": "str", "default": "perf.csv"},
            "kubeconfig": {"type": "path"},
            "kube_context": {"type": "str"},
            "namespace": {"type": "str"},
            "wait": {"type": "bool"},
            "wait_timeout": {"type": "int"},
            "pending_timeout": {"type": "int"},
            "cleanup": {"type": "str", "choices": ["on_success", "always", "never"]},
            "image_pull_policy": {"type": "str", "choices": ["Always", "IfNotPresent", "Never"]},
            "fail_on_error": {"type": "bool", "default": True},
        },
        required_if=[("state", "absent", ["run_id"])],
        supports_check_mode=True,
    )
    params = module.params
    root = glue.package_root(module)
    ctx = glue.context_of(module)
    section = "kubernetes" if "kubernetes" in ctx else "k8s"
    given = {key: params[option] for option, key in SETTING_OPTIONS.items() if params[option] is not None}
    ctx[section] = {**dict(ctx.get(section) or {}), **given}
    options = glue.deployment_options(module, ctx)
    if params["state"] == "absent":
        result = glue.call_core(
            module, "", workflow.stop_deployment, root, options, params["manifest_file"], module.check_mode
        )
        module.exit_json(changed=bool(result.cancelled), run_id=options.run_id, cancelled=result.cancelled)
    before = glue.call_core(module, "", workflow.deployment_jobs, root, options, params["manifest_file"])
    result = glue.call_core(
        module,
        "",
        workflow.execute,
        root,
        options,
        params["manifest_file"],
        None,
        glue.ModuleReporter(module),
        check_mode=module.check_mode,
    )
    deployed = result.deployment
    outcome = glue.deployment_result(deployed, options, root)
    jobs = outcome["jobs"]
    if module._diff:
        outcome["diff"] = {
            "before": {"jobs": before},
            "after": {"jobs": {job["job_name"]: job["state"] for job in jobs}},
        }
    if module.check_mode:
        outcome["dry_run"] = deployed.details.get("dry_run", [])
        if outcome["dry_run"]:
            first = outcome["dry_run"][0]
            module.fail_json(msg=f"the API server would refuse {first['job_name']}: {first['message']}", **outcome)
    glue.exit_with_rows(module, deployed.rows, params["fail_on_error"], "", **outcome)


if __name__ == "__main__":
    main()
