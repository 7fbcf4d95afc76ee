"""Pure helpers of the container layer: script command, args, names, docker-run options (spec 2, 6.6)."""

from __future__ import annotations

import pytest

from ansible_collections.rocm.madengine.plugins.module_utils import containers
from ansible_collections.rocm.madengine.plugins.module_utils.containers import ContainerPlan
from ansible_collections.rocm.madengine.plugins.module_utils.errors import RunError


def plan(**kw):
    values = dict(
        name="container_ci-x",
        image="ci-x",
        command=["bash", "run.sh"],
        working_dir="/myworkspace/run_directory",
        environment={},
        binds={},
    )
    values.update(kw)
    return ContainerPlan(**values)


# --- script_command ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "scripts,expected",
    [
        ("scripts/dummy/run.sh", ("scripts/dummy", ["bash", "run.sh"])),
        ("scripts/dummy/job.slurm", ("scripts/dummy", ["bash", "job.slurm"])),
        ("scripts/dummy/train.py", ("scripts/dummy", ["python3", "train.py"])),
        ("scripts/dummy3", ("scripts/dummy3", ["bash", "run.sh"])),
        ("scripts/dummy3/", ("scripts/dummy3/", ["bash", "run.sh"])),
        ("run.sh", ("", ["bash", "run.sh"])),
    ],
)
def test_script_command(scripts, expected):
    assert containers.script_command(scripts) == expected


# --- split_args --------------------------------------------------------------------------------------


def test_split_args_keeps_shell_syntax_literal():
    assert containers.split_args("--home $HOME a;b $(id) * `x` && y", "m") == [
        "--home",
        "$HOME",
        "a;b",
        "$(id)",
        "*",
        "`x`",
        "&&",
        "y",
    ]


def test_split_args_quotes():
    assert containers.split_args(" --msg 'hello world' --x \"a b\" --batch-size 32 ", "m") == [
        "--msg",
        "hello world",
        "--x",
        "a b",
        "--batch-size",
        "32",
    ]
    assert containers.split_args("a#b # not a comment", "m") == ["a#b", "#", "not", "a", "comment"]


def test_split_args_empty():
    assert containers.split_args("", "m") == []
    assert containers.split_args("   ", "m") == []


@pytest.mark.parametrize("args", ["--msg 'unbalanced", '--x "open', "trailing\\"])
def test_split_args_unbalanced_quotes(args):
    with pytest.raises(RunError) as info:
        containers.split_args(args, "my_model")
    assert "'my_model'" in info.value.msg
    assert info.value.exit_code == 3


# --- container_name ----------------------------------------------------------------------------------


def test_container_name():
    assert containers.container_name("ci-dummy_dummy.ubuntu.amd") == "container_ci-dummy_dummy.ubuntu.amd"
    assert containers.container_name("localhost:5000/team/ci-x:latest") == "container_localhost_5000_team_ci-x_latest"
    assert containers.container_name("img@sha256:ab") == "container_img_sha256_ab"
    assert containers.container_name("ci-x", "run42") == "container_ci-x_run42"


# --- apply_run_options -------------------------------------------------------------------------------


def test_apply_supported_run_options(monkeypatch):
    monkeypatch.setenv("FROM_HOST", "hostval")
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    p = plan()
    containers.apply_run_options(
        p,
        "--shm-size 16G --cap-add SYS_PTRACE --cap-add=SYS_ADMIN --device=/dev/kfd --device /dev/dri "
        "--group-add video --security-opt seccomp=unconfined -e A=1 --env B=x=y -e FROM_HOST -e NOT_SET_ANYWHERE "
        "-v /host/data:/data:ro --volume=/h2:/c2 --ipc=private --network none --privileged "
        "--ulimit memlock=-1:-1 --ulimit nofile=1024 --cpuset-cpus 0-3",
        "m",
    )
    assert p.shm_size == "16G"
    assert p.cap_add == ["SYS_PTRACE", "SYS_ADMIN"]
    assert p.devices == ["/dev/kfd", "/dev/dri"]
    assert p.group_add == ["video"]
    assert p.security_opt == ["seccomp=unconfined"]
    assert p.environment == {"A": "1", "B": "x=y", "FROM_HOST": "hostval", "NOT_SET_ANYWHERE": ""}
    assert p.binds == {"/host/data": {"bind": "/data", "mode": "ro"}, "/h2": {"bind": "/c2", "mode": "rw"}}
    assert p.ipc_mode == "private"
    assert p.network_mode == "none"
    assert p.privileged is True
    assert p.ulimits == [{"name": "memlock", "soft": -1, "hard": -1}, {"name": "nofile", "soft": 1024, "hard": 1024}]
    assert p.cpuset_cpus == "0-3"


def test_apply_net_alias_and_empty_options():
    p = plan()
    containers.apply_run_options(p, "", "m")
    assert p.network_mode == "host" and p.privileged is False and p.devices == []
    containers.apply_run_options(p, "--net=bridge", "m")
    assert p.network_mode == "bridge"


@pytest.mark.parametrize("option", ["--rm", "--entrypoint /bin/sh", "--user 1000", "-it", "--gpus all"])
def test_unsupported_run_option(option):
    with pytest.raises(RunError) as info:
        containers.apply_run_options(plan(), "--shm-size 1G " + option, "my_model")
    assert "'my_model'" in info.value.msg
    assert option.split()[0] in info.value.msg
    assert "--shm-size" in (info.value.hint or "")


@pytest.mark.parametrize("option", ["--shm-size", "-e", "--device", "-v"])
def test_run_option_missing_value(option):
    with pytest.raises(RunError) as info:
        containers.apply_run_options(plan(), option, "my_model")
    assert "needs a value" in info.value.msg


def test_bad_volume():
    with pytest.raises(RunError) as info:
        containers.apply_run_options(plan(), "-v /only-one-part", "m")
    assert "volume" in info.value.msg


@pytest.mark.parametrize("option", ["--ulimit memlock", "--ulimit nofile=1:x", "--ulimit nofile=many"])
def test_bad_ulimit_is_a_run_error(option):
    with pytest.raises(RunError) as info:
        containers.apply_run_options(plan(), option, "m")
    assert "'m'" in info.value.msg and "--ulimit" in info.value.msg


def test_unlimited_ulimit_is_minus_one():
    p = plan()
    containers.apply_run_options(p, "--ulimit memlock=unlimited", "m")
    assert p.ulimits == [{"name": "memlock", "soft": -1, "hard": -1}]


def test_privileged_false_is_not_privileged():
    p = plan()
    containers.apply_run_options(p, "--privileged=false", "m")
    assert p.privileged is False


# --- ContainerPlan rendering -------------------------------------------------------------------------


def test_display_command_hides_environment_values():
    p = plan(
        environment={"MAD_SECRETS_TOKEN": "s3cr3t", "A": "visible-only-as-name"},
        binds={"/work": {"bind": "/myworkspace", "mode": "rw"}},
        devices=["/dev/kfd"],
        gpu_ids=[0, 2],
    )
    text = p.display_command()
    assert "s3cr3t" not in text
    assert "visible-only-as-name" not in text
    assert text == (
        "docker run --name container_ci-x --init --network host --device /dev/kfd --gpus device=0,2 "
        "-v /work:/myworkspace:rw -e A -e MAD_SECRETS_TOKEN -w /myworkspace/run_directory ci-x bash run.sh"
    )
    assert "s3cr3t" not in repr(p)


def test_display_command_quotes_words():
    p = plan(command=["bash", "run.sh", "--msg", "hello world", "$HOME"])
    assert p.display_command().endswith("ci-x bash run.sh --msg 'hello world' '$HOME'")
