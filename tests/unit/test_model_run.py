"""ModelRun without a Docker engine: init, skip/vendor checks, GPU selection, container env and plan.

Spec 6.3 (per-model preparation), 6.4 (docker run options per vendor), 6.5 (GPUs, CPUs, mounts), 6.7
(MAD_MULTI_NODE_RUNNER), 6.13 (skip_gpu_arch), 6.15 (container env) and fixes 15.3.22/23/27.

Every path exercised here must stop before the engine: an autouse fixture replaces the engine entry points
(`dockerapi.inspect_image`, `dockerapi.client`, `images.pull`, `containers.run_container`) with functions
that raise AssertionError, so touching the engine fails the test.
"""

from __future__ import annotations

import os

import pytest

from ansible_collections.rocm.madengine.plugins.module_utils import containers, dockerapi, images, ownership, run
from ansible_collections.rocm.madengine.plugins.module_utils.errors import MadengineError, RunError
from ansible_collections.rocm.madengine.plugins.module_utils.hostinfo import CPU_HOST, HostInfo
from ansible_collections.rocm.madengine.plugins.module_utils.manifest import ManifestEntry
from ansible_collections.rocm.madengine.plugins.module_utils.perfcsv import (
    STATUS_FAILURE,
    STATUS_SKIPPED,
)
from ansible_collections.rocm.madengine.plugins.module_utils.reporting import Reporter
from ansible_collections.rocm.madengine.plugins.module_utils.run import ModelRun, RunOptions

IMAGE = "ci-dummy_dummy.ubuntu.amd"
CONTAINER = "container_ci-dummy_dummy.ubuntu.amd"
ROCM = "/opt/rocm-6.3.0"
RENDER = (128, 136, 144, 152, 160, 168, 176, 184)

AMD_HOST = HostInfo(
    gpu_vendor="AMD",
    ngpus=8,
    gpu_architecture="gfx942",
    gpu_product_name="AMD Instinct MI300X",
    hip_version="6.4",
    render_devices=RENDER,
    rocm_path="/opt/rocm",
)
NVIDIA_HOST = HostInfo(
    gpu_vendor="NVIDIA",
    ngpus=8,
    gpu_architecture="NVIDIA H100 80GB HBM3",
    gpu_product_name="NVIDIA H100 80GB HBM3",
    hip_version="12.4",
    render_devices=(),
    rocm_path="",
)
AMD_CTX = {"docker_env_vars": {"ROCM_PATH": ROCM}}  # a given ROCM_PATH: no image inspection


class RecordingReporter(Reporter):
    def __init__(self) -> None:
        self.infos: list = []
        self.warnings: list = []

    def info(self, message: str) -> None:
        self.infos.append(message)

    def warn(self, message: str) -> None:
        self.warnings.append(message)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    """No host variable the run phase reads leaks in from the machine running the tests."""
    for name in list(os.environ):
        if "MAD_SECRETS" in name:
            monkeypatch.delenv(name)
    for name in (
        *containers.SLURM_PASSTHROUGH,
        "BUILD_NUMBER",
        "MAD_DEPLOYMENT_TYPE",
        "MAD_LAUNCHER",
        "MIOPEN_USER_DB_PATH",
        "GPUS_PER_NODE",
        "pipeline",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def no_engine(monkeypatch):
    calls = []

    def forbidden(*args, **kwargs):
        calls.append(args)
        raise AssertionError(f"the Docker engine must not be touched here (called with {args!r})")

    monkeypatch.setattr(dockerapi, "inspect_image", forbidden)
    monkeypatch.setattr(dockerapi, "client", forbidden)
    monkeypatch.setattr(images, "pull", forbidden)
    monkeypatch.setattr(containers, "run_container", forbidden)
    return calls


def set_fuse(monkeypatch, present: bool) -> None:
    """Make the host's /dev/fuse present or absent, whatever machine runs the tests."""
    real_exists = os.path.exists
    monkeypatch.setattr(run.os.path, "exists", lambda p: present if p == "/dev/fuse" else real_exists(p))


@pytest.fixture(autouse=True)
def no_fuse(monkeypatch):
    set_fuse(monkeypatch, False)


@pytest.fixture
def mad(tmp_path):
    """A MAD package: scripts for a .sh, a .slurm, a .py and a directory (run.sh) model."""
    for rel in (
        "scripts/dummy/run.sh",
        "scripts/dummy/job.slurm",
        "scripts/pymodel/train.py",
        "scripts/dirmodel/run.sh",
    ):
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("echo 'performance: 1 samples_per_second'\n")
    return str(tmp_path)


def make_model(**overrides):
    model = {
        "name": "dummy",
        "scripts": "scripts/dummy/run.sh",
        "args": "",
        "n_gpus": "1",
        "tags": ["dummies"],
        "training_precision": "fp16",
    }
    model.update(overrides)
    return model


def make_image(**overrides):
    image = {
        "docker_image": IMAGE,
        "dockerfile": "docker/dummy.ubuntu.amd.Dockerfile",
        "base_docker": "rocm/pytorch",
        "docker_sha": "sha256:abc",
        "build_duration": 3.5,
    }
    image.update(overrides)
    return image


def make_job(root, model=None, host=AMD_HOST, ctx=None, image=None, creds=None, reporter=None, **options):
    entry = ManifestEntry(IMAGE, image if image is not None else make_image(), model)
    opts = RunOptions(context=dict(AMD_CTX if ctx is None else ctx), run_id="testrun", **options)
    return ModelRun(root, entry, host, opts, creds or {}, reporter or RecordingReporter())


# --- the engine guard itself ---------------------------------------------------------------------------


def test_engine_guard_catches_an_inspection(mad, no_engine):
    """Proof that the guard works: an AMD model without a given ROCM_PATH would inspect the image."""
    job = make_job(mad, make_model(), ctx={})
    with pytest.raises(AssertionError, match="must not be touched"):
        job.environment(1)
    assert no_engine == [(IMAGE,)]


# --- ModelRun.__init__ ---------------------------------------------------------------------------------


def test_init_builds_the_row_and_copies_the_model(mad, monkeypatch):
    monkeypatch.setenv("BUILD_NUMBER", "77")
    model = make_model(args="--a 1")
    job = make_job(mad, model, machine_name="node-7")
    assert job.model == model and job.model is not model
    assert job.image == IMAGE
    assert job.row["model"] == "dummy"
    assert job.row["docker_image"] == IMAGE
    assert job.row["docker_file"] == "docker/dummy.ubuntu.amd.Dockerfile"
    assert job.row["base_docker"] == "rocm/pytorch"
    assert job.row["docker_sha"] == "sha256:abc"
    assert job.row["build_duration"] == 3.5
    assert job.row["tags"] == "dummies"
    assert job.row["training_precision"] == "fp16"
    assert job.row["args"] == "--a 1"
    assert job.row["gpu_architecture"] == "gfx942"
    assert job.row["machine_name"] == "node-7"
    assert job.row["build_number"] == "77"
    assert job.row["launcher"] == "docker"
    assert job.row["status"] == STATUS_FAILURE
    assert job.row["n_gpus"] == ""
    assert job.row["run_id"] == "testrun"
    assert job.image_record is None


def test_init_prefers_the_registry_image(mad):
    image = make_image(registry_image="registry.example.com/mad/ci-dummy:latest")
    job = make_job(mad, make_model(), image=image)
    assert job.image == "registry.example.com/mad/ci-dummy:latest"
    assert job.row["docker_image"] == "registry.example.com/mad/ci-dummy:latest"


def test_context_model_args_replace_the_model_args(mad):
    model = make_model(args="--epochs 10")
    job = make_job(mad, model, ctx={**AMD_CTX, "model_args": "--epochs 1 --name 'x y'"})
    assert job.model["args"] == "--epochs 1 --name 'x y'"
    assert job.row["args"] == "--epochs 1 --name 'x y'"
    assert model["args"] == "--epochs 10"  # the manifest's model is not mutated
    plan, _ = job.plan()
    assert plan.command == ["bash", "run.sh", "--epochs", "1", "--name", "x y"]


# --- skip_reason / execute() up to the vendor check ----------------------------------------------------


def test_skip_gpu_arch_gives_one_skipped_row(mad):
    reporter = RecordingReporter()
    job = make_job(
        mad, make_model(skip_gpu_arch="gfx90a, gfx942"), image=make_image(gpu_vendor="AMD"), reporter=reporter
    )
    rows = job.execute()
    assert len(rows) == 1
    row = rows[0]
    assert row["status"] == STATUS_SKIPPED
    assert row["failure_reason"] == run.SKIP_GPU_ARCH
    assert row["model"] == "dummy"  # the model name, not the image name (fix 15.3.27)
    assert row["gpu_architecture"] == "gfx942"
    assert row["docker_image"] == IMAGE
    assert reporter.infos == ["Skipping model dummy as it is not supported on gfx942 architecture."]
    assert reporter.warnings == []


def test_skip_reason_text(mad):
    job = make_job(mad, make_model(skip_gpu_arch="gfx90a,gfx942"))
    assert job.skip_reason() == "Skipping model dummy as it is not supported on gfx942 architecture."


@pytest.mark.parametrize("skip", ["", "gfx90a", "gfx90a, gfx950", "gfx94", " , "])
def test_skip_reason_empty_when_arch_not_listed(mad, skip):
    assert make_job(mad, make_model(skip_gpu_arch=skip)).skip_reason() == ""


def test_disable_skip_gpu_arch_goes_on_to_the_vendor_check(mad):
    model = make_model(skip_gpu_arch="gfx90a, gfx942")
    job = make_job(mad, model, image=make_image(gpu_vendor="NVIDIA"), disable_skip_gpu_arch=True)
    assert job.skip_reason() == ""
    rows = job.execute()
    assert len(rows) == 1
    assert rows[0]["status"] == STATUS_FAILURE
    assert rows[0]["failure_reason"] == run.VENDOR_MISMATCH


def test_nvidia_skip_uses_the_short_arch_name(mad):
    job = make_job(mad, make_model(skip_gpu_arch="A100, H100"), host=NVIDIA_HOST, ctx={})
    assert job.skip_reason() == "Skipping model dummy as it is not supported on H100 architecture."
    rows = job.execute()
    assert [(r["status"], r["failure_reason"]) for r in rows] == [(STATUS_SKIPPED, run.SKIP_GPU_ARCH)]


def test_cpu_host_is_never_arch_skipped(mad):
    assert make_job(mad, make_model(skip_gpu_arch="gfx942,H100"), host=CPU_HOST, ctx={}).skip_reason() == ""


def test_amd_image_on_cpu_host_is_a_vendor_mismatch(mad):
    reporter = RecordingReporter()
    job = make_job(
        mad,
        make_model(args="--epochs 10"),
        host=CPU_HOST,
        ctx={"model_args": "--epochs 1"},
        image=make_image(gpu_vendor="AMD"),
        reporter=reporter,
    )
    rows = job.execute()
    assert len(rows) == 1
    row = rows[0]
    assert row["status"] == STATUS_FAILURE
    assert row["failure_reason"] == run.VENDOR_MISMATCH
    assert row["model"] == "dummy"
    assert row["args"] == "--epochs 1"  # context model_args replace the model's args in the row
    assert row["docker_image"] == IMAGE
    assert reporter.warnings == [f"dummy: image {IMAGE} was built for AMD GPUs but this host is CPU"]


def test_image_arch_mismatch_on_amd_host(mad):
    job = make_job(mad, make_model(), image=make_image(gpu_vendor="AMD", gpu_architecture="gfx90a"))
    rows = job.execute()
    assert [(r["status"], r["failure_reason"]) for r in rows] == [(STATUS_FAILURE, run.ARCH_MISMATCH)]
    assert job.reporter.warnings == [f"dummy: image {IMAGE} was built for gfx90a but this host has gfx942"]


def test_entry_without_model_record_is_a_manifest_error(mad):
    reporter = RecordingReporter()
    job = make_job(mad, None, image=make_image(model="lost_model"), reporter=reporter)
    rows = job.execute()
    assert len(rows) == 1
    assert rows[0]["status"] == STATUS_FAILURE
    assert rows[0]["failure_reason"] == run.MANIFEST_ERROR
    assert rows[0]["model"] == "lost_model"
    assert reporter.warnings == [
        f"lost_model: manifest entry '{IMAGE}' has no built_models record; rebuild the manifest with 'madengine build'"
    ]


def test_vendor_mismatch_is_checked_before_skip_gpu_arch(mad):
    job = make_job(mad, make_model(skip_gpu_arch="gfx942"), image=make_image(gpu_vendor="NVIDIA"))
    rows = job.execute()
    assert [(r["status"], r["failure_reason"]) for r in rows] == [(STATUS_FAILURE, run.VENDOR_MISMATCH)]


# --- execute() with a stand-in image inspection (no container is ever created) --------------------------


def fake_inspect(monkeypatch, records):
    seen = []

    def inspect(name):
        seen.append(name)
        return records.get(name)

    monkeypatch.setattr(dockerapi, "inspect_image", inspect)
    return seen


def test_execute_skip_model_run_plans_but_runs_nothing(mad, monkeypatch):
    record = {"Id": "sha256:1", "Config": {"Env": ["PATH=/usr/bin", "ROCM_PATH=/opt/rocm-6.4.1"]}}
    seen = fake_inspect(monkeypatch, {IMAGE: record})
    job = make_job(mad, make_model(n_gpus="2"), ctx={}, image=make_image(gpu_vendor="AMD"), skip_model_run=True)
    rows = job.execute()
    assert [(r["status"], r["failure_reason"]) for r in rows] == [(STATUS_SKIPPED, run.SKIP_MODEL_RUN)]
    assert rows[0]["n_gpus"] == "2"
    assert rows[0]["gpus_per_node"] == "2"
    assert rows[0]["docker_image"] == IMAGE
    assert job.image_record is record
    assert seen == [IMAGE]  # inspected once; the ROCm root came from the stored record
    assert job.environment(2)["ROCM_PATH"] == "/opt/rocm-6.4.1"


def test_execute_image_missing(mad, monkeypatch):
    seen = fake_inspect(monkeypatch, {})
    job = make_job(mad, make_model(), image=make_image(gpu_vendor="AMD"))
    rows = job.execute()
    assert [(r["status"], r["failure_reason"]) for r in rows] == [(STATUS_FAILURE, run.IMAGE_MISSING)]
    assert seen == [IMAGE]
    assert job.reporter.warnings[0].startswith(f"dummy: image {IMAGE} not found on this host")


def test_execute_plan_error_is_a_setup_failure(mad, monkeypatch):
    fake_inspect(monkeypatch, {IMAGE: {"Id": "sha256:1"}})
    job = make_job(mad, make_model(url="https://github.com/ROCm/MAD.git"), image=make_image(gpu_vendor="AMD"))
    rows = job.execute()
    assert [(r["status"], r["failure_reason"]) for r in rows] == [(STATUS_FAILURE, run.SETUP_FAILED)]
    assert "not supported yet" in job.reporter.warnings[0]


# --- select_gpus ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "docker_gpus,n_gpus,expected",
    [
        ("0,2-4", "2", [0, 2]),
        ("0,2-4", "-1", [0, 2, 3, 4]),
        (None, "-1", [0, 1, 2, 3, 4, 5, 6, 7]),
        (None, "3", [0, 1, 2]),
        ("5,7", "1", [5]),
        ("0-7", "0", []),
        ("7,1,3", "2", [1, 3]),
    ],
)
def test_select_gpus(mad, docker_gpus, n_gpus, expected):
    ctx = dict(AMD_CTX)
    if docker_gpus is not None:
        ctx["docker_gpus"] = docker_gpus
    assert make_job(mad, make_model(n_gpus=n_gpus), ctx=ctx).select_gpus() == expected


@pytest.mark.parametrize(
    "docker_gpus,n_gpus,message",
    [
        ("0,2-4", "5", "5 GPUs requested but only 4 available (docker_gpus 0,2-4)"),
        (None, "9", "9 GPUs requested but only 8 available (docker_gpus 0-7)"),
    ],
)
def test_too_many_gpus_names_the_model(mad, docker_gpus, n_gpus, message):
    ctx = dict(AMD_CTX)
    if docker_gpus is not None:
        ctx["docker_gpus"] = docker_gpus
    job = make_job(mad, make_model(name="big/model", n_gpus=n_gpus), ctx=ctx)
    with pytest.raises(RunError) as info:
        job.select_gpus()
    assert str(info.value) == f"model 'big/model': {message}"
    with pytest.raises(RunError):
        job.plan()


def test_more_gpus_than_the_host_has_is_an_error_even_when_docker_gpus_lists_them(mad):
    job = make_job(mad, make_model(n_gpus="9"), ctx={**AMD_CTX, "docker_gpus": "0-9"})
    with pytest.raises(RunError, match=r"model 'dummy': docker_gpus names GPU 8 but this host has 8 GPUs \(0-7\)"):
        job.select_gpus()


def test_too_many_gpus_message_names_the_host_limit(mad):
    job = make_job(mad, make_model(n_gpus="9"), ctx={**AMD_CTX, "docker_gpus": "0-9"})
    with pytest.raises(RunError) as info:
        job.select_gpus()
    assert "only 10 available" not in str(info.value)


@pytest.mark.parametrize(
    "ctx_extra,model_extra,expected",
    [
        ({"gpus_per_node": 3}, {"n_gpus": "1"}, [0, 1, 2]),
        ({"n_gpus": "2"}, {"gpus_per_node": "4"}, [0, 1]),
        ({"deployment_config": {"gpus_per_node": 4}}, {"n_gpus": "1"}, [0, 1, 2, 3]),
        ({}, {"gpus_per_node": "4", "n_gpus": "1"}, [0, 1, 2, 3]),  # the model's gpus_per_node before n_gpus
        ({}, {"n_gpus": ""}, [0]),  # default 1
    ],
)
def test_context_gpu_count_override_wins(mad, ctx_extra, model_extra, expected):
    model = make_model(**model_extra)
    if model_extra.get("n_gpus") == "":
        del model["n_gpus"]
    job = make_job(mad, model, ctx={**AMD_CTX, **ctx_extra})
    assert job.select_gpus() == expected
    plan, _ = job.plan()
    assert plan.environment["MAD_RUNTIME_NGPUS"] == str(len(expected))
    assert job.row["n_gpus"] == str(len(expected))


def test_cpu_host_selects_no_gpus(mad):
    assert make_job(mad, make_model(n_gpus="4"), host=CPU_HOST, ctx={}).select_gpus() == []


def test_slurm_nproc_per_node_overrides_the_gpu_count(mad, monkeypatch):
    monkeypatch.setenv("MAD_DEPLOYMENT_TYPE", "slurm")
    monkeypatch.setenv("NPROC_PER_NODE", "4")
    assert make_job(mad, make_model(n_gpus="1")).select_gpus() == [0, 1, 2, 3]


def test_negative_gpu_count_other_than_minus_one_is_rejected(mad):
    with pytest.raises(MadengineError):
        make_job(mad, make_model(n_gpus="-2")).select_gpus()


# --- AMD plan ------------------------------------------------------------------------------------------


def test_amd_plan(mad):
    job = make_job(mad, make_model(n_gpus="2", args="--batch-size 32"), ctx={**AMD_CTX, "docker_gpus": "0,2-4"})
    plan, timeout = job.plan()
    assert plan.devices == ["/dev/kfd", "/dev/dri/renderD128", "/dev/dri/renderD144"]
    assert plan.group_add == ["video"]
    assert plan.cap_add == ["SYS_PTRACE", "SYS_ADMIN"]
    assert plan.security_opt == ["seccomp=unconfined", "apparmor=unconfined"]
    assert plan.gpu_ids == []
    assert plan.network_mode == "host"
    assert plan.ipc_mode == "host"
    assert plan.user == "root"
    assert plan.privileged is False
    assert plan.name == CONTAINER + "_testrun"
    assert plan.image == IMAGE
    assert plan.command == ["bash", "run.sh", "--batch-size", "32"]
    assert plan.working_dir == "/myworkspace/run_directory"
    assert plan.binds == {mad: {"bind": "/myworkspace/", "mode": "rw"}}
    assert plan.labels[ownership.RUN_LABEL] == "testrun"
    assert plan.labels[ownership.MODEL_LABEL] == "dummy"
    assert plan.labels[ownership.PID_LABEL] == str(os.getpid())
    assert ownership.Owner.from_labels(plan.labels).alive()
    assert plan.cpuset_cpus is None
    assert plan.shm_size is None
    env = plan.environment
    assert env["ROCM_PATH"] == ROCM
    assert env["MAD_RUNTIME_NGPUS"] == "2"
    assert env["MAD_SYSTEM_NGPUS"] == "8"
    assert env["MAD_SYSTEM_GPU_ARCHITECTURE"] == "gfx942"
    assert env["MAD_SYSTEM_GPU_PRODUCT_NAME"] == "AMD Instinct MI300X"
    assert env["MAD_SYSTEM_HIP_VERSION"] == "6.4"
    assert env["MAD_GPU_VENDOR"] == "AMD"
    assert env["MAD_GUEST_OS"] == "UBUNTU"
    assert env["MAD_MULTI_NODE_RUNNER"] == "torchrun --standalone --nproc_per_node=2"
    assert job.row["n_gpus"] == "2"
    assert job.row["gpus_per_node"] == "2"
    assert timeout == 7200


def test_amd_plan_all_docker_gpus(mad):
    job = make_job(mad, make_model(n_gpus="-1"), ctx={**AMD_CTX, "docker_gpus": "0,2-4"})
    plan, _ = job.plan()
    assert plan.devices == ["/dev/kfd"] + [f"/dev/dri/renderD{m}" for m in (128, 144, 152, 160)]
    assert plan.environment["MAD_RUNTIME_NGPUS"] == "4"
    assert job.row["n_gpus"] == "4"


def test_amd_render_nodes_follow_the_gpu_index(mad):
    plan, _ = make_job(mad, make_model(n_gpus="2"), ctx={**AMD_CTX, "docker_gpus": "3,5"}).plan()
    assert plan.devices == ["/dev/kfd", "/dev/dri/renderD152", "/dev/dri/renderD168"]


def test_amd_without_detected_render_nodes_passes_only_kfd(mad):
    host = HostInfo("AMD", 4, "gfx90a", "", "6.2", (), "/opt/rocm")
    plan, _ = make_job(mad, make_model(n_gpus="2"), host=host).plan()
    assert plan.devices == ["/dev/kfd"]
    assert plan.environment["MAD_RUNTIME_NGPUS"] == "2"


def test_amd_plan_with_fuse(mad, monkeypatch):
    set_fuse(monkeypatch, True)
    plan, _ = make_job(mad, make_model(n_gpus="1")).plan()
    assert plan.devices == ["/dev/fuse", "/dev/kfd", "/dev/dri/renderD128"]


def test_amd_rocm_path_from_the_stored_image_record(mad):
    job = make_job(mad, make_model(), ctx={})
    job.image_record = {"Config": {"Env": ["PATH=/usr/bin", "ROCM_HOME=/opt/rocm-7.0.0"]}}
    assert job.environment(1)["ROCM_PATH"] == "/opt/rocm-7.0.0"


def test_amd_rocm_path_defaults_to_opt_rocm(mad):
    job = make_job(mad, make_model(), ctx={})
    job.image_record = {"Config": {"Env": ["PATH=/usr/bin"]}}
    assert job.environment(1)["ROCM_PATH"] == "/opt/rocm"


def test_amd_rocm_path_fallback_warns(mad):
    job = make_job(mad, make_model(), ctx={})
    job.image_record = {"Config": {"Env": ["PATH=/usr/bin"]}}
    job.environment(1)
    assert any("/opt/rocm" in w for w in job.reporter.warnings)


# --- NVIDIA plan ---------------------------------------------------------------------------------------


def test_nvidia_plan(mad):
    job = make_job(mad, make_model(n_gpus="2"), host=NVIDIA_HOST, ctx={"docker_gpus": "1,3,5"})
    plan, _ = job.plan()
    assert plan.gpu_ids == [1, 3]
    assert plan.cap_add == ["SYS_PTRACE", "SYS_ADMIN", "SYS_NICE"]
    assert plan.security_opt == ["seccomp=unconfined", "apparmor=unconfined"]
    assert plan.devices == []
    assert "/dev/kfd" not in plan.devices
    assert plan.group_add == []
    assert plan.network_mode == "host"
    assert plan.ipc_mode == "host"
    env = plan.environment
    assert "ROCM_PATH" not in env
    assert env["MAD_GPU_VENDOR"] == "NVIDIA"
    assert env["MAD_SYSTEM_NGPUS"] == "8"
    assert env["MAD_SYSTEM_GPU_ARCHITECTURE"] == "NVIDIA H100 80GB HBM3"
    assert env["MAD_SYSTEM_HIP_VERSION"] == "12.4"
    assert env["MAD_RUNTIME_NGPUS"] == "2"
    assert job.row["gpu_architecture"] == "NVIDIA H100 80GB HBM3"


def test_nvidia_plan_all_gpus_with_fuse(mad, monkeypatch):
    set_fuse(monkeypatch, True)
    plan, _ = make_job(mad, make_model(n_gpus="-1"), host=NVIDIA_HOST, ctx={}).plan()
    assert plan.gpu_ids == [0, 1, 2, 3, 4, 5, 6, 7]
    assert plan.devices == ["/dev/fuse"]
    assert plan.environment["MAD_RUNTIME_NGPUS"] == "8"


# --- CPU plan ------------------------------------------------------------------------------------------


def test_cpu_plan(mad, monkeypatch):
    set_fuse(monkeypatch, True)  # even with /dev/fuse present a CPU container gets no device
    ctx = {
        "docker_mounts": {"/data": "/tmp/host-data", "/models": "/srv/models"},
        "docker_cpus": "0-3, 8-11",
    }
    job = make_job(mad, make_model(n_gpus="4"), host=CPU_HOST, ctx=ctx)
    plan, _ = job.plan()
    assert plan.devices == []
    assert plan.cap_add == []
    assert plan.security_opt == []
    assert plan.group_add == []
    assert plan.gpu_ids == []
    assert plan.network_mode == "host"
    assert plan.working_dir == "/myworkspace/run_directory"
    assert plan.binds == {
        mad: {"bind": "/myworkspace/", "mode": "rw"},
        "/tmp/host-data": {"bind": "/data", "mode": "rw"},
        "/srv/models": {"bind": "/models", "mode": "rw"},
    }
    assert plan.cpuset_cpus == "0-3,8-11"
    env = plan.environment
    assert env["MAD_RUNTIME_NGPUS"] == "0"
    assert env["MAD_SYSTEM_NGPUS"] == "0"
    assert env["MAD_GPU_VENDOR"] == "CPU"
    assert env["MAD_SYSTEM_GPU_ARCHITECTURE"] == ""
    assert "ROCM_PATH" not in env
    assert job.row["n_gpus"] == "0"
    assert job.row["gpus_per_node"] == "0"


# --- environment() -------------------------------------------------------------------------------------


def test_environment_basics(mad):
    env = make_job(mad, make_model(name="dummy2/model1")).environment(1)
    assert env["MAD_MODEL_NAME"] == "dummy2/model1"
    assert env["JENKINS_BUILD_NUMBER"] == "0"
    assert "MAD_OUTPUT_CSV" not in env
    assert "MAD_DATANAME" not in env
    assert "RAY_EXPERIMENTAL_NOSET_HIP_VISIBLE_DEVICES" not in env


def test_environment_multiple_results(mad):
    env = make_job(mad, make_model(multiple_results="perf_dummy.csv")).environment(1)
    assert env["MAD_OUTPUT_CSV"] == "perf_dummy.csv"


def test_environment_build_number(mad, monkeypatch):
    monkeypatch.setenv("BUILD_NUMBER", "1234")
    assert make_job(mad, make_model()).environment(1)["JENKINS_BUILD_NUMBER"] == "1234"


def test_environment_guest_os(mad):
    env = make_job(mad, make_model(), ctx={**AMD_CTX, "guest_os": "centos"}).environment(1)
    assert env["MAD_GUEST_OS"] == "CENTOS"


def test_environment_mad_secrets_passed_other_host_vars_not(mad, monkeypatch):
    monkeypatch.setenv("MAD_SECRETS_HFTOKEN", "hf_abc")
    monkeypatch.setenv("MY_MAD_SECRETS_KEY", "k 1")
    monkeypatch.setenv("UNRELATED_HOST_VAR", "x")
    env = make_job(mad, make_model()).environment(1)
    assert env["MAD_SECRETS_HFTOKEN"] == "hf_abc"
    assert env["MY_MAD_SECRETS_KEY"] == "k 1"
    assert "UNRELATED_HOST_VAR" not in env


def test_environment_user_docker_env_vars_win(mad):
    user = {
        "ROCM_PATH": ROCM,
        "MAD_SYSTEM_GPU_ARCHITECTURE": "gfx90a",
        "MAD_SYSTEM_NGPUS": "4",
        "MAD_GPU_VENDOR": "AMD_CUSTOM",
        "MAD_SYSTEM_HIP_VERSION": "6.0",
        "MAD_SYSTEM_GPU_PRODUCT_NAME": "MI250X",
        "MAD_GUEST_OS": "CENTOS",
        "MAD_MULTI_NODE_RUNNER": "python3 -m my_launcher",
        "HF_HOME": "/data/hf",
    }
    job = make_job(mad, make_model(), ctx={"docker_env_vars": user, "guest_os": "UBUNTU"})
    env = job.environment(1)
    for key, value in user.items():
        assert env[key] == value
    assert job.row["gpu_architecture"] == "gfx90a"


def test_hip_visible_devices_in_docker_env_vars_sets_ray_flag(mad):
    ctx = {"docker_env_vars": {"ROCM_PATH": ROCM, "HIP_VISIBLE_DEVICES": "0,1"}}
    env = make_job(mad, make_model(), ctx=ctx).environment(2)
    assert env["HIP_VISIBLE_DEVICES"] == "0,1"
    assert env["RAY_EXPERIMENTAL_NOSET_HIP_VISIBLE_DEVICES"] == ""


HOST_PASSTHROUGH = {
    "NCCL_DEBUG": "INFO",
    "CUDA_VISIBLE_DEVICES": "0",
    "HIP_VISIBLE_DEVICES": "1",
    "MASTER_ADDR": "10.0.0.1",
    "MASTER_PORT": "29500",
    "MAD_MULTI_NODE_RUNNER": "torchrun --nnodes=2 --nproc_per_node=8",
}


def test_host_passthrough_not_forwarded_outside_slurm(mad, monkeypatch):
    for key, value in HOST_PASSTHROUGH.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("MAD_DEPLOYMENT_TYPE", "local")
    env = make_job(mad, make_model(n_gpus="2")).environment(2)
    for key in ("NCCL_DEBUG", "CUDA_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES", "MASTER_ADDR", "MASTER_PORT"):
        assert key not in env
    assert "RAY_EXPERIMENTAL_NOSET_HIP_VISIBLE_DEVICES" not in env
    assert env["MAD_MULTI_NODE_RUNNER"] == "torchrun --standalone --nproc_per_node=2"


def test_host_passthrough_forwarded_under_slurm(mad, monkeypatch):
    for key, value in HOST_PASSTHROUGH.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("MAD_DEPLOYMENT_TYPE", "slurm")
    env = make_job(mad, make_model(n_gpus="2")).environment(2)
    for key, value in HOST_PASSTHROUGH.items():
        assert env[key] == value
    assert env["RAY_EXPERIMENTAL_NOSET_HIP_VISIBLE_DEVICES"] == ""
    assert "RANK" not in env  # only the variables that are set are copied


def test_miopen_user_db_path(mad, monkeypatch):
    monkeypatch.setenv("MIOPEN_USER_DB_PATH", "/tmp/miopen-host")
    assert make_job(mad, make_model()).environment(1)["MIOPEN_USER_DB_PATH"] == "/tmp/miopen-host"
    ctx = {"docker_env_vars": {"ROCM_PATH": ROCM, "MIOPEN_USER_DB_PATH": "/tmp/miopen-user"}}
    assert make_job(mad, make_model(), ctx=ctx).environment(1)["MIOPEN_USER_DB_PATH"] == "/tmp/miopen-user"


def test_model_data_sets_dataname_and_warns(mad):
    job = make_job(mad, make_model(data="imagenet"))
    assert job.environment(1)["MAD_DATANAME"] == "imagenet"
    assert job.reporter.warnings == [
        "dummy: data providers are not supported yet; running without data mounts (data.json is not read)"
    ]


def test_credentials_become_cred_field_variables(mad):
    creds = {"MAD_HF": {"username": "alice", "password": "s3cret", "port": 22}, "OTHER": {"token": "t"}}
    env = make_job(mad, make_model(cred="MAD_HF"), creds=creds).environment(1)
    assert env["MAD_HF_USERNAME"] == "alice"
    assert env["MAD_HF_PASSWORD"] == "s3cret"
    assert env["MAD_HF_PORT"] == "22"
    assert "OTHER_TOKEN" not in env


def test_missing_credential_is_an_error(mad):
    job = make_job(mad, make_model(cred="NOPE"), creds={"MAD_HF": {"username": "alice"}})
    with pytest.raises(MadengineError, match="model 'dummy': credential 'NOPE' not found in credential.json"):
        job.environment(1)


def test_a_credential_that_is_not_an_object_says_so(mad):
    job = make_job(mad, make_model(cred="MAD_HF"), creds={"MAD_HF": "alice:secret"})
    with pytest.raises(MadengineError, match="credential.json entry 'MAD_HF' must be an object, got str"):
        job.environment(1)


@pytest.mark.parametrize(
    "ctx_launcher,model_launcher,env_launcher,expected",
    [
        (None, None, None, "torchrun --standalone --nproc_per_node=2"),
        ("deepspeed", None, None, "deepspeed --num_gpus=2"),
        (None, "deepspeed", None, "deepspeed --num_gpus=2"),
        (None, None, "deepspeed", "deepspeed --num_gpus=2"),
        ("vllm", "deepspeed", None, ""),
        (None, "sglang_disagg", None, ""),
        (None, "primus", None, ""),
        ("torchrun", "vllm", "deepspeed", "torchrun --standalone --nproc_per_node=2"),
        ("megatron", None, None, "torchrun --standalone --nproc_per_node=2"),
    ],
)
def test_multi_node_runner_per_launcher(mad, monkeypatch, ctx_launcher, model_launcher, env_launcher, expected):
    ctx = dict(AMD_CTX)
    if ctx_launcher:
        ctx["distributed"] = {"launcher": ctx_launcher}
    model = make_model(n_gpus="2")
    if model_launcher:
        model["distributed"] = {"launcher": model_launcher}
    if env_launcher:
        monkeypatch.setenv("MAD_LAUNCHER", env_launcher)
    assert make_job(mad, model, ctx=ctx).environment(2)["MAD_MULTI_NODE_RUNNER"] == expected


def test_multi_node_runner_is_computed_per_model(mad):
    """Fix 15.3.23: one run, two models with different GPU counts, two runners; the context is not mutated."""
    ctx = {"docker_env_vars": {"ROCM_PATH": ROCM}}
    options = RunOptions(context=ctx, run_id="testrun")
    reporter = RecordingReporter()
    first = ModelRun(mad, ManifestEntry(IMAGE, make_image(), make_model(n_gpus="2")), AMD_HOST, options, {}, reporter)
    second = ModelRun(
        mad,
        ManifestEntry("ci-other", make_image(), make_model(name="other", n_gpus="4")),
        AMD_HOST,
        options,
        {},
        reporter,
    )
    plan1, _ = first.plan()
    plan2, _ = second.plan()
    assert plan1.environment["MAD_MULTI_NODE_RUNNER"] == "torchrun --standalone --nproc_per_node=2"
    assert plan2.environment["MAD_MULTI_NODE_RUNNER"] == "torchrun --standalone --nproc_per_node=4"
    assert plan1.environment["MAD_RUNTIME_NGPUS"] == "2"
    assert plan2.environment["MAD_RUNTIME_NGPUS"] == "4"
    assert plan2.environment["MAD_MODEL_NAME"] == "other"
    assert ctx == {"docker_env_vars": {"ROCM_PATH": ROCM}}


# --- plan(): command, script checks, extra docker-run options, timeout ---------------------------------


@pytest.mark.parametrize(
    "scripts,args,expected",
    [
        (
            "scripts/dummy/run.sh",
            "--batch-size 32 --name 'a b' $HOME x;y",
            ["bash", "run.sh", "--batch-size", "32", "--name", "a b", "$HOME", "x;y"],
        ),
        ("scripts/dummy/job.slurm", "", ["bash", "job.slurm"]),
        ("scripts/pymodel/train.py", "--lr 0.1", ["python3", "train.py", "--lr", "0.1"]),
        ("scripts/dirmodel", "", ["bash", "run.sh"]),
        ("scripts/dirmodel", '--msg "hello world"', ["bash", "run.sh", "--msg", "hello world"]),
    ],
)
def test_plan_command(mad, scripts, args, expected):
    plan, _ = make_job(mad, make_model(scripts=scripts, args=args)).plan()
    assert plan.command == expected


def test_plan_model_with_url_is_not_supported(mad):
    job = make_job(mad, make_model(url="https://github.com/ROCm/MAD.git"))
    with pytest.raises(RunError) as info:
        job.plan()
    assert str(info.value) == "model 'dummy': cloning its 'url' into the container is not supported yet"


def test_plan_without_scripts(mad):
    with pytest.raises(RunError, match="model 'dummy': no 'scripts' in its model card"):
        make_job(mad, make_model(scripts="")).plan()


def test_plan_missing_script_directory(mad):
    with pytest.raises(RunError, match="model 'dummy': script directory scripts/missing not found in"):
        make_job(mad, make_model(scripts="scripts/missing/run.sh")).plan()


def test_plan_unbalanced_quotes(mad):
    with pytest.raises(RunError, match="model 'dummy': cannot split its args"):
        make_job(mad, make_model(args="--name 'oops")).plan()


def test_plan_additional_docker_run_options(mad):
    options = (
        "--shm-size 16G --cap-add SYS_RAWIO --device /dev/infiniband -e EXTRA_FLAG=1 "
        "-v /mnt/data:/data:ro --ipc private --ulimit memlock=-1:-1 --privileged --group-add render"
    )
    job = make_job(mad, make_model(n_gpus="1", additional_docker_run_options=options))
    plan, _ = job.plan()
    assert plan.shm_size == "16G"
    assert plan.cap_add == ["SYS_PTRACE", "SYS_ADMIN", "SYS_RAWIO"]
    assert plan.devices == ["/dev/kfd", "/dev/dri/renderD128", "/dev/infiniband"]
    assert plan.group_add == ["video", "render"]
    assert plan.environment["EXTRA_FLAG"] == "1"
    assert plan.binds["/mnt/data"] == {"bind": "/data", "mode": "ro"}
    assert plan.binds[mad] == {"bind": "/myworkspace/", "mode": "rw"}
    assert plan.ipc_mode == "private"
    assert plan.ulimits == [{"name": "memlock", "soft": -1, "hard": -1}]
    assert plan.privileged is True
    assert job.row["additional_docker_run_options"] == options


def test_plan_unsupported_docker_run_option(mad):
    job = make_job(mad, make_model(additional_docker_run_options="--pid host"))
    with pytest.raises(RunError, match="option '--pid' is not supported"):
        job.plan()


@pytest.mark.parametrize(
    "model_timeout,cli_timeout,expected",
    [(None, None, 7200), ("360", None, 360), ("360", 0, None), ("360", 60, 60), (None, -1, 7200)],
)
def test_plan_timeout(mad, model_timeout, cli_timeout, expected):
    model = make_model()
    if model_timeout is not None:
        model["timeout"] = model_timeout
    _, timeout = make_job(mad, model, timeout=cli_timeout).plan()
    assert timeout == expected


def test_container_suffix(mad):
    plan, _ = make_job(mad, make_model(), container_suffix="node3").plan()
    assert plan.name == CONTAINER + "_node3_testrun"
