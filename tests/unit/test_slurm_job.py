"""What a SLURM task does on its compute node: the job spec, the task index, the node's place and environment,
the staged workspace, and (self-managed) the whole task with the real bash."""

from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

from ansible_collections.rocm.madengine.plugins.module_utils import perfcsv, slurm_job
from ansible_collections.rocm.madengine.plugins.module_utils.commands import CommandResult
from ansible_collections.rocm.madengine.plugins.module_utils.errors import ConfigError, RunError
from ansible_collections.rocm.madengine.plugins.module_utils.manifest import ManifestEntry
from ansible_collections.rocm.madengine.plugins.module_utils.slurm_job import (
    SPEC_VERSION,
    TASK_INDEX_ENV,
    JobSpec,
    NodeContext,
    node_context,
    run_task,
    safe_name,
    stage_workspace,
    task_dir,
    task_environment,
    task_index,
)

REPO = Path(__file__).resolve().parents[2]
FIXTURE_MAD = REPO / "tests" / "fixtures" / "mad"
DATA = Path(__file__).parent / "data" / "slurm"
HOSTNAMES = (DATA / "scontrol-show-hostnames.txt").read_text(encoding="utf-8")  # recorded: n1, n2
SLURM_VARS = (
    "SLURM_JOB_ID",
    "SLURM_ARRAY_JOB_ID",
    "SLURM_ARRAY_TASK_ID",
    "SLURM_JOB_NODELIST",
    "SLURM_NODELIST",
    "SLURM_JOB_NUM_NODES",
    "SLURM_NODEID",
    "SLURM_PROCID",
    "SLURMD_NODENAME",
    TASK_INDEX_ENV,
)


class FakeRunner:
    def __init__(self, outputs: Dict[Tuple[str, ...], Tuple[int, str]]) -> None:
        self.outputs = outputs
        self.calls: List[Tuple[str, ...]] = []

    def __call__(self, argv, timeout=None, env=None, input_text=None) -> CommandResult:
        key = tuple(argv)
        self.calls.append(key)
        rc, out = self.outputs.get(key, (127, ""))
        return CommandResult(key, rc, out, "" if rc == 0 else "error")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for name in SLURM_VARS + ("MAD_DEPLOYMENT_TYPE", "NPROC_PER_NODE", "GPUS_PER_NODE", "MAD_LAUNCHER"):
        monkeypatch.delenv(name, raising=False)
    saved = dict(os.environ)
    yield
    os.environ.clear()  # run_task exports the launcher variables into its own process
    os.environ.update(saved)


def spec(tmp_path: Path, **kw) -> JobSpec:
    values = dict(
        run_id="run1",
        manifest=str(tmp_path / "build_manifest.json"),
        package_root=str(tmp_path / "pkg"),
        results_dir=str(tmp_path / "results" / "run1"),
        models=["ci-a", "ci-b", "ci-c"],
    )
    values.update(kw)
    return JobSpec(**values)


def slurm_env(monkeypatch, **values: str) -> None:
    for name, value in values.items():
        monkeypatch.setenv(name, value)


# --- the job spec --------------------------------------------------------------------------------------


def test_spec_round_trip(tmp_path):
    original = spec(
        tmp_path,
        nodes=2,
        gpus_per_node=8,
        launcher="torchrun",
        distributed={"port": 29611, "backend": "gloo"},
        context={"gpu_vendor": "AMD", "docker_env_vars": {"X": "1"}},
        timeout=600,
        network_interface="ib0",
    )
    path = str(tmp_path / "job.json")
    original.write(path)
    assert JobSpec.read(path) == original
    assert json.loads(Path(path).read_text())["version"] == SPEC_VERSION
    assert os.listdir(tmp_path) == ["job.json"]  # no temporary file left behind


def test_spec_defaults_survive_the_round_trip(tmp_path):
    original = spec(tmp_path)
    path = str(tmp_path / "job.json")
    original.write(path)
    read = JobSpec.read(path)
    assert (read.nodes, read.gpus_per_node, read.launcher, read.timeout) == (1, 0, "docker", None)


@pytest.mark.parametrize("version", [SPEC_VERSION + 1, 0, "1", None])
def test_spec_version_must_match(tmp_path, version):
    path = tmp_path / "job.json"
    spec(tmp_path).write(str(path))
    document = json.loads(path.read_text())
    document["version"] = version
    path.write_text(json.dumps(document))
    with pytest.raises(ConfigError) as info:
        JobSpec.read(str(path))
    assert str(path) in info.value.msg
    assert repr(version) in info.value.msg


def test_spec_without_version(tmp_path):
    path = tmp_path / "job.json"
    spec(tmp_path).write(str(path))
    document = json.loads(path.read_text())
    del document["version"]
    path.write_text(json.dumps(document))
    with pytest.raises(ConfigError):
        JobSpec.read(str(path))


def test_spec_ignores_keys_it_does_not_know(tmp_path):
    path = tmp_path / "job.json"
    spec(tmp_path).write(str(path))
    document = json.loads(path.read_text())
    document["written_by"] = "a newer madengine"
    path.write_text(json.dumps(document))
    assert JobSpec.read(str(path)).models == ["ci-a", "ci-b", "ci-c"]


def test_spec_missing_or_not_json(tmp_path):
    with pytest.raises(ConfigError):
        JobSpec.read(str(tmp_path / "nope.json"))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError):
        JobSpec.read(str(bad))


# --- the task index ------------------------------------------------------------------------------------


def test_task_index_defaults_to_zero(tmp_path):
    assert task_index(spec(tmp_path)) == 0


def test_task_index_from_the_array(tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "2")
    assert task_index(spec(tmp_path)) == 2


def test_task_index_from_madengine_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "2")
    monkeypatch.setenv(TASK_INDEX_ENV, "1")
    assert task_index(spec(tmp_path)) == 1


@pytest.mark.parametrize("variable", [TASK_INDEX_ENV, "SLURM_ARRAY_TASK_ID"])
@pytest.mark.parametrize("value", ["3", "17", "-1", "x", "1.0"])
def test_task_index_out_of_range(tmp_path, monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as info:
        task_index(spec(tmp_path))  # three models: 0..2
    assert repr(value) in info.value.msg
    assert "3 models" in info.value.msg


# --- names and directories -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,expected",
    [
        ("dummy", "dummy"),
        ("dummy3/model3", "dummy3_model3"),
        ("primus_pretrain/megatron_llama", "primus_pretrain_megatron_llama"),
        ("a b", "a_b"),
        ("model.v1-x_y", "model.v1-x_y"),
        ("it's$(x)", "it_s__x_"),
        ("", "_"),
    ],
)
def test_safe_name(name, expected):
    assert safe_name(name) == expected
    assert os.sep not in safe_name(name)


def test_task_dir_single_node(tmp_path):
    results = str(tmp_path / "r")
    assert task_dir(results, "dummy3/model3", 0, 1) == os.path.join(results, "tasks", "dummy3_model3")


def test_task_dir_multi_node(tmp_path):
    results = str(tmp_path / "r")
    dirs = [task_dir(results, "m", rank, 3) for rank in range(3)]
    assert dirs == [os.path.join(results, "tasks", "m", f"node_{rank}") for rank in range(3)]


# --- the node's place in the job -----------------------------------------------------------------------


def test_node_context_multi_node(tmp_path, monkeypatch):
    slurm_env(
        monkeypatch,
        SLURM_JOB_ID="555",
        SLURM_JOB_NODELIST="n[1-2]",
        SLURM_JOB_NUM_NODES="2",
        SLURM_NODEID="1",
        SLURM_PROCID="1",
        SLURMD_NODENAME="n2",
    )
    runner = FakeRunner({("scontrol", "show", "hostnames", "n[1-2]"): (0, HOSTNAMES)})
    node = node_context(spec(tmp_path, nodes=2), runner)
    assert node == NodeContext(job_id="555", node_rank=1, nnodes=2, hosts=["n1", "n2"], node_name="n2")
    assert runner.calls == [("scontrol", "show", "hostnames", "n[1-2]")]


def test_node_context_rank_from_procid(tmp_path, monkeypatch):
    slurm_env(monkeypatch, SLURM_JOB_ID="555", SLURM_JOB_NUM_NODES="2", SLURM_PROCID="1")
    node = node_context(spec(tmp_path, nodes=2), FakeRunner({}))
    assert (node.node_rank, node.nnodes) == (1, 2)


def test_node_context_uses_slurm_nodelist(tmp_path, monkeypatch):
    slurm_env(monkeypatch, SLURM_NODELIST="n[1-2]")
    runner = FakeRunner({("scontrol", "show", "hostnames", "n[1-2]"): (0, HOSTNAMES)})
    assert node_context(spec(tmp_path), runner).hosts == ["n1", "n2"]


def test_node_context_single_node_job_ignores_node_ids(tmp_path, monkeypatch):
    slurm_env(monkeypatch, SLURM_JOB_ID="556", SLURM_JOB_NUM_NODES="2", SLURM_NODEID="1", SLURMD_NODENAME="n2")
    node = node_context(spec(tmp_path, nodes=1), FakeRunner({}))
    assert (node.node_rank, node.nnodes, node.job_id) == (0, 1, "556")


def test_node_context_array_job_id(tmp_path, monkeypatch):
    slurm_env(monkeypatch, SLURM_JOB_ID="191", SLURM_ARRAY_JOB_ID="187", SLURM_ARRAY_TASK_ID="0")
    assert node_context(spec(tmp_path), FakeRunner({})).job_id == "187"


def test_node_context_outside_slurm(tmp_path):
    runner = FakeRunner({})
    node = node_context(spec(tmp_path, nodes=2), runner)
    assert node.job_id == "local"
    assert node.node_name == socket.gethostname()
    assert node.hosts == [] and runner.calls == []
    assert (node.nnodes, node.node_rank) == (2, 0)  # spec.nodes when SLURM does not say


def test_node_context_hostnames_fail(tmp_path, monkeypatch):
    slurm_env(monkeypatch, SLURM_JOB_NODELIST="n[1-2]")
    assert node_context(spec(tmp_path), FakeRunner({})).hosts == []


# --- the node's environment ----------------------------------------------------------------------------


def two_nodes(rank: int) -> NodeContext:
    return NodeContext(job_id="555", node_rank=rank, nnodes=2, hosts=["n1", "n2"], node_name=f"n{rank + 1}")


@pytest.mark.parametrize("rank", [0, 1])
def test_torchrun_two_nodes(tmp_path, rank):
    job = spec(
        tmp_path,
        nodes=2,
        gpus_per_node=8,
        launcher="torchrun",
        network_interface="ib0",
        distributed={"master_port": 29611},
    )
    env = task_environment(job, two_nodes(rank), "AMD")
    assert env["MASTER_ADDR"] == "n1"  # the first host, on every node
    assert env["MASTER_PORT"] == "29611"
    assert (env["NNODES"], env["NODE_RANK"]) == ("2", str(rank))
    assert env["NPROC_PER_NODE"] == "8" and env["WORLD_SIZE"] == "16"
    assert env["MAD_COLLECT_METRICS"] == ("true" if rank == 0 else "false")
    assert env["NCCL_SOCKET_IFNAME"] == env["GLOO_SOCKET_IFNAME"] == "ib0"
    assert env["MAD_DEPLOYMENT_TYPE"] == "slurm" and env["MAD_IN_SLURM_JOB"] == "1"
    assert env["MAD_SLURM_JOB_ID"] == "555"
    assert env["DISTRIBUTED_BACKEND"] == "nccl"
    assert env["HIP_VISIBLE_DEVICES"] == ",".join(str(i) for i in range(8))
    runner = env["MAD_MULTI_NODE_RUNNER"]
    assert f"--node_rank={rank}" in runner and "--master_addr=n1" in runner and "--nnodes=2" in runner


def test_environment_without_interface_or_port(tmp_path):
    job = spec(tmp_path, nodes=2, gpus_per_node=2, launcher="torchrun", distributed={"backend": "gloo"})
    env = task_environment(job, two_nodes(1), "NVIDIA")
    assert "NCCL_SOCKET_IFNAME" not in env and "GLOO_SOCKET_IFNAME" not in env
    assert env["MASTER_PORT"] == "29500"
    assert env["DISTRIBUTED_BACKEND"] == "gloo"
    assert env["CUDA_VISIBLE_DEVICES"] == "0,1"


def test_environment_port_spelling(tmp_path):
    job = spec(tmp_path, nodes=2, gpus_per_node=1, launcher="torchrun", distributed={"port": 31000})
    assert task_environment(job, two_nodes(0), "AMD")["MASTER_PORT"] == "31000"


def test_single_node_cpu_environment(tmp_path):
    job = spec(tmp_path, gpus_per_node=0)
    node = NodeContext(job_id="7", node_rank=0, nnodes=1, hosts=[], node_name="n2")
    env = task_environment(job, node, "CPU")
    assert env["MASTER_ADDR"] == "n2" and env["NNODES"] == "1"
    assert env["MAD_COLLECT_METRICS"] == "true"
    assert not any(name.endswith("VISIBLE_DEVICES") for name in env)


def test_deepspeed_two_nodes_writes_its_hostfile(tmp_path):
    job_id = f"unit{os.getpid()}"
    node = NodeContext(job_id=job_id, node_rank=0, nnodes=2, hosts=["n1", "n2"], node_name="n1")
    job = spec(tmp_path, nodes=2, gpus_per_node=4, launcher="deepspeed")
    hostfile = Path(f"/tmp/deepspeed_hostfile_{job_id}.txt")
    try:
        env = task_environment(job, node, "AMD")
        assert hostfile.read_text() == "n1 slots=4\nn2 slots=4\n"
        assert f"--hostfile={hostfile}" in env["MAD_MULTI_NODE_RUNNER"]
    finally:
        hostfile.unlink(missing_ok=True)


# --- staging the workspace -----------------------------------------------------------------------------


def entry(scripts: str) -> ManifestEntry:
    return ManifestEntry("ci-m", {"docker_image": "ci-m"}, {"name": "m", "scripts": scripts})


def test_stage_follows_the_symlinked_dockerfiles_of_dummy3(tmp_path):
    job = spec(tmp_path, package_root=str(FIXTURE_MAD))
    workspace = tmp_path / "ws"
    stage_workspace(job, entry("scripts/dummy3/run.sh"), str(workspace))
    staged = workspace / "scripts" / "dummy3"
    source = FIXTURE_MAD / "scripts" / "dummy3"
    assert sorted(p.name for p in staged.iterdir()) == sorted(p.name for p in source.iterdir())
    links = sorted((source / "docker").iterdir())
    assert links and all(link.is_symlink() for link in links)  # the fixture's Dockerfiles are relative links
    for link in links:
        copy = staged / "docker" / link.name
        assert copy.is_file() and not copy.is_symlink()  # a link would dangle in the workspace
        assert copy.read_bytes() == link.resolve().read_bytes()
    assert not (workspace / "scripts" / "common").exists()  # the fixture has none


def make_package(root: Path) -> Path:
    (root / "scripts" / "m").mkdir(parents=True)
    (root / "scripts" / "m" / "run.sh").write_text("echo performance: 1 x\n")
    (root / "scripts" / "common" / "tools").mkdir(parents=True)
    (root / "scripts" / "common" / "tools" / "helper.sh").write_text("echo helper\n")
    (root / "datasets" / "tiny").mkdir(parents=True)
    (root / "datasets" / "tiny" / "data.txt").write_text("1 2 3\n")
    (root / "scripts" / "m" / "data").symlink_to(Path("..", "..", "datasets", "tiny"), target_is_directory=True)
    (root / "scripts" / "other").mkdir()
    (root / "scripts" / "other" / "run.sh").write_text("echo other\n")
    return root


def test_stage_copies_the_script_dir_and_common(tmp_path):
    package = make_package(tmp_path / "pkg")
    workspace = tmp_path / "ws"
    stage_workspace(spec(tmp_path, package_root=str(package)), entry("scripts/m/run.sh"), str(workspace))
    assert (workspace / "scripts" / "m" / "run.sh").read_text() == "echo performance: 1 x\n"
    assert (workspace / "scripts" / "common" / "tools" / "helper.sh").read_text() == "echo helper\n"
    data_dir = workspace / "scripts" / "m" / "data"
    assert data_dir.is_dir() and not data_dir.is_symlink()  # the directory link is followed
    assert (data_dir / "data.txt").read_text() == "1 2 3\n"
    assert not (workspace / "scripts" / "other").exists()  # only this model's scripts
    assert not (workspace / "datasets").exists()


def test_stage_a_script_directory(tmp_path):
    package = make_package(tmp_path / "pkg")
    workspace = tmp_path / "ws"
    stage_workspace(spec(tmp_path, package_root=str(package)), entry("scripts/m"), str(workspace))
    assert (workspace / "scripts" / "m" / "run.sh").is_file()


def test_stage_replaces_an_old_copy(tmp_path):
    package = make_package(tmp_path / "pkg")
    workspace = tmp_path / "ws"
    stale = workspace / "scripts" / "m" / "stale.txt"
    stale.parent.mkdir(parents=True)
    stale.write_text("from an earlier run")
    stage_workspace(spec(tmp_path, package_root=str(package)), entry("scripts/m/run.sh"), str(workspace))
    assert not stale.exists()
    assert (workspace / "scripts" / "m" / "run.sh").is_file()


def test_stage_without_scripts_copies_common_only(tmp_path):
    package = make_package(tmp_path / "pkg")
    workspace = tmp_path / "ws"
    stage_workspace(spec(tmp_path, package_root=str(package)), entry(""), str(workspace))
    assert sorted(os.listdir(workspace / "scripts")) == ["common"]


# --- a whole self-managed (slurm_multi) task, with the real bash -----------------------------------------


def self_managed_setup(tmp_path: Path, script: str = "scripts/dummy/run.sh") -> Tuple[str, JobSpec]:
    package = tmp_path / "pkg"
    (package / "scripts").mkdir(parents=True)
    shutil.copytree(FIXTURE_MAD / "scripts" / "dummy", package / "scripts" / "dummy")
    manifest = {
        "built_images": {"ci-dummy": {"docker_image": "ci-dummy", "gpu_vendor": "CPU"}},
        "built_models": {"ci-dummy": {"name": "dummy", "scripts": script, "n_gpus": "1", "args": ""}},
        "context": {"gpu_vendor": "CPU"},
    }
    (package / "build_manifest.json").write_text(json.dumps(manifest))
    job = spec(
        tmp_path,
        manifest=str(package / "build_manifest.json"),
        package_root=str(package),
        models=["ci-dummy"],
        nodes=2,
        launcher="slurm_multi",
        context={"gpu_vendor": "CPU"},
        timeout=60,
    )
    path = str(tmp_path / "job.json")
    job.write(path)
    return path, job


def test_self_managed_task_on_two_nodes_writes_where_the_submitter_collects(tmp_path, monkeypatch):
    from ansible_collections.rocm.madengine.plugins.module_utils import slurm
    from ansible_collections.rocm.madengine.plugins.module_utils.manifest import entries, load_manifest
    from ansible_collections.rocm.madengine.plugins.module_utils.reporting import Reporter
    from ansible_collections.rocm.madengine.plugins.module_utils.slurm_config import parse_settings

    path, job = self_managed_setup(tmp_path)
    slurm_env(
        monkeypatch,
        SLURM_JOB_ID="900",
        SLURM_JOB_NODELIST="n[1-2]",
        SLURM_JOB_NUM_NODES="2",
        SLURM_NODEID="0",
        SLURMD_NODENAME="n1",
    )
    runner = FakeRunner({("scontrol", "show", "hostnames", "n[1-2]"): (0, HOSTNAMES)})
    assert run_task(path, runner=runner) == 0

    # the submitter's side: the plan of this model and its collection
    (model_entry,) = entries(load_manifest(job.manifest))
    plan = slurm.JobPlan("madengine-run1-0", [model_entry], 0, "slurm_multi", job_id="900")
    plan.states = {0: slurm.TaskState("COMPLETED", "0:0")}
    request = slurm.SlurmRequest(
        settings=parse_settings({"nodes": 2}),
        context=job.context,
        package_root=job.package_root,
        manifest_path=job.manifest,
        run_id="run1",
    )
    (row,) = slurm.collect_rows([plan], request, job.results_dir, Reporter())
    assert (row["model"], row["status"], row["launcher"]) == ("dummy", "SUCCESS", "slurm_multi")
    assert row["nnodes"] == "2" and row["deployment_type"] == "slurm"
    assert row["machine_name"] == "n1"
    assert float(row["performance"]) >= 0 and row["metric"] == "samples_per_second"
    task = json.loads(Path(task_dir(job.results_dir, "dummy", 0, 1), "task.json").read_text())
    assert (task["state"], task["ok"], task["job_id"], task["node"]) == ("DONE", True, "900", "n1")


def test_self_managed_task_with_a_missing_script(tmp_path, monkeypatch):
    path, _job = self_managed_setup(tmp_path, script="scripts/dummy/absent.sh")
    with pytest.raises(RunError) as info:
        run_task(path, runner=FakeRunner({}))
    assert "scripts/dummy/absent.sh" in info.value.msg


def test_task_rejects_an_index_outside_the_spec(tmp_path, monkeypatch):
    path, _job = self_managed_setup(tmp_path)
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "1")
    with pytest.raises(ConfigError):
        run_task(path, runner=FakeRunner({}))


def test_task_rows_file_is_perf_csv(tmp_path, monkeypatch):
    path, job = self_managed_setup(tmp_path)
    assert run_task(path, runner=FakeRunner({})) == 0
    rows = perfcsv.read_rows(os.path.join(task_dir(job.results_dir, "dummy", 0, 1), "perf.csv"))
    assert [r["status"] for r in rows] == ["SUCCESS"]
    assert slurm_job.TERMINATED not in Path(task_dir(job.results_dir, "dummy", 0, 1), "task.json").read_text()
