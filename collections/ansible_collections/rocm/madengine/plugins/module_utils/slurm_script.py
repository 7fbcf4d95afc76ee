"""The sbatch script: #SBATCH lines from validated settings, then one call of `madengine slurm-task <spec>`.

Model data never enters the script: it lives in the JSON job spec the task reads. The only values spliced
into it are settings validated by slurm_config (no whitespace, quotes or shell syntax) and two paths, quoted.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import List, Optional

from .slurm_config import SlurmSettings

TEMPLATE = """#!/bin/bash{{ ' -l' if modules else '' }}
#SBATCH --job-name={{ job_name }}
#SBATCH --output={{ log_pattern }}
#SBATCH --nodes={{ s.nodes }}
{% if multi_node %}
#SBATCH --ntasks-per-node=1
{% endif %}
{% if gpus_per_node > 0 and s.gpu_request == 'gres' %}
#SBATCH --gres=gpu:{{ gpus_per_node }}
{% elif gpus_per_node > 0 %}
#SBATCH --gpus-per-node={{ gpus_per_node }}
{% endif %}
{% for key in VALUE_OPTIONS if s[key] is not none %}
#SBATCH --{{ key | replace('_', '-') }}={{ s[key] }}
{% endfor %}
{% if s.exclusive %}
#SBATCH --exclusive
{% endif %}
{% if array_size > 1 %}
#SBATCH --array=0-{{ array_size - 1 }}{{ '%' ~ s.max_parallel if s.max_parallel else '' }}
{% endif %}
{% if not requeue %}
#SBATCH --no-requeue
{% endif %}
{% for line in s.extra_directives %}
#SBATCH {{ line }}
{% endfor %}

# Written by madengine for run {{ run_id }}; the models and settings are in the job spec.
set -uo pipefail
{% for module in modules %}
module load {{ module | q }}
{% endfor %}
{% if multi_node %}
srun --nodes="$SLURM_JOB_NUM_NODES" --ntasks-per-node=1 --kill-on-bad-exit=0 \\
    {{ madengine | q }} slurm-task {{ spec | q }}
{% else %}
exec {{ madengine | q }} slurm-task {{ spec | q }}
{% endif %}
"""
# Settings written as `#SBATCH --<key>=<value>` when given, in this order.
VALUE_OPTIONS = (
    "partition",
    "ntasks",
    "cpus_per_task",
    "mem",
    "time",
    "reservation",
    "nodelist",
    "exclude",
    "qos",
    "account",
    "constraint",
    "mail_user",
    "mail_type",
)


@dataclass
class ScriptInputs:
    settings: SlurmSettings
    job_name: str
    run_id: str
    spec_path: str
    log_pattern: str
    madengine: str
    array_size: int
    gpus_per_node: int
    self_managed: bool = False  # slurm_multi: one task on the first node, the model's script does the rest


def render(inputs: ScriptInputs, modules: Optional[List[str]] = None) -> str:
    import jinja2

    env = jinja2.Environment(
        autoescape=False,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["q"] = lambda value: shlex.quote(str(value))
    settings = inputs.settings
    return env.from_string(TEMPLATE).render(
        s=settings.as_dict(),
        VALUE_OPTIONS=VALUE_OPTIONS,
        job_name=inputs.job_name,
        run_id=inputs.run_id,
        spec=inputs.spec_path,
        log_pattern=inputs.log_pattern,
        madengine=inputs.madengine,
        array_size=inputs.array_size,
        gpus_per_node=inputs.gpus_per_node,
        multi_node=settings.nodes > 1 and not inputs.self_managed,
        modules=settings.modules if modules is None else modules,
        # A benchmark job that SLURM requeues (its node failed) would run again unseen: it fails instead, unless
        # the user asks for --requeue.
        requeue=any(line.split("=", 1)[0] == "--requeue" for line in settings.extra_directives),
    )
