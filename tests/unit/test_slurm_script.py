"""The sbatch script rendered from validated settings; checked with the real bash."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import List

import pytest

from ansible_collections.rocm.madengine.plugins.module_utils.slurm_config import SlurmSettings, parse_settings
from ansible_collections.rocm.madengine.plugins.module_utils.slurm_script import ScriptInputs, render

BASH = shutil.which("bash") or "/bin/bash"

FULL = {
    "partition": "gpu-mi300x",
    "ntasks": 4,
    "cpus_per_task": 16,
    "mem": "512G",
    "time": "02:00:00",
    "reservation": "maint_2026",
    "nodelist": "n[1-2]",
    "exclude": "n3",
    "qos": "high",
    "account": "proj42",
    "constraint": "mi300x",
    "mail_user": "me@example.com",
    "mail_type": "END,FAIL",
}
# The sbatch spelling of each FULL value, as `sbatch --help` lists the options.
FULL_LINES = [
    "#SBATCH --partition=gpu-mi300x",
    "#SBATCH --ntasks=4",
    "#SBATCH --cpus-per-task=16",
    "#SBATCH --mem=512G",
    "#SBATCH --time=02:00:00",
    "#SBATCH --reservation=maint_2026",
    "#SBATCH --nodelist=n[1-2]",
    "#SBATCH --exclude=n3",
    "#SBATCH --qos=high",
    "#SBATCH --account=proj42",
    "#SBATCH --constraint=mi300x",
    "#SBATCH --mail-user=me@example.com",
    "#SBATCH --mail-type=END,FAIL",
]


def inputs(settings: SlurmSettings, **kw) -> ScriptInputs:
    values = dict(
        settings=settings,
        job_name="madengine-run1-0",
        run_id="run1",
        spec_path="/shared/results/run1/madengine-run1-0.json",
        log_pattern="/shared/results/run1/logs/madengine-run1-0_%A_%a.out",
        madengine="/shared/venv/bin/madengine",
        array_size=1,
        gpus_per_node=8,
    )
    values.update(kw)
    return ScriptInputs(**values)


def sbatch_lines(script: str) -> List[str]:
    return [line for line in script.splitlines() if line.startswith("#SBATCH")]


def bash_n(script: str, tmp_path: Path) -> None:
    path = tmp_path / "job.sh"
    path.write_text(script, encoding="utf-8")
    result = subprocess.run([BASH, "-n", str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_full_settings(tmp_path):
    settings = parse_settings(dict(FULL, extra_directives=["--comment=nightly", "--requeue"]))
    script = render(inputs(settings))
    lines = sbatch_lines(script)
    for expected in FULL_LINES:
        assert expected in lines
    assert "#SBATCH --job-name=madengine-run1-0" in lines
    assert "#SBATCH --output=/shared/results/run1/logs/madengine-run1-0_%A_%a.out" in lines
    assert "#SBATCH --nodes=1" in lines
    assert "#SBATCH --gpus-per-node=8" in lines
    assert "#SBATCH --exclusive" in lines
    assert lines[-2:] == ["#SBATCH --comment=nightly", "#SBATCH --requeue"]
    # every option once: nothing rendered twice
    assert len(lines) == len(set(lines))
    bash_n(script, tmp_path)


def test_sbatch_lines_come_before_any_command():
    settings = parse_settings(dict(FULL, modules=["rocm/6.2.0"], extra_directives=["--requeue"], nodes=2))
    script = render(inputs(settings, array_size=3, self_managed=False))
    lines = script.splitlines()
    assert lines[0].startswith("#!")
    first_command = next(i for i, line in enumerate(lines) if line.strip() and not line.startswith("#"))
    last_directive = max(i for i, line in enumerate(lines) if line.startswith("#SBATCH"))
    assert last_directive < first_command  # sbatch stops reading #SBATCH at the first command


def test_minimal_settings_leave_the_rest_to_the_cluster(tmp_path):
    script = render(inputs(SlurmSettings(), gpus_per_node=0))
    lines = sbatch_lines(script)
    assert lines == [
        "#SBATCH --job-name=madengine-run1-0",
        "#SBATCH --output=/shared/results/run1/logs/madengine-run1-0_%A_%a.out",
        "#SBATCH --nodes=1",
        "#SBATCH --exclusive",
        "#SBATCH --no-requeue",
    ]
    assert script.startswith("#!/bin/bash\n")
    bash_n(script, tmp_path)


@pytest.mark.parametrize("gpus", [1, 4, 8])
def test_gres_style(gpus):
    lines = sbatch_lines(render(inputs(parse_settings({"gpu_request": "gres"}), gpus_per_node=gpus)))
    assert f"#SBATCH --gres=gpu:{gpus}" in lines
    assert not any("--gpus-per-node" in line for line in lines)


@pytest.mark.parametrize("gpus", [1, 4, 8])
def test_gpus_per_node_style(gpus):
    lines = sbatch_lines(render(inputs(parse_settings({"gpu_request": "gpus-per-node"}), gpus_per_node=gpus)))
    assert f"#SBATCH --gpus-per-node={gpus}" in lines
    assert not any("--gres" in line for line in lines)


@pytest.mark.parametrize("style", ["gres", "gpus-per-node"])
def test_no_gpus_no_gpu_line(style):
    lines = sbatch_lines(render(inputs(parse_settings({"gpu_request": style}), gpus_per_node=0)))
    assert not any("gpu" in line.lower().split("=", 1)[0] for line in lines)
    assert not any("--gres" in line or "--gpus" in line for line in lines)


@pytest.mark.parametrize("value,line", [(45, "#SBATCH --time=45"), ("1-00:00:00", "#SBATCH --time=1-00:00:00")])
def test_time(value, line):
    assert line in sbatch_lines(render(inputs(parse_settings({"time": value}))))


def test_not_exclusive():
    lines = sbatch_lines(render(inputs(parse_settings({"exclusive": False}))))
    assert "#SBATCH --exclusive" not in lines


@pytest.mark.parametrize(
    "size,limit,line",
    [(4, 2, "#SBATCH --array=0-3%2"), (4, None, "#SBATCH --array=0-3"), (2, 1, "#SBATCH --array=0-1%1")],
)
def test_array(size, limit, line):
    settings = parse_settings({"max_parallel": limit})
    lines = sbatch_lines(render(inputs(settings, array_size=size)))
    assert line in lines
    assert len([item for item in lines if item.startswith("#SBATCH --array")]) == 1


def test_single_task_is_not_an_array():
    lines = sbatch_lines(render(inputs(parse_settings({"max_parallel": 2}), array_size=1)))
    assert not any("--array" in line for line in lines)


def test_modules_make_a_login_shell_and_load_in_order(tmp_path):
    script = render(inputs(parse_settings({"modules": ["rocm/6.2.0", "PrgEnv-gnu"]})))
    assert script.splitlines()[0] == "#!/bin/bash -l"
    loads = [line for line in script.splitlines() if line.startswith("module load")]
    assert loads == ["module load rocm/6.2.0", "module load PrgEnv-gnu"]
    bash_n(script, tmp_path)


def test_no_modules_no_login_shell():
    script = render(inputs(SlurmSettings()))
    assert script.splitlines()[0] == "#!/bin/bash"
    assert "module load" not in script


def test_module_names_are_quoted(tmp_path):
    # render() takes the module list from its caller too; a name with shell text stays one literal word
    script = render(inputs(SlurmSettings()), modules=["odd name", "$(touch pwned)"])
    assert script.splitlines()[0] == "#!/bin/bash -l"
    assert "module load 'odd name'" in script
    assert "module load '$(touch pwned)'" in script
    bash_n(script, tmp_path)


def test_single_node_execs_the_task():
    script = render(inputs(SlurmSettings()))
    assert "srun" not in script
    assert "exec /shared/venv/bin/madengine slurm-task /shared/results/run1/madengine-run1-0.json" in script
    assert "--ntasks-per-node" not in script


def test_multi_node_uses_srun_one_task_per_node(tmp_path):
    script = render(inputs(parse_settings({"nodes": 2})))
    lines = sbatch_lines(script)
    assert "#SBATCH --nodes=2" in lines
    assert "#SBATCH --ntasks-per-node=1" in lines
    srun = [line for line in script.splitlines() if line.startswith("srun ")]
    assert len(srun) == 1
    assert "--ntasks-per-node=1" in srun[0]
    assert '--nodes="$SLURM_JOB_NUM_NODES"' in srun[0]
    assert "exec " not in script
    # the madengine call is the continuation of the srun line
    joined = script.replace("\\\n", " ")
    srun_call = next(line for line in joined.splitlines() if line.startswith("srun "))
    assert srun_call.split()[-3:] == [
        "/shared/venv/bin/madengine",
        "slurm-task",
        "/shared/results/run1/madengine-run1-0.json",
    ]
    bash_n(script, tmp_path)


def test_self_managed_multi_node_does_not_use_srun(tmp_path):
    script = render(inputs(parse_settings({"nodes": 3}), self_managed=True))
    lines = sbatch_lines(script)
    assert "#SBATCH --nodes=3" in lines  # the allocation still spans the nodes
    assert "#SBATCH --ntasks-per-node=1" not in lines
    assert "srun" not in script
    assert "exec /shared/venv/bin/madengine slurm-task" in script
    bash_n(script, tmp_path)


def test_run_id_is_in_a_comment_only():
    script = render(inputs(SlurmSettings(), run_id="nightly-2026-11-24"))
    assert "nightly-2026-11-24" in script
    for line in script.splitlines():
        if "nightly-2026-11-24" in line:
            assert line.startswith("#")


def test_paths_with_spaces_are_quoted_and_reach_the_task_as_one_argument(tmp_path):
    """Run the rendered single-node script with the real bash; a fake madengine prints its arguments."""
    bin_dir = tmp_path / "my tools"
    bin_dir.mkdir()
    fake = bin_dir / "madengine"
    fake.write_text('#!/bin/sh\nfor a in "$@"; do printf "<%s>\\n" "$a"; done\n', encoding="utf-8")
    fake.chmod(0o755)
    spec = str(tmp_path / "run 1" / "it's $(x).json")
    script = render(
        inputs(SlurmSettings(), madengine=str(fake), spec_path=spec, gpus_per_node=0),
        modules=["a b"],
    )
    assert f"'{fake}'" in script
    path = tmp_path / "job.sh"
    path.write_text(script, encoding="utf-8")
    bash_n(script, tmp_path)
    # `module` is a shell function on clusters; stand in for it, then run the script as sbatch would
    result = subprocess.run(
        [BASH, "-c", 'module() { printf "module<%s>\\n" "$@"; }; source "$0"', str(path)],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)},
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["module<load>", "module<a b>", "<slurm-task>", f"<{spec}>"]
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    "settings,kw",
    [
        ({}, {}),
        (dict(FULL), {"array_size": 5}),
        ({"nodes": 4, "modules": ["rocm"], "gpu_request": "gres"}, {"array_size": 2}),
        ({"nodes": 2}, {"self_managed": True}),
        ({"extra_directives": ["--comment=x", "--signal=B:USR1@60"], "max_parallel": 1}, {"array_size": 9}),
    ],
)
def test_rendered_scripts_parse_with_bash(settings, kw, tmp_path):
    bash_n(render(inputs(parse_settings(settings), **kw)), tmp_path)


def test_requeue_only_when_asked():
    """A job whose node fails is not run again unseen; extra_directives ['--requeue'] restores SLURM's way."""
    assert "#SBATCH --no-requeue" in sbatch_lines(render(inputs(SlurmSettings(), gpus_per_node=0)))
    asked = sbatch_lines(render(inputs(parse_settings({"extra_directives": ["--requeue"]}), gpus_per_node=0)))
    assert "#SBATCH --requeue" in asked and "#SBATCH --no-requeue" not in asked
