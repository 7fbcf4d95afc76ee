"""The SLURM target from the login node: parsing SLURM's answers, planning, submitting, waiting, collecting.

The scontrol and sbatch outputs are recordings of the real tools (data/slurm/SOURCES.md); the sacct lines are
hand-written in sacct's documented format because the recording cluster has no accounting database. SLURM
commands are replayed by a fake runner; everything else (files, bash) is real.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import pytest

from ansible_collections.rocm.madengine.plugins.module_utils import perfcsv, slurm
from ansible_collections.rocm.madengine.plugins.module_utils.commands import CommandResult
from ansible_collections.rocm.madengine.plugins.module_utils.errors import ConfigError
from ansible_collections.rocm.madengine.plugins.module_utils.manifest import entries
from ansible_collections.rocm.madengine.plugins.module_utils.reporting import Reporter
from ansible_collections.rocm.madengine.plugins.module_utils.slurm import (
    JobPlan,
    SlurmClient,
    SlurmOutcome,
    SlurmRequest,
    TaskState,
    _indices,
    collect_rows,
    parse_sacct,
    parse_scontrol,
    plan_jobs,
    results_dir,
    run_on_slurm,
    submit_jobs,
    wait_jobs,
    write_jobs,
)
from ansible_collections.rocm.madengine.plugins.module_utils.slurm_config import parse_settings
from ansible_collections.rocm.madengine.plugins.module_utils.slurm_job import JobSpec, task_dir

DATA = Path(__file__).parent / "data" / "slurm"
MADENGINE = "/shared/venv/bin/madengine"
SACCT_ARGV = ("-X", "-P", "-n", "-o", "JobID,State,ExitCode,NodeList")


def data(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


Answer = Union[Tuple[int, str, str], Callable[[Tuple[str, ...]], Tuple[int, str, str]]]


class FakeRunner:
    """Answers each SLURM command by program name (a tuple or a callable, or a list consumed in order)."""

    def __init__(self, **answers: Any) -> None:
        self.answers = answers
        self.calls: List[Tuple[str, ...]] = []

    def __call__(self, argv, timeout=None, env=None, input_text=None) -> CommandResult:
        key = tuple(argv)
        self.calls.append(key)
        answer = self.answers.get(key[0])
        if isinstance(answer, list):
            answer = answer.pop(0) if len(answer) > 1 else answer[0]
        if callable(answer):
            answer = answer(key)
        if answer is None:
            return CommandResult(key, 127, "", f"{key[0]}: not found")
        rc, out, err = answer
        return CommandResult(key, rc, out, err)

    def of(self, program: str) -> List[Tuple[str, ...]]:
        return [argv for argv in self.calls if argv[0] == program]


class Recorder(Reporter):
    def __init__(self) -> None:
        self.warnings: List[str] = []
        self.infos: List[str] = []

    def info(self, message: str) -> None:
        self.infos.append(message)

    def warn(self, message: str) -> None:
        self.warnings.append(message)


class Clock:
    """A monotonic clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: List[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for name in ("SLURM_JOB_ID", "MAD_DEPLOYMENT_TYPE", "NPROC_PER_NODE", "GPUS_PER_NODE", "MAD_LAUNCHER"):
        monkeypatch.delenv(name, raising=False)
    # sbatch/scontrol/scancel are "installed": the fake runner answers for them
    monkeypatch.setattr(slurm, "which", lambda name: f"/usr/bin/{name}")


def model(name: str, n_gpus: Any = "1", vendor: str = "AMD", **extra: Any) -> Dict[str, Any]:
    return {"name": name, "n_gpus": n_gpus, "scripts": f"scripts/{name}/run.sh", "_vendor": vendor, **extra}


def manifest(*models: Dict[str, Any], ctx_vendor: str = "") -> Dict[str, Any]:
    images, built = {}, {}
    for spec in models:
        spec = dict(spec)
        vendor = spec.pop("_vendor")
        key = f"ci-{spec['name']}"
        images[key] = {"docker_image": key, "dockerfile": f"docker/{spec['name']}.Dockerfile", "gpu_vendor": vendor}
        built[key] = spec
    return {"built_images": images, "built_models": built, "context": {"gpu_vendor": ctx_vendor}}


def make_request(tmp_path: Path, settings: Optional[Dict[str, Any]] = None, ctx: Optional[Dict[str, Any]] = None, **kw):
    section = {"madengine_command": MADENGINE, **(settings or {})}
    package = tmp_path / "pkg"
    package.mkdir(exist_ok=True)
    values = dict(
        settings=parse_settings(section),
        context={"slurm": section, **(ctx or {})},
        package_root=str(package),
        manifest_path=str(package / "build_manifest.json"),
        run_id="run1",
    )
    values.update(kw)
    return SlurmRequest(**values)


def names(plan: JobPlan) -> List[str]:
    return [e.model_name for e in plan.entries]


# --- parsing scontrol (recorded) ----------------------------------------------------------------------


def test_scontrol_pending_array():
    # --array=0-3%1: task 0 runs, 1-3 wait for the throttle
    states = parse_scontrol(data("scontrol-pending-array.txt"), 4)
    assert sorted(states) == [0, 1, 2, 3]
    assert (states[0].state, states[0].nodes, states[0].reason) == ("RUNNING", "n1", "")
    for index in (1, 2, 3):
        assert states[index].state == "PENDING"
        assert states[index].reason == "JobArrayTaskLimit"
        assert states[index].nodes == ""
    assert not any(s.terminal for s in states.values())


def test_scontrol_array_in_progress():
    states = parse_scontrol(data("scontrol-array-in-progress.txt"), 4)
    assert [states[i].state for i in range(4)] == ["COMPLETED", "RUNNING", "PENDING", "PENDING"]
    assert [states[i].terminal for i in range(4)] == [True, False, False, False]


def test_scontrol_array_completed_then_cancelled():
    states = parse_scontrol(data("scontrol-array-completed-cancelled.txt"), 4)
    assert [states[i].state for i in range(4)] == ["COMPLETED", "COMPLETED", "COMPLETED", "CANCELLED"]
    assert all(s.terminal for s in states.values())


def test_scontrol_completed_array():
    states = parse_scontrol(data("scontrol-completed-array.txt"), 3)
    assert sorted(states) == [0, 1, 2]
    for state in states.values():
        assert (state.state, state.exit_code, state.nodes, state.reason) == ("COMPLETED", "0:0", "n1", "")


def test_scontrol_array_larger_than_the_plan_keeps_the_plan_size():
    states = parse_scontrol(data("scontrol-pending-array.txt"), 2)
    assert sorted(states) == [0, 1]


def test_scontrol_running():
    states = parse_scontrol(data("scontrol-running.txt"), 1)
    assert list(states) == [0]
    assert (states[0].state, states[0].nodes, states[0].terminal) == ("RUNNING", "n1", False)


def test_scontrol_failed():
    (state,) = parse_scontrol(data("scontrol-failed.txt"), 1).values()
    assert (state.state, state.exit_code, state.reason) == ("FAILED", "3:0", "NonZeroExitCode")  # --wrap 'exit 3'
    assert state.terminal


def test_scontrol_cancelled():
    (state,) = parse_scontrol(data("scontrol-cancelled.txt"), 1).values()
    assert (state.state, state.exit_code) == ("CANCELLED", "0:15")  # SIGTERM
    assert state.terminal


def test_scontrol_timeout():
    (state,) = parse_scontrol(data("scontrol-timeout.txt"), 1).values()
    assert (state.state, state.reason) == ("TIMEOUT", "TimeLimit")
    assert state.terminal


def test_scontrol_error_text_gives_nothing():
    assert parse_scontrol(data("scontrol-invalid-job.stderr.txt"), 3) == {}
    assert parse_scontrol("", 3) == {}


# --- parsing sacct (hand-written in the documented format, see SOURCES.md) ------------------------------


def test_sacct_array():
    states = parse_sacct(data("sacct-X-P-n.handwritten.txt"), "300", 5)
    assert sorted(states) == [0, 1, 2, 3, 4]
    assert (states[0].state, states[0].exit_code, states[0].nodes) == ("COMPLETED", "0:0", "n1")
    assert (states[1].state, states[1].exit_code, states[1].nodes) == ("FAILED", "3:0", "n2")
    assert (states[2].state, states[2].exit_code) == ("CANCELLED", "0:15")  # "CANCELLED by 0"
    assert states[3].state == states[4].state == "PENDING"  # 300_[3-4]
    assert states[3].nodes == ""  # "None assigned"


def test_sacct_other_jobs_are_ignored():
    states = parse_sacct(data("sacct-X-P-n.handwritten.txt"), "301", 1)
    assert list(states) == [0]
    assert (states[0].state, states[0].nodes) == ("TIMEOUT", "n[1-2]")
    assert parse_sacct(data("sacct-X-P-n.handwritten.txt"), "999", 3) == {}


def test_sacct_throttled_pending_range():
    states = parse_sacct(data("sacct-X-P-n.throttled.handwritten.txt"), "302", 5)
    assert [states[i].state for i in range(5)] == ["COMPLETED", "COMPLETED", "PENDING", "PENDING", "PENDING"]


def test_sacct_short_lines_are_skipped():
    assert parse_sacct("Slurm accounting storage is disabled\n", "300", 1) == {}


@pytest.mark.parametrize(
    "spec,size,expected",
    [
        ("3", 5, [3]),
        ("0", 1, [0]),
        ("0-2", 5, [0, 1, 2]),
        ("1-3%1", 4, [1, 2, 3]),
        ("2-3%1", 4, [2, 3]),
        ("[1-2]", 4, [1, 2]),
        ("[2-4%1]", 5, [2, 3, 4]),
        ("1,3-4%2", 5, [1, 3, 4]),
        ("0-9", 3, [0, 1, 2]),
        ("7", 3, []),
        ("", 3, [0, 1, 2]),
    ],
)
def test_indices(spec, size, expected):
    assert _indices(spec, size) == expected


# --- the client ---------------------------------------------------------------------------------------


def test_client_argv():
    runner = FakeRunner(sbatch=(0, "4242\n", ""), scancel=(0, "", ""))
    client = SlurmClient(runner)
    client.submit("/r/job.sh")
    client.submit("/r/job.sh", test_only=True)
    client.cancel(["1", "2_3"])
    client.cancel([])
    assert runner.calls == [
        ("sbatch", "--parsable", "/r/job.sh"),
        ("sbatch", "--parsable", "--test-only", "/r/job.sh"),
        ("scancel", "1", "2_3"),
    ]


def test_client_states_from_scontrol():
    runner = FakeRunner(scontrol=(0, data("scontrol-completed-array.txt"), ""))
    states = SlurmClient(runner).states("187", 3)
    assert runner.calls == [("scontrol", "show", "job", "-o", "187")]
    assert {s.state for s in states.values()} == {"COMPLETED"}


def test_client_states_fall_back_to_sacct():
    runner = FakeRunner(
        scontrol=(1, "", data("scontrol-invalid-job.stderr.txt")),
        sacct=(0, data("sacct-X-P-n.handwritten.txt"), ""),
    )
    states = SlurmClient(runner).states("300", 5)
    assert runner.of("sacct") == [("sacct", "-j", "300") + SACCT_ARGV]
    assert states[1].state == "FAILED"


def test_a_job_slurm_forgot_without_sacct_has_ended_unknown():
    """After MinJobAge scontrol answers "Invalid job id"; with no accounting the job is over, how is unknown
    (waiting for it would never end)."""
    runner = FakeRunner(
        scontrol=(1, "", data("scontrol-invalid-job.stderr.txt")),
        sacct=(1, "", data("sacct-disabled.stderr.txt")),
    )
    states = SlurmClient(runner).states("184", 2)
    assert sorted(states) == [0, 1]
    assert all(s.state == "UNKNOWN" and s.terminal and "no longer lists" in s.reason for s in states.values())


def test_an_unreachable_controller_is_not_taken_for_an_ended_job():
    runner = FakeRunner(
        scontrol=(1, "", "slurm_load_jobs error: Unable to contact slurm controller (connect failure)\n"),
        sacct=(1, "", data("sacct-disabled.stderr.txt")),
    )
    states = SlurmClient(runner).states("184", 1)
    assert states[0].state == "UNKNOWN" and not states[0].terminal
    assert "Unable to contact slurm controller" in states[0].reason


def test_require_names_the_missing_tool(monkeypatch):
    monkeypatch.setattr(slurm, "which", lambda name: None if name == "scontrol" else f"/usr/bin/{name}")
    with pytest.raises(ConfigError) as info:
        SlurmClient(FakeRunner()).require()
    assert "'scontrol'" in info.value.msg


# --- planning ------------------------------------------------------------------------------------------


def test_same_resources_go_as_one_array(tmp_path):
    data_ = manifest(model("a"), model("b"), model("c"))
    (plan,) = plan_jobs(data_, make_request(tmp_path))
    assert names(plan) == ["a", "b", "c"]
    assert plan.size == 3
    assert (plan.gpus_per_node, plan.launcher) == (1, "docker")
    assert "run1" in plan.name


def test_different_gpu_counts_go_to_different_jobs(tmp_path):
    data_ = manifest(model("a", "1"), model("b", "2"), model("c", 1), model("d", "2"))
    plans = plan_jobs(data_, make_request(tmp_path))
    assert sorted((p.gpus_per_node, names(p)) for p in plans) == [(1, ["a", "c"]), (2, ["b", "d"])]
    assert len({p.name for p in plans}) == 2


def test_different_launchers_go_to_different_jobs(tmp_path):
    data_ = manifest(
        model("a"),
        model("b", distributed={"launcher": "torchrun"}),
        model("c", distributed={"launcher": "TorchRun"}),
        model("d", distributed={"launcher": "vllm"}),
    )
    plans = plan_jobs(data_, make_request(tmp_path))
    assert sorted((p.launcher, names(p)) for p in plans) == [
        ("docker", ["a"]),
        ("torchrun", ["b", "c"]),
        ("vllm", ["d"]),
    ]


def test_context_launcher_applies_to_every_model(tmp_path):
    data_ = manifest(model("a"), model("b", distributed={"launcher": "vllm"}))
    (plan,) = plan_jobs(data_, make_request(tmp_path, ctx={"distributed": {"launcher": "deepspeed"}}))
    assert plan.launcher == "deepspeed" and names(plan) == ["a", "b"]


def test_array_false_is_one_job_per_model(tmp_path):
    data_ = manifest(model("a"), model("b"), model("c"))
    plans = plan_jobs(data_, make_request(tmp_path, {"array": False}))
    assert [names(p) for p in plans] == [["a"], ["b"], ["c"]]
    assert len({p.name for p in plans}) == 3


def test_slurm_multi_is_one_job_per_model(tmp_path):
    data_ = manifest(model("a"), model("b"))
    plans = plan_jobs(data_, make_request(tmp_path, {"nodes": 2}, ctx={"distributed": {"launcher": "slurm_multi"}}))
    assert [names(p) for p in plans] == [["a"], ["b"]]
    assert {p.launcher for p in plans} == {"slurm_multi"}


def test_cpu_images_need_no_gpus(tmp_path):
    data_ = manifest(model("cpu", "1", vendor="CPU"), model("gpu", "1", vendor="AMD"))
    plans = {names(p)[0]: p.gpus_per_node for p in plan_jobs(data_, make_request(tmp_path))}
    assert plans == {"cpu": 0, "gpu": 1}


def test_cpu_from_the_manifest_context_when_the_image_does_not_say(tmp_path):
    data_ = manifest(model("a", "2", vendor=""), ctx_vendor="CPU")
    (plan,) = plan_jobs(data_, make_request(tmp_path))
    assert plan.gpus_per_node == 0


def test_all_gpus_needs_gpus_per_node(tmp_path):
    data_ = manifest(model("hungry", "-1"))
    with pytest.raises(ConfigError) as info:
        plan_jobs(data_, make_request(tmp_path))
    assert "'hungry'" in info.value.msg
    assert "slurm.gpus_per_node" in info.value.hint
    (plan,) = plan_jobs(data_, make_request(tmp_path, {"gpus_per_node": 8}))
    assert plan.gpus_per_node == 8


def test_gpus_per_node_setting_wins_and_merges_groups(tmp_path):
    data_ = manifest(model("a", "1"), model("b", "4"), model("c", "2", vendor="CPU"))
    (plan,) = plan_jobs(data_, make_request(tmp_path, {"gpus_per_node": 4}))
    assert plan.gpus_per_node == 4 and plan.size == 3


def test_entry_without_a_model_record(tmp_path):
    data_ = manifest(model("a"))
    data_["built_models"] = {}
    with pytest.raises(ConfigError) as info:
        plan_jobs(data_, make_request(tmp_path))
    assert "ci-a" in info.value.msg


def test_task_label():
    (entry,) = entries(manifest(model("a")))
    single = JobPlan("j", [entry], 1, "docker", job_id="188")
    array = JobPlan("j", [entry, entry, entry], 1, "docker", job_id="187")
    assert single.task_label(0) == "188"
    assert array.task_label(2) == "187_2"


# --- the results directory -----------------------------------------------------------------------------


def test_results_dir_relative_to_the_package(tmp_path):
    request = make_request(tmp_path, {"output_dir": "out"}, run_id="nightly-7")
    assert results_dir(request) == os.path.join(request.package_root, "out", "nightly-7")


def test_results_dir_absolute(tmp_path):
    request = make_request(tmp_path, {"output_dir": "/shared/mad/results"})
    assert results_dir(request) == "/shared/mad/results/run1"


@pytest.mark.parametrize("output_dir", ["/shared/my results", "/shared/it's", "/shared/$(id)", "/a;b", "/a`b`", "/a|b"])
def test_results_dir_rejects_unsafe_paths(tmp_path, output_dir):
    with pytest.raises(ConfigError) as info:
        results_dir(make_request(tmp_path, {"output_dir": output_dir}))
    assert "slurm.output_dir" in info.value.msg


def test_results_dir_rejects_an_unsafe_package_path(tmp_path):
    request = make_request(tmp_path)
    request.package_root = str(tmp_path / "my package")
    with pytest.raises(ConfigError):
        results_dir(request)


# --- writing the jobs ----------------------------------------------------------------------------------


def test_write_jobs_spec_and_script(tmp_path):
    data_ = manifest(model("a", distributed={"launcher": "torchrun", "port": 29600}), model("b"), model("c", "2"))
    ctx = {"distributed": {"launcher": "torchrun", "backend": "gloo"}, "docker_env_vars": {"X": "1"}}
    request = make_request(tmp_path, {"nodes": 2, "network_interface": "ib0"}, ctx=ctx, timeout=600)
    plans = plan_jobs(data_, request)
    directory = results_dir(request)
    write_jobs(plans, request, directory)
    assert os.path.isdir(os.path.join(directory, "logs"))
    by_size = {p.size: p for p in plans}
    array, single = by_size[2], by_size[1]
    spec = JobSpec.read(array.spec_path)
    assert spec.models == ["ci-a", "ci-b"]
    assert (spec.nodes, spec.gpus_per_node, spec.launcher, spec.timeout) == (2, 1, "torchrun", 600)
    assert spec.results_dir == directory and spec.run_id == "run1"
    assert spec.manifest == request.manifest_path and spec.package_root == request.package_root
    assert spec.network_interface == "ib0"
    assert spec.distributed == {"launcher": "torchrun", "port": 29600, "backend": "gloo"}
    assert "slurm" not in spec.context and spec.context["docker_env_vars"] == {"X": "1"}
    assert JobSpec.read(single.spec_path).models == ["ci-c"]
    for plan in plans:
        assert os.path.dirname(plan.script_path) == directory
        assert os.access(plan.script_path, os.X_OK)
        script = Path(plan.script_path).read_text(encoding="utf-8")
        assert f"{MADENGINE} slurm-task {plan.spec_path}" in script
        assert f"#SBATCH --job-name={plan.name}" in script
    logs = os.path.join(directory, "logs")
    assert f"#SBATCH --output={logs}/{array.name}_%A_%a.out" in Path(array.script_path).read_text()
    assert f"#SBATCH --output={logs}/{single.name}_%j.out" in Path(single.script_path).read_text()


# --- submitting ----------------------------------------------------------------------------------------


def prepared(tmp_path, *models, settings=None, ctx=None, **kw):
    request = make_request(tmp_path, settings, ctx, **kw)
    plans = plan_jobs(manifest(*models), request)
    directory = results_dir(request)
    write_jobs(plans, request, directory)
    return request, plans, SlurmOutcome(plans=plans, results_dir=directory)


def test_submit_records_jobs_and_is_idempotent(tmp_path):
    ids = iter(["4242", "4243;cluster-a"])
    runner = FakeRunner(sbatch=lambda argv: (0, next(ids) + "\n", ""))
    _request, plans, outcome = prepared(tmp_path, model("a", "1"), model("b", "2"))
    submit_jobs(plans, SlurmClient(runner), outcome, "run1", Recorder())
    assert len(runner.of("sbatch")) == 2
    assert [p.job_id for p in plans] == ["4242", "4243"]  # --parsable may add ";<cluster>"
    assert outcome.submitted == ["4242", "4243"] and outcome.changed
    state = json.loads(Path(outcome.results_dir, "jobs.json").read_text())
    assert state["run_id"] == "run1"
    assert state["jobs"] == {plans[0].name: "4242", plans[1].name: "4243"}

    # the same run id again: nothing is submitted, the job ids come back from jobs.json
    _request, again, outcome2 = prepared(tmp_path, model("a", "1"), model("b", "2"))
    submit_jobs(again, SlurmClient(runner), outcome2, "run1", Recorder())
    assert len(runner.of("sbatch")) == 2
    assert [p.job_id for p in again] == ["4242", "4243"]
    assert outcome2.reused == ["4242", "4243"] and not outcome2.submitted and not outcome2.changed


def test_failed_sbatch_names_the_error(tmp_path):
    runner = FakeRunner(sbatch=(1, "", data("sbatch-bad-partition.stderr.txt")))
    request, plans, outcome = prepared(tmp_path, model("a"), model("b"), settings={"partition": "nope"})
    reporter = Recorder()
    submit_jobs(plans, SlurmClient(runner), outcome, "run1", reporter)
    (plan,) = plans
    assert plan.job_id == "" and not outcome.changed
    assert "Invalid partition name specified" in plan.submit_error
    assert json.loads(Path(outcome.results_dir, "jobs.json").read_text())["jobs"] == {}
    assert any("Invalid partition name specified" in w for w in reporter.warnings)
    rows = collect_rows(plans, request, outcome.results_dir, reporter)
    assert [(r["model"], r["status"], r["failure_reason"]) for r in rows] == [
        ("a", "FAILURE", "SUBMIT_FAILED"),
        ("b", "FAILURE", "SUBMIT_FAILED"),
    ]
    assert all(r["deployment_type"] == "slurm" and r["run_id"] == "run1" for r in rows)
    jobs = outcome.jobs()
    assert [j["model"] for j in jobs] == ["a", "b"]
    assert all("Invalid partition name specified" in j["reason"] and j["job_id"] == "" for j in jobs)
    # a failed submission is not remembered: the next call with the same run id tries again
    runner.answers["sbatch"] = (0, "5000\n", "")
    submit_jobs(plans, SlurmClient(runner), outcome, "run1", reporter)
    assert plan.job_id == "5000"


def test_failed_sbatch_without_output(tmp_path):
    runner = FakeRunner(sbatch=(1, "", ""))
    _request, plans, outcome = prepared(tmp_path, model("a"))
    submit_jobs(plans, SlurmClient(runner), outcome, "run1", Recorder())
    assert plans[0].submit_error == "exit code 1"


# --- waiting -------------------------------------------------------------------------------------------


def live_plan(job_id: str, size: int, launcher: str = "docker") -> JobPlan:
    members = entries(manifest(*(model(f"m{i}") for i in range(size))))
    return JobPlan(f"madengine-run1-{job_id}", members, 1, launcher, job_id=job_id)


def test_wait_returns_when_every_task_is_terminal():
    runner = FakeRunner(
        scontrol=[
            (0, data("scontrol-pending-array.txt"), ""),
            (0, data("scontrol-array-in-progress.txt"), ""),
            (0, data("scontrol-array-completed-cancelled.txt"), ""),
        ]
    )
    plan = live_plan("185", 4)
    clock = Clock()
    outcome = SlurmOutcome(plans=[plan], results_dir="")
    wait_jobs([plan], SlurmClient(runner), parse_settings({"wait_sleep": 5}), outcome, Recorder(), clock.sleep, clock)
    assert runner.of("scontrol") == [("scontrol", "show", "job", "-o", "185")] * 3
    assert len(clock.sleeps) == 2
    assert all(0 < s <= 5 for s in clock.sleeps)
    assert not runner.of("scancel") and not outcome.cancelled
    assert [plan.states[i].state for i in range(4)] == ["COMPLETED"] * 3 + ["CANCELLED"]


def test_wait_sleeps_at_most_wait_sleep():
    runner = FakeRunner(scontrol=[(0, data("scontrol-running.txt"), "")] * 40 + [(0, data("scontrol-failed.txt"), "")])
    plan = live_plan("186", 1)
    clock = Clock()
    wait_jobs(
        [plan],
        SlurmClient(runner),
        parse_settings({"wait_sleep": 2}),
        SlurmOutcome([plan], ""),
        Recorder(),
        clock.sleep,
        clock,
    )
    assert len(clock.sleeps) == 40
    assert max(clock.sleeps) == 2  # the poll interval grows to wait_sleep, never beyond


def test_wait_skips_plans_that_were_never_submitted():
    runner = FakeRunner()
    plan = live_plan("", 2)
    clock = Clock()
    wait_jobs([plan], SlurmClient(runner), parse_settings({}), SlurmOutcome([plan], ""), Recorder(), clock.sleep, clock)
    assert runner.calls == [] and clock.sleeps == []


def test_wait_timeout_cancels_what_is_still_running():
    runner = FakeRunner(
        scontrol=lambda argv: {
            "186": (0, data("scontrol-running.txt"), ""),
            "187": (0, data("scontrol-completed-array.txt"), ""),
            "185": (0, data("scontrol-array-in-progress.txt"), ""),
        }[argv[-1]],
        scancel=(0, "", ""),
    )
    running, done, partial = live_plan("186", 1), live_plan("187", 3), live_plan("185", 4)
    plans = [running, done, partial]
    clock = Clock()
    start = clock.now
    outcome = SlurmOutcome(plans=plans, results_dir="")
    reporter = Recorder()
    settings = parse_settings({"wait_timeout": 30, "wait_sleep": 7})
    wait_jobs(plans, SlurmClient(runner), settings, outcome, reporter, clock.sleep, clock)
    assert 30 <= clock.now - start < 30 + 7
    assert runner.of("scancel") == [("scancel", "186", "185")]  # 187 had ended
    assert outcome.cancelled == ["186", "185"]
    assert (running.states[0].state, running.states[0].reason) == ("CANCELLED", "WAIT_TIMEOUT")
    assert [done.states[i].state for i in range(3)] == ["COMPLETED"] * 3
    assert partial.states[0].state == "COMPLETED"  # already over: kept
    assert [(partial.states[i].state, partial.states[i].reason) for i in (1, 2, 3)] == [
        ("CANCELLED", "WAIT_TIMEOUT")
    ] * 3
    assert any("30" in w for w in reporter.warnings)


def test_no_wait_timeout_means_no_limit():
    polls = 200
    runner = FakeRunner(
        scontrol=[(0, data("scontrol-running.txt"), "")] * polls + [(0, data("scontrol-timeout.txt"), "")]
    )
    plan = live_plan("186", 1)
    clock = Clock()
    wait_jobs(
        [plan],
        SlurmClient(runner),
        parse_settings({"wait_sleep": 60}),
        SlurmOutcome([plan], ""),
        Recorder(),
        clock.sleep,
        clock,
    )
    assert len(runner.of("scontrol")) == polls + 1
    assert plan.states[0].state == "TIMEOUT"
    assert not runner.of("scancel")


def test_ctrl_c_cancels_and_returns_so_that_rows_are_still_written():
    runner = FakeRunner(scontrol=(0, data("scontrol-pending-array.txt"), ""), scancel=(0, "", ""))
    plan = live_plan("185", 4)
    outcome = SlurmOutcome(plans=[plan], results_dir="")
    before = signal.getsignal(signal.SIGTERM)

    def interrupted(_seconds):
        raise KeyboardInterrupt

    wait_jobs([plan], SlurmClient(runner), parse_settings({}), outcome, Recorder(), interrupted, Clock())
    assert outcome.interrupted
    assert runner.of("scancel") == [("scancel", "185")]
    assert outcome.cancelled == ["185"]
    assert {(s.state, s.reason) for s in plan.states.values()} == {("CANCELLED", "INTERRUPTED")}
    assert signal.getsignal(signal.SIGTERM) is before


def test_sigterm_while_waiting_cancels_the_jobs():
    runner = FakeRunner(scontrol=(0, data("scontrol-running.txt"), ""), scancel=(0, "", ""))
    plan = live_plan("186", 1)
    outcome = SlurmOutcome(plans=[plan], results_dir="")
    before = signal.getsignal(signal.SIGTERM)

    def terminated(_seconds):
        os.kill(os.getpid(), signal.SIGTERM)

    wait_jobs([plan], SlurmClient(runner), parse_settings({}), outcome, Recorder(), terminated, Clock())
    assert outcome.interrupted
    assert runner.of("scancel") == [("scancel", "186")]
    assert signal.getsignal(signal.SIGTERM) is before


# --- collecting rows -----------------------------------------------------------------------------------


def task_rows(directory: str, name: str, rank: int, nodes: int, rows: List[Dict[str, Any]]) -> None:
    path = task_dir(directory, name, rank, nodes)
    os.makedirs(path, exist_ok=True)
    perfcsv.write_rows(os.path.join(path, "perf.csv"), rows)


def ok_row(name: str, value: str = "12.5") -> Dict[str, Any]:
    return {
        "model": name,
        "status": "SUCCESS",
        "performance": value,
        "metric": "samples_per_second",
        "deployment_type": "local",
    }


def test_task_rows_become_slurm_rows(tmp_path):
    request = make_request(tmp_path)
    directory = results_dir(request)
    plan = live_plan("187", 3)
    plan.states = parse_scontrol(data("scontrol-completed-array.txt"), 3)
    task_rows(directory, "m0", 0, 1, [ok_row("m0", "1.5")])
    task_rows(directory, "m1", 0, 1, [ok_row("m1_a", "2"), ok_row("m1_b", "3")])  # multiple results
    reporter = Recorder()
    rows = collect_rows([plan], request, directory, reporter)
    assert [(r["model"], r["status"], r["performance"]) for r in rows] == [
        ("m0", "SUCCESS", "1.5"),
        ("m1_a", "SUCCESS", "2"),
        ("m1_b", "SUCCESS", "3"),
        ("m2", "FAILURE", ""),
    ]
    assert all(r["deployment_type"] == "slurm" and r["nnodes"] == "1" for r in rows)
    assert rows[-1]["failure_reason"] == "NO_RESULT"  # COMPLETED, but no rows
    assert any("m2" in w and "187_2" in w for w in reporter.warnings)


@pytest.mark.parametrize(
    "recording,job_id,reason",
    [
        ("scontrol-timeout.txt", "184", "SLURM_TIMEOUT"),
        ("scontrol-cancelled.txt", "189", "SLURM_CANCELLED"),
        ("scontrol-failed.txt", "188", "SLURM_FAILED"),
    ],
)
def test_missing_rows_say_what_slurm_did(tmp_path, recording, job_id, reason):
    request = make_request(tmp_path)
    directory = results_dir(request)
    plan = live_plan(job_id, 1)
    plan.states = parse_scontrol(data(recording), 1)
    os.makedirs(os.path.join(directory, "logs"))
    log = os.path.join(directory, "logs", f"{plan.name}_{job_id}.out")
    Path(log).write_text("slurmstepd: error\n")
    reporter = Recorder()
    (row,) = collect_rows([plan], request, directory, reporter)
    assert (row["model"], row["status"], row["failure_reason"]) == ("m0", "FAILURE", reason)
    assert (row["deployment_type"], row["run_id"], row["nnodes"]) == ("slurm", "run1", "1")
    (warning,) = reporter.warnings
    assert job_id in warning and log in warning


@pytest.mark.parametrize(
    "state,reason",
    [
        (TaskState("NODE_FAIL"), "SLURM_NODE_FAIL"),
        (TaskState("OUT_OF_MEMORY"), "SLURM_OUT_OF_MEMORY"),
        (TaskState("PREEMPTED"), "SLURM_PREEMPTED"),
        (TaskState("CANCELLED", reason="WAIT_TIMEOUT"), "WAIT_TIMEOUT"),
        (TaskState("CANCELLED", reason="INTERRUPTED"), "INTERRUPTED"),
        (TaskState("UNKNOWN", reason="not known to scontrol or sacct"), "SLURM_UNKNOWN"),
    ],
)
def test_missing_rows_other_states(tmp_path, state, reason):
    request = make_request(tmp_path, {"nodes": 3})
    directory = results_dir(request)
    plan = live_plan("77", 1)
    plan.states = {0: state}
    (row,) = collect_rows([plan], request, directory, Recorder())
    assert (row["status"], row["failure_reason"], row["nnodes"]) == ("FAILURE", reason, "3")


def test_rows_of_a_task_keep_their_own_failure(tmp_path):
    request = make_request(tmp_path)
    directory = results_dir(request)
    plan = live_plan("188", 1)
    plan.states = parse_scontrol(data("scontrol-failed.txt"), 1)
    task_rows(directory, "m0", 0, 1, [{"model": "m0", "status": "FAILURE", "failure_reason": "EXIT_CODE"}])
    (row,) = collect_rows([plan], request, directory, Recorder())
    assert (row["status"], row["failure_reason"]) == ("FAILURE", "EXIT_CODE")


@pytest.mark.parametrize(
    "recording,job_id,reason",
    [("scontrol-timeout.txt", "184", "SLURM_TIMEOUT"), ("scontrol-cancelled.txt", "189", "SLURM_CANCELLED")],
)
def test_rows_of_a_signalled_task_say_what_slurm_did(tmp_path, recording, job_id, reason):
    """SLURM's time limit or scancel signals the task, which writes an INTERRUPTED row: the job state names it."""
    request = make_request(tmp_path)
    directory = results_dir(request)
    plan = live_plan(job_id, 1)
    plan.states = parse_scontrol(data(recording), 1)
    task_rows(directory, "m0", 0, 1, [{"model": "m0", "status": "FAILURE", "failure_reason": "INTERRUPTED"}])
    (row,) = collect_rows([plan], request, directory, Recorder())
    assert (row["status"], row["failure_reason"]) == ("FAILURE", reason)


def test_multi_node_all_nodes_ok(tmp_path):
    request = make_request(tmp_path, {"nodes": 2})
    directory = results_dir(request)
    plan = live_plan("90", 1, "torchrun")
    task_rows(directory, "m0", 0, 2, [ok_row("m0")])
    task_rows(directory, "m0", 1, 2, [{"model": "m0", "status": "SUCCESS"}])
    (row,) = collect_rows([plan], request, directory, Recorder())
    assert (row["status"], row["nnodes"]) == ("SUCCESS", "2")


def test_multi_node_failing_node_fails_the_model(tmp_path):
    request = make_request(tmp_path, {"nodes": 3})
    directory = results_dir(request)
    plan = live_plan("91", 1, "torchrun")
    task_rows(directory, "m0", 0, 3, [ok_row("m0_a"), ok_row("m0_b")])
    task_rows(directory, "m0", 1, 3, [{"model": "m0", "status": "FAILURE", "failure_reason": "EXIT_CODE"}])
    task_rows(directory, "m0", 2, 3, [{"model": "m0", "status": "SUCCESS"}])
    reporter = Recorder()
    rows = collect_rows([plan], request, directory, reporter)
    assert [r["status"] for r in rows] == ["FAILURE", "FAILURE"]
    assert all("EXIT_CODE" in r["failure_reason"] and "1" in r["failure_reason"] for r in rows)
    assert any("node 1" in w for w in reporter.warnings)


def test_multi_node_silent_node_fails_the_model(tmp_path):
    request = make_request(tmp_path, {"nodes": 2})
    directory = results_dir(request)
    plan = live_plan("92", 1, "torchrun")
    task_rows(directory, "m0", 0, 2, [ok_row("m0")])
    (row,) = collect_rows([plan], request, directory, Recorder())
    assert row["status"] == "FAILURE" and "NO_RESULT" in row["failure_reason"]


def test_multi_node_head_without_rows_is_a_failure_row(tmp_path):
    request = make_request(tmp_path, {"nodes": 2})
    directory = results_dir(request)
    plan = live_plan("93", 1, "torchrun")
    plan.states = parse_scontrol(data("scontrol-timeout.txt"), 1)
    task_rows(directory, "m0", 1, 2, [ok_row("m0")])
    (row,) = collect_rows([plan], request, directory, Recorder())
    assert (row["status"], row["failure_reason"], row["nnodes"]) == ("FAILURE", "SLURM_TIMEOUT", "2")


def test_self_managed_multi_node_is_one_task(tmp_path):
    # slurm_multi: one task on the first node writes the rows; no other node has a task directory
    request = make_request(tmp_path, {"nodes": 2}, ctx={"distributed": {"launcher": "slurm_multi"}})
    directory = results_dir(request)
    plan = live_plan("94", 1, "slurm_multi")
    task_rows(directory, "m0", 0, 1, [dict(ok_row("m0"), nnodes="2")])
    reporter = Recorder()
    (row,) = collect_rows([plan], request, directory, reporter)
    assert (row["status"], row["nnodes"]) == ("SUCCESS", "2")
    assert reporter.warnings == []


def fake_cluster(recordings: Dict[str, str], with_rows: List[str]) -> FakeRunner:
    """sbatch 'runs' the job at once (the models in with_rows write their rows into their task directories);
    scontrol then shows the job's recording."""
    counter = iter(range(187, 300))

    def sbatch(argv):
        job_id = str(next(counter))
        spec = JobSpec.read(argv[-1][: -len(".sh")] + ".json")
        for key in spec.models:
            name = key[len("ci-") :]
            if name in with_rows:
                task_rows(spec.results_dir, name, 0, 1, [ok_row(name)])
        return (0, f"{job_id}\n", "")

    return FakeRunner(sbatch=sbatch, scontrol=lambda argv: (0, data(recordings[argv[-1]]), ""), scancel=(0, "", ""))


def test_run_on_slurm_submits_waits_collects_once(tmp_path):
    data_ = manifest(model("m0"), model("m1"), model("m2"))
    request = make_request(tmp_path, {"wait_sleep": 1})
    runner = fake_cluster({"187": "scontrol-completed-array.txt"}, ["m0", "m1"])
    outcome = run_on_slurm(data_, request, Recorder(), runner)
    assert runner.of("sbatch") == [("sbatch", "--parsable", outcome.plans[0].script_path)]
    assert [(r["model"], r["status"], r["failure_reason"]) for r in outcome.rows] == [
        ("m0", "SUCCESS", ""),
        ("m1", "SUCCESS", ""),
        ("m2", "FAILURE", "NO_RESULT"),
    ]
    written = perfcsv.read_rows(os.path.join(outcome.results_dir, "perf.csv"))
    assert [r["model"] for r in written] == ["m0", "m1", "m2"]
    assert outcome.changed and outcome.submitted == ["187"] and outcome.newly_collected
    assert json.loads(Path(outcome.results_dir, "jobs.json").read_text())["collected"] is True

    again = run_on_slurm(data_, request, Recorder(), runner)
    assert len(runner.of("sbatch")) == 1
    assert again.reused == ["187"] and not again.changed and not again.newly_collected
    assert [r["model"] for r in again.rows] == ["m0", "m1", "m2"]


def test_run_on_slurm_without_wait_reports_states(tmp_path):
    data_ = manifest(model("m0"))
    request = make_request(tmp_path, {"wait": False})
    runner = FakeRunner(sbatch=(0, "186\n", ""), scontrol=(0, data("scontrol-running.txt"), ""))
    outcome = run_on_slurm(data_, request, Recorder(), runner)
    assert outcome.rows == [] and outcome.submitted == ["186"]
    assert outcome.plans[0].states[0].state == "RUNNING"
    assert not os.path.exists(os.path.join(outcome.results_dir, "perf.csv"))


def test_ctrl_c_while_submitting_cancels_what_went_and_still_writes_every_row(tmp_path):
    answers = [(0, "300\n", "")]

    def sbatch(_argv):
        if answers:
            return answers.pop()
        raise KeyboardInterrupt  # the user presses Ctrl-C while the second sbatch runs

    runner = FakeRunner(sbatch=sbatch, scancel=(0, "", ""), scontrol=(0, data("scontrol-running.txt"), ""))
    reporter = Recorder()
    before = signal.getsignal(signal.SIGTERM)
    outcome = run_on_slurm(manifest(model("a", "1"), model("b", "2")), make_request(tmp_path), reporter, runner)
    first, second = outcome.plans
    assert len(runner.of("sbatch")) == 2 and outcome.interrupted
    assert runner.of("scancel") == [("scancel", "300")] and outcome.cancelled == ["300"]
    assert not runner.of("scontrol")  # no waiting after an interruption
    assert [(r["model"], r["status"], r["failure_reason"]) for r in outcome.rows] == [
        ("a", "FAILURE", "INTERRUPTED"),
        ("b", "FAILURE", "INTERRUPTED"),
    ]
    assert any(f"{second.name} was not submitted" in w for w in reporter.warnings)
    assert json.loads(Path(outcome.results_dir, "jobs.json").read_text())["jobs"] == {first.name: "300"}
    assert signal.getsignal(signal.SIGTERM) is before


def test_generate_only_writes_without_submitting(tmp_path):
    request = make_request(tmp_path, submit=False)
    runner = FakeRunner()
    outcome = run_on_slurm(manifest(model("m0")), request, Recorder(), runner)
    assert runner.calls == []
    assert os.path.isfile(outcome.plans[0].script_path) and os.path.isfile(outcome.plans[0].spec_path)


def test_check_mode_writes_nothing_and_asks_sbatch_test_only(tmp_path):
    request = make_request(tmp_path, check_mode=True)
    seen: Dict[str, str] = {}

    def sbatch(argv):
        seen["script"] = Path(argv[-1]).read_text(encoding="utf-8")  # the script exists while sbatch reads it
        seen["spec"] = Path(argv[-1][: -len(".sh")] + ".json").read_text(encoding="utf-8")
        return (0, "", data("sbatch-test-only-ok.stderr.txt"))

    runner = FakeRunner(sbatch=sbatch)
    outcome = run_on_slurm(manifest(model("m0"), model("m1")), request, Recorder(), runner)
    (argv,) = runner.of("sbatch")
    assert argv[:3] == ("sbatch", "--parsable", "--test-only")
    assert not argv[-1].startswith(outcome.results_dir)
    assert not os.path.exists(outcome.results_dir)
    assert not os.path.exists(os.path.dirname(outcome.results_dir))  # not even slurm_results/
    assert not os.path.exists(argv[-1])  # the scratch copy is gone
    assert "slurm-task" in seen["script"] and json.loads(seen["spec"])["models"] == ["ci-m0", "ci-m1"]
    expected = data("sbatch-test-only-ok.stderr.txt").strip().splitlines()[-1]
    assert outcome.test_only == [{"job_name": outcome.plans[0].name, "ok": "true", "message": expected}]
    assert outcome.changed and outcome.rows == [] and not outcome.submitted


def test_check_mode_reports_what_sbatch_refuses(tmp_path):
    request = make_request(tmp_path, {"partition": "nope"}, check_mode=True)
    runner = FakeRunner(sbatch=(1, "", data("sbatch-test-only-bad-partition.stderr.txt")))
    outcome = run_on_slurm(manifest(model("m0")), request, Recorder(), runner)
    (result,) = outcome.test_only
    assert result["ok"] == "false"
    assert "Invalid partition name specified" in result["message"]
    assert "Invalid partition name specified" in outcome.plans[0].submit_error
    assert not os.path.exists(outcome.results_dir)


def test_check_mode_after_a_collected_run_changes_nothing(tmp_path):
    data_ = manifest(model("m0"))
    request = make_request(tmp_path, {"wait_sleep": 1})
    runner = fake_cluster({"187": "scontrol-completed-array.txt"}, ["m0"])
    run_on_slurm(data_, request, Recorder(), runner)
    directory = results_dir(request)
    before = {name: Path(directory, name).stat().st_mtime_ns for name in os.listdir(directory)}
    request.check_mode = True
    outcome = run_on_slurm(data_, request, Recorder(), runner)
    assert len(runner.of("sbatch")) == 1  # no --test-only for a job already submitted
    assert not outcome.changed and outcome.test_only == []
    assert {name: Path(directory, name).stat().st_mtime_ns for name in os.listdir(directory)} == before
