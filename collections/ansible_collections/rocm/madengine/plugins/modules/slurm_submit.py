#!/usr/bin/python
# Copyright (c) 2026, madengine developers
# MIT License (see LICENSE or https://opensource.org/licenses/MIT)
# SPDX-License-Identifier: MIT

from __future__ import annotations

DOCUMENTATION = r"""
module: slurm_submit
short_description: Run the models of a build manifest as SLURM jobs and collect their performance rows
version_added: 0.2.0
description:
  - Runs on a SLURM login node. Writes one sbatch script per group of models that need the same resources (one
    array task per model, or one job per model with O(array=false)), submits it with C(sbatch --parsable), waits
    for the jobs and collects the perf rows each task wrote into the shared results directory.
  - Each task runs C(madengine slurm-task <spec>) on its compute node, which runs the model through the same
    core as M(rocm.madengine.run_model) (one container per model). Multi-node jobs (O(nodes) > 1) run one task
    per node through C(srun) with the launcher environment (C(MASTER_ADDR) from the allocation's first node,
    C(MASTER_PORT), C(NNODES), C(NODE_RANK), C(GPUS_PER_NODE), and the torchrun, deepspeed, megatron,
    torchtitan, vllm, sglang or primus variables of the launcher in C(additional_context.distributed.launcher)).
    With launcher V(slurm_multi) the model's own script runs on the allocation, outside any container.
  - Every model ends as a row. A model whose job never started, was cancelled, ran out of time or lost its node
    gets a V(FAILURE) row whose C(failure_reason) says so (V(SUBMIT_FAILED), V(SLURM_TIMEOUT),
    V(SLURM_CANCELLED), V(SLURM_NODE_FAIL), V(SLURM_OUT_OF_MEMORY), V(SLURM_PREEMPTED), V(WAIT_TIMEOUT), ...).
  - The scripts, job specs, logs and rows are in C(<output_dir>/<run_id>/) (RV(results_dir)); the rows are also
    appended to O(output) once.
  - Idempotent per O(run_id). Jobs already submitted for the run id (recorded in C(jobs.json) there) are not
    submitted again; a second call waits for them and returns their rows with C(changed=false).
  - When the wait times out (O(wait_timeout)) or the task is interrupted (SIGINT, SIGTERM, SIGHUP) while it submits
    or waits, the jobs it submitted are cancelled and every model ends as a V(WAIT_TIMEOUT) or V(INTERRUPTED) row.
  - Run inside an allocation (C(SLURM_JOB_ID) set, e.g. under C(salloc)), the scripts run there, one after another,
    instead of being submitted.
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
      - Writes nothing and submits nothing; each job that would be submitted is checked with
        C(sbatch --test-only), and its answer is in RV(test_only). A job that sbatch would refuse fails the task.
  diff_mode:
    support: none
  idempotent:
    support: full
    details:
      - Given the same O(run_id). Without one, every call is a new run.
options:
  manifest_file:
    description:
      - The build manifest whose models run, relative to O(package_dir). The compute nodes read it, the package's
        scripts and the results directory through a shared file system.
    type: str
    default: build_manifest.json
  run_id:
    description:
      - Names the results directory and the jobs, and is written to every row. Give it to make the task
        idempotent; default a new random id.
      - Up to 128 letters, digits and C(. _ @ + -), starting with a letter or digit.
    type: str
  timeout:
    description:
      - Seconds each model may run inside its job before its container is killed; V(-1) the model's own
        C(timeout) (else 7200), V(0) none. The job's own limit is O(time).
    type: int
    default: -1
  output:
    description:
      - The perf CSV (relative to O(package_dir)) the rows are appended to, once per run id.
    type: str
    default: perf.csv
  output_dir:
    description:
      - Where the run's directory goes (relative to O(package_dir)); must be visible to the compute nodes.
      - Default V(slurm_results), or the C(output_dir) key of C(additional_context.slurm).
    type: str
  partition:
    description: The partition (C(--partition)); default the cluster's default partition.
    type: str
  nodes:
    description:
      - Nodes per model (C(--nodes)). More than one runs one task per node with the launcher environment.
      - Default V(1), or the C(nodes) key of C(additional_context.slurm).
    type: int
  gpus_per_node:
    description:
      - GPUs to request per node; default the model's C(n_gpus), and none for CPU images. V(0) requests none.
    type: int
  gpu_request:
    description:
      - How GPUs are requested, C(--gpus-per-node=N) or C(--gres=gpu:N).
      - Default V(gpus-per-node), or the C(gpu_request) key of C(additional_context.slurm).
    type: str
    choices: [gpus-per-node, gres]
  ntasks:
    description: C(--ntasks), when the job needs it set explicitly.
    type: int
  cpus_per_task:
    description: C(--cpus-per-task).
    type: int
  mem:
    description: C(--mem), for example V(64G).
    type: str
  time:
    description:
      - The job's time limit (C(--time)), for example V(30) (minutes), V(01:30:00) or V(1-00:00:00).
      - A job that reaches it ends as a V(SLURM_TIMEOUT) row.
    type: str
  exclusive:
    description:
      - Ask for whole nodes (C(--exclusive)).
      - Default V(true), or the C(exclusive) key of C(additional_context.slurm).
    type: bool
  reservation:
    description: C(--reservation).
    type: str
  nodelist:
    description: C(--nodelist), for example V(gpu[01-04]).
    type: str
  exclude:
    description: C(--exclude).
    type: str
  qos:
    description: C(--qos).
    type: str
  account:
    description: C(--account).
    type: str
  constraint:
    description: C(--constraint), for example V(mi300x).
    type: str
  modules:
    description:
      - Environment modules to C(module load) at the start of each job.
      - Default V([]), or the C(modules) key of C(additional_context.slurm).
    type: list
    elements: str
  extra_directives:
    description:
      - More sbatch options, one per item, written as C(#SBATCH) lines, for example V(--comment=nightly).
      - Default V([]), or the C(extra_directives) key of C(additional_context.slurm).
    type: list
    elements: str
  array:
    description:
      - Submit several models of the same shape as one job array (V(false) submits one job per model).
      - Default V(true), or the C(array) key of C(additional_context.slurm).
    type: bool
  max_parallel:
    description: How many array tasks may run at once (the C(%N) of C(--array)).
    type: int
  madengine_command:
    description: The path of C(madengine) on the compute nodes; default the one on the login node's C(PATH).
    type: str
  network_interface:
    description: Sets C(NCCL_SOCKET_IFNAME) and C(GLOO_SOCKET_IFNAME) in the jobs.
    type: str
  wait:
    description:
      - Wait for the jobs and collect their rows. With V(false) the task returns after submitting; call it again
        with the same O(run_id) and O(wait=true) to collect.
      - Default V(true), or the C(wait) key of C(additional_context.slurm).
    type: bool
  wait_timeout:
    description:
      - Seconds to wait before cancelling the jobs (V(0) waits as long as they take).
      - Default V(0), or the C(wait_timeout) key of C(additional_context.slurm).
    type: int
  wait_sleep:
    description:
      - The longest pause in seconds between two looks at the jobs' states (the first pause is a quarter of a
        second, each next one 0.1 s longer).
      - Default V(5), or the C(wait_sleep) key of C(additional_context.slurm).
    type: int
  fail_on_error:
    description: Fail the task when any row is a V(FAILURE) (the rows are returned either way).
    type: bool
    default: true
requirements:
  - On the login node, Python >= 3.9 with C(jinja2), and the SLURM client commands (C(sbatch), C(scontrol),
    C(scancel); C(sacct) when there is accounting) with a working C(SLURM_CONF).
  - On the compute nodes, madengine (O(madengine_command)), the Docker engine and the shared file system.
seealso:
  - module: rocm.madengine.docker_build_model
  - module: rocm.madengine.run_model
  - name: sbatch
    description: The SLURM batch submission command.
    link: https://slurm.schedmd.com/sbatch.html
"""

EXAMPLES = r"""
- name: Run the manifest's models on the gpu partition, one array, and wait for them
  rocm.madengine.slurm_submit:
    package_dir: /shared/MAD
    run_id: "nightly-{{ ansible_date_time.date }}"
    partition: gpu
    time: "02:00:00"
    gpus_per_node: 8
    modules: [rocm/6.2]
    wait_timeout: 10800
  register: madengine_slurm

- name: A two-node torchrun model
  rocm.madengine.slurm_submit:
    package_dir: /shared/MAD
    run_id: "{{ madengine_run_id }}"
    nodes: 2
    partition: gpu
    time: "04:00:00"
    network_interface: ib0
    additional_context:
      distributed:
        launcher: torchrun
        master_port: 29500

- name: Submit only; collect later with the same run id and wait=true
  rocm.madengine.slurm_submit:
    package_dir: /shared/MAD
    run_id: weekly-1
    wait: false
"""

RETURN = r"""
run_id:
  description: The run id of the jobs and rows.
  returned: always
  type: str
  sample: nightly-2026-11-24
results_dir:
  description: The run's directory with the scripts (C(*.sh)), job specs (C(*.json)), C(jobs.json), C(logs/),
    one C(tasks/<model>/) directory per model (its perf.csv, run log and task.json) and the merged C(perf.csv).
  returned: always
  type: str
  sample: /shared/MAD/slurm_results/nightly-2026-11-24
job_ids:
  description: The SLURM job ids of this run (array jobs once).
  returned: always
  type: list
  elements: str
  sample: ["4242"]
jobs:
  description: One entry per model with its job (C(<array job>_<task>) for array tasks), final state and reason.
  returned: always
  type: list
  elements: dict
  contains:
    model:
      description: The model name.
      type: str
      sample: dummy
    job_name:
      description: The name of the job (C(madengine-<run_id>-<n>)); the models of one array share it.
      type: str
      sample: madengine-nightly-2026-11-24-0
    job_id:
      description: The job (or array task) id; empty when the submission failed.
      type: str
      sample: "4242_0"
    state:
      description: The SLURM state (V(COMPLETED), V(FAILED), V(TIMEOUT), V(CANCELLED), V(NODE_FAIL),
        V(OUT_OF_MEMORY), V(PREEMPTED), ...), V(PENDING)/V(RUNNING) when not waited for, V(UNKNOWN) otherwise.
      type: str
      sample: COMPLETED
    exit_code:
      description: SLURM's C(exit:signal) of the task.
      type: str
      sample: "0:0"
    reason:
      description: SLURM's reason, or why the submission failed.
      type: str
      sample: ""
    script:
      description: The sbatch script of the job.
      type: str
      sample: /shared/MAD/slurm_results/nightly-2026-11-24/madengine-nightly-2026-11-24-0.sh
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
      machine_name: gpu01
      deployment_type: slurm
      run_id: nightly-2026-11-24
submitted:
  description: Job ids submitted by this call (empty when they had been submitted before).
  returned: always
  type: list
  elements: str
  sample: ["4242"]
cancelled:
  description: Job ids this call cancelled (wait timeout or interruption).
  returned: always
  type: list
  elements: str
  sample: []
test_only:
  description: In check mode, what C(sbatch --test-only) answered for each job that would be submitted.
  returned: check mode
  type: list
  elements: dict
  sample:
    - job_name: madengine-nightly-0
      ok: "true"
      message: "sbatch: Job 4243 to start at 2026-11-24T12:00:00 using 8 processors on nodes gpu01 in partition gpu"
perf_csv:
  description: The perf CSV the rows were appended to.
  returned: always
  type: str
  sample: /shared/MAD/perf.csv
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.rocm.madengine.plugins.module_utils import ansible_glue as glue  # noqa: E402
from ansible_collections.rocm.madengine.plugins.module_utils import workflow  # noqa: E402
from ansible_collections.rocm.madengine.plugins.module_utils.slurm_config import parse_settings  # noqa: E402

# Module options that are keys of the `slurm` section (one definition of their checks: slurm_config).
SETTING_OPTIONS = {
    "partition": {"type": "str"},
    "nodes": {"type": "int"},
    "gpus_per_node": {"type": "int"},
    "gpu_request": {"type": "str", "choices": ["gpus-per-node", "gres"]},
    "ntasks": {"type": "int"},
    "cpus_per_task": {"type": "int"},
    "mem": {"type": "str"},
    "time": {"type": "str"},
    "exclusive": {"type": "bool"},
    "reservation": {"type": "str"},
    "nodelist": {"type": "str"},
    "exclude": {"type": "str"},
    "qos": {"type": "str"},
    "account": {"type": "str"},
    "constraint": {"type": "str"},
    "modules": {"type": "list", "elements": "str"},
    "extra_directives": {"type": "list", "elements": "str"},
    "output_dir": {"type": "str"},
    "array": {"type": "bool"},
    "max_parallel": {"type": "int"},
    "madengine_command": {"type": "str"},
    "network_interface": {"type": "str"},
    "wait": {"type": "bool"},
    "wait_timeout": {"type": "int"},
    "wait_sleep": {"type": "int"},
}


def main():
    module = AnsibleModule(
        argument_spec={
            "package_dir": {"type": "path", "required": True},
            "additional_context": {"type": "dict", "default": {}},
            "manifest_file": {"type": "str", "default": "build_manifest.json"},
            "run_id": {"type": "str"},
            "timeout": {"type": "int", "default": -1},
            "output": {"type": "str", "default": "perf.csv"},
            "fail_on_error": {"type": "bool", "default": True},
            **SETTING_OPTIONS,
        },
        supports_check_mode=True,
    )
    params = module.params
    root = glue.package_root(module)
    ctx = glue.context_of(module)
    given = {name: params[name] for name in SETTING_OPTIONS if params[name] not in (None, [])}
    glue.call_core(module, "", parse_settings, given, "")
    ctx["slurm"] = {**dict(ctx.get("slurm") or {}), **given}
    options = glue.deployment_options(module, ctx)
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
    slurm = result.deployment
    outcome = glue.deployment_result(slurm, options, root)
    outcome["job_ids"] = sorted({plan.job_id for plan in slurm.plans if plan.job_id})
    if module.check_mode:
        outcome["test_only"] = slurm.test_only
        refused = [entry for entry in slurm.test_only if entry["ok"] != "true"]
        if refused:
            module.fail_json(
                msg=f"sbatch --test-only refused {refused[0]['job_name']}: {refused[0]['message']}", **outcome
            )
    glue.exit_with_rows(module, slurm.rows, params["fail_on_error"], "", **outcome)


if __name__ == "__main__":
    main()
