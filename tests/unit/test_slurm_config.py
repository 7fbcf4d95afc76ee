"""The `slurm` section of the additional context: validation, error wording, Slurm time formats."""

from __future__ import annotations

import pytest

from ansible_collections.rocm.madengine.plugins.module_utils import slurm_config
from ansible_collections.rocm.madengine.plugins.module_utils.errors import ConfigError
from ansible_collections.rocm.madengine.plugins.module_utils.slurm_config import (
    MISPLACED,
    SLURM_KEYS,
    SlurmSettings,
    parse_settings,
    parse_time,
    resolve_madengine_command,
)

# One value per key that the key must refuse (the table must name every key: a new key needs a case here).
BAD = {
    "partition": "gpu queue",
    "nodes": 0,
    "gpus_per_node": -1,
    "gpu_request": "gpus",
    "ntasks": 0,
    "cpus_per_task": 0,
    "mem": "64 G",
    "time": "soon",
    "exclusive": "yes",
    "reservation": "maint;reboot",
    "nodelist": "n[1-2] n3",
    "exclude": "$(hostname)",
    "qos": "'high'",
    "account": "proj\nother",
    "constraint": "mi300x|mi250",
    "mail_user": "me @example.com",
    "mail_type": "END FAIL",
    "modules": ["rocm 6.2"],
    "extra_directives": ["--comment=two words"],
    "output_dir": "",
    "array": "true",
    "max_parallel": 0,
    "madengine_command": "/opt/mad\nrm -rf /",
    "network_interface": "ib0 ib1",
    "wait": 1,
    "wait_timeout": -5,
    "wait_sleep": 0,
}
# One value per key that the key must accept.
GOOD = {
    "partition": "gpu-mi300x",
    "nodes": 2,
    "gpus_per_node": 0,
    "gpu_request": "gres",
    "ntasks": 4,
    "cpus_per_task": 16,
    "mem": "64G",
    "time": "1-00:00:00",
    "exclusive": False,
    "reservation": "maint_2026",
    "nodelist": "n[1-2]",
    "exclude": "n3,n4",
    "qos": "high",
    "account": "proj.42",
    "constraint": "mi300x",
    "mail_user": "me@example.com",
    "mail_type": "END,FAIL",
    "modules": ["rocm/6.2.0", "gcc-12"],
    "extra_directives": ["--comment=nightly", "--requeue"],
    "output_dir": "/shared/mad results",
    "array": False,
    "max_parallel": 3,
    "madengine_command": "/shared/venv/bin/madengine",
    "network_interface": "ib0",
    "wait": False,
    "wait_timeout": 0,
    "wait_sleep": 30,
}
# Keys whose value goes verbatim onto an `#SBATCH --key=value` line.
DIRECTIVE_TEXT_KEYS = (
    "partition",
    "mem",
    "reservation",
    "nodelist",
    "exclude",
    "qos",
    "account",
    "constraint",
    "mail_user",
    "mail_type",
    "network_interface",
)
HOSTILE = (
    "a b",
    "a\tb",
    "a\nb",
    "debug\n",
    "a'b",
    'a"b',
    "$(id)",
    "${HOME}",
    "`id`",
    "a;b",
    "a&b",
    "a|b",
    "a>b",
    "a<b",
    "a\\b",
    "",
)


def test_tables_cover_every_key():
    assert set(BAD) == set(SLURM_KEYS)
    assert set(GOOD) == set(SLURM_KEYS)


@pytest.mark.parametrize("key", sorted(BAD))
def test_bad_value_names_slurm_key(key):
    with pytest.raises(ConfigError) as info:
        parse_settings({key: BAD[key]})
    assert f"'slurm.{key}'" in info.value.msg
    assert repr(BAD[key]) in info.value.msg
    assert info.value.exit_code == 4


@pytest.mark.parametrize("key", sorted(BAD))
def test_bad_value_names_module_option(key):
    with pytest.raises(ConfigError) as info:
        parse_settings({key: BAD[key]}, where="")
    assert f"option '{key}'" in info.value.msg
    assert "slurm." not in info.value.msg
    assert info.value.details.get("option") == key


@pytest.mark.parametrize("key", sorted(BAD))
def test_bad_value_named_with_custom_where(key):
    with pytest.raises(ConfigError) as info:
        parse_settings({key: BAD[key]}, where="deployment_config.slurm")
    assert f"'deployment_config.slurm.{key}'" in info.value.msg


@pytest.mark.parametrize("key", sorted(GOOD))
def test_good_value_is_kept(key):
    settings = parse_settings({key: GOOD[key]})
    assert getattr(settings, key) == GOOD[key]


def test_all_good_values_together():
    settings = parse_settings(dict(GOOD))
    assert settings.as_dict() == GOOD


def test_none_section_and_none_values_give_defaults():
    assert parse_settings(None) == SlurmSettings()
    assert parse_settings({}) == SlurmSettings()
    given = parse_settings({key: None for key in SLURM_KEYS})
    assert given == SlurmSettings()


def test_defaults():
    settings = SlurmSettings()
    assert settings.nodes == 1
    assert settings.gpus_per_node is None
    assert settings.gpu_request == "gpus-per-node"
    assert settings.exclusive is True
    assert settings.array is True
    assert settings.wait is True
    assert settings.wait_timeout == 0
    assert settings.output_dir == "slurm_results"
    assert settings.modules == [] and settings.extra_directives == []


@pytest.mark.parametrize("section", [["partition", "gpu"], "gpu", 3])
def test_section_must_be_an_object(section):
    with pytest.raises(ConfigError) as info:
        parse_settings(section)
    assert "'slurm'" in info.value.msg
    assert "object" in info.value.msg


@pytest.mark.parametrize("key", ["nodes", "gpus_per_node", "ntasks", "cpus_per_task", "max_parallel", "wait_sleep"])
@pytest.mark.parametrize("value", [True, 2.0, "2"])
def test_whole_numbers_refuse_bools_floats_and_strings(key, value):
    with pytest.raises(ConfigError) as info:
        parse_settings({key: value})
    assert f"slurm.{key}" in info.value.msg


@pytest.mark.parametrize("key", ["exclusive", "array", "wait"])
@pytest.mark.parametrize("value", [0, 1, "false", "yes"])
def test_flags_must_be_booleans(key, value):
    with pytest.raises(ConfigError) as info:
        parse_settings({key: value})
    assert f"slurm.{key}" in info.value.msg


@pytest.mark.parametrize("key,expected", sorted(MISPLACED.items()))
def test_misplaced_key_names_its_section(key, expected):
    with pytest.raises(ConfigError) as info:
        parse_settings({"partition": "gpu", key: 1})
    assert f"'slurm.{key}'" in info.value.msg
    assert "misplaced" in info.value.msg
    assert expected in info.value.msg


@pytest.mark.parametrize(
    "key,section",
    [
        ("launcher", "distributed"),
        ("nnodes", "distributed"),
        ("nproc_per_node", "distributed"),
        ("master_port", "distributed"),
        ("env_vars", "top level"),
        ("docker_env_vars", "top level"),
        ("timeout", "--timeout"),
        ("monitor", "slurm.wait"),
    ],
)
def test_misplaced_key_sections(key, section):
    with pytest.raises(ConfigError) as info:
        parse_settings({key: "x"})
    assert section in info.value.msg


def test_misplaced_wins_over_a_bad_value_later():
    with pytest.raises(ConfigError) as info:
        parse_settings({"launcher": "torchrun", "nodes": 0})
    assert "misplaced" in info.value.msg


@pytest.mark.parametrize("key", ["partitions", "gpus", "Partition", "time_limit"])
def test_unknown_key_lists_the_known_ones(key):
    with pytest.raises(ConfigError) as info:
        parse_settings({key: "x"})
    assert f"'slurm.{key}' is unknown" in info.value.msg
    for known in SLURM_KEYS:
        assert known in info.value.hint


def test_unknown_key_as_module_option():
    with pytest.raises(ConfigError) as info:
        parse_settings({"partitions": "x"}, where="")
    assert "option 'partitions' is unknown" in info.value.msg


# --- time ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value,seconds",
    [
        (30, 30 * 60),  # a number is minutes
        (1, 60),
        ("30", 30 * 60),  # M
        ("0", 0),
        ("30:15", 30 * 60 + 15),  # M:S
        ("01:30:00", 90 * 60),  # H:M:S
        ("100:00:00", 100 * 3600),
        ("2-12", (2 * 24 + 12) * 3600),  # D-H
        ("2-12:30", ((2 * 24 + 12) * 60 + 30) * 60),  # D-H:M
        ("1-00:00:00", 24 * 3600),  # D-H:M:S
        ("1-02:03:04", ((24 + 2) * 60 + 3) * 60 + 4),
        ("0-0:0:7", 7),
    ],
)
def test_parse_time(value, seconds):
    assert parse_time(value) == seconds


@pytest.mark.parametrize("value", ["UNLIMITED", "unlimited", "INFINITE", "Infinite"])
def test_parse_time_unlimited(value):
    assert parse_time(value) is None
    assert parse_settings({"time": value}).time_limit_seconds is None


@pytest.mark.parametrize("value", ["soon", "1:2:3:4", "1-", "-5", "1.5", "", "30\n", "1-2-3", "1:", ":30", "30m"])
def test_parse_time_bad(value):
    with pytest.raises(ConfigError) as info:
        parse_time(value)
    assert "slurm.time" in info.value.msg
    assert repr(value) in info.value.msg


@pytest.mark.parametrize("value", ["soon", "1:2:3:4", "1.5", "30\n", 0, -1, True, 1.5, ["30"]])
def test_time_setting_refuses(value):
    with pytest.raises(ConfigError) as info:
        parse_settings({"time": value})
    assert "'slurm.time'" in info.value.msg


@pytest.mark.parametrize("value", [45, "45", "00:45:00", "0-00:45", "UNLIMITED"])
def test_time_setting_accepts(value):
    settings = parse_settings({"time": value})
    assert settings.time == value


def test_time_limit_seconds():
    assert SlurmSettings().time_limit_seconds is None
    assert parse_settings({"time": 45}).time_limit_seconds == 45 * 60
    assert parse_settings({"time": "1-00:00:00"}).time_limit_seconds == 86400


# --- values that reach an #SBATCH line, a module load or an sbatch option -------------------------------


@pytest.mark.parametrize("key", DIRECTIVE_TEXT_KEYS)
@pytest.mark.parametrize("value", HOSTILE)
def test_directive_values_refuse_shell_text(key, value):
    with pytest.raises(ConfigError) as info:
        parse_settings({key: value})
    assert f"'slurm.{key}'" in info.value.msg


@pytest.mark.parametrize("key", DIRECTIVE_TEXT_KEYS)
@pytest.mark.parametrize("value", [1, ["gpu"], {"a": "b"}])
def test_directive_values_must_be_text(key, value):
    with pytest.raises(ConfigError):
        parse_settings({key: value})


@pytest.mark.parametrize("value", ["n[01-16]", "a.b_c-d", "64G", "END,FAIL", "user@example.com", "gpu:mi300x:8"])
def test_directive_values_accept_slurm_syntax(value):
    assert parse_settings({"nodelist": value}).nodelist == value


@pytest.mark.parametrize(
    "modules",
    [[value] for value in HOSTILE] + [["rocm", "a b"], "rocm/6.2", [None], [6]],
)
def test_modules_refused(modules):
    with pytest.raises(ConfigError) as info:
        parse_settings({"modules": modules})
    assert "'slurm.modules'" in info.value.msg


@pytest.mark.parametrize("modules", [[], ["rocm"], ["rocm/6.2.0", "PrgEnv-gnu", "python3.11+cuda_12"]])
def test_modules_accepted(modules):
    assert parse_settings({"modules": modules}).modules == modules


@pytest.mark.parametrize(
    "directive",
    [
        "--comment=two words",
        "--comment='quoted'",
        '--comment="quoted"',
        "--comment=$(id)",
        "--comment=`id`",
        "--comment=a;b",
        "--comment=a&&b",
        "--comment=a|b",
        "--comment=a>b",
        "--comment=a\\b",
        "--comment=x\n#SBATCH --partition=other",
        "--requeue\n",
        "--comment=",
        "-c 4",
        "-N2",
        "comment=x",
        "--Comment=x",
        "--comment x",
        "",
    ],
)
def test_extra_directives_refused(directive):
    with pytest.raises(ConfigError) as info:
        parse_settings({"extra_directives": ["--requeue", directive]})
    assert "'slurm.extra_directives'" in info.value.msg


@pytest.mark.parametrize("value", ["--requeue", ("--requeue",), [1]])
def test_extra_directives_must_be_a_list_of_strings(value):
    with pytest.raises(ConfigError):
        parse_settings({"extra_directives": value})


@pytest.mark.parametrize(
    "directives",
    [["--requeue"], ["--comment=nightly", "--gres-flags=enforce-binding", "--signal=B:USR1@60"], ["--begin=now+60"]],
)
def test_extra_directives_accepted(directives):
    assert parse_settings({"extra_directives": directives}).extra_directives == directives


@pytest.mark.parametrize("key", ["output_dir", "madengine_command"])
@pytest.mark.parametrize("value", ["", "a\nb", "a\x00b", 5, ["x"]])
def test_paths_refused(key, value):
    with pytest.raises(ConfigError) as info:
        parse_settings({key: value})
    assert f"'slurm.{key}'" in info.value.msg


# --- the madengine command on the compute nodes --------------------------------------------------------


def test_resolve_madengine_command_prefers_the_setting():
    calls = []

    def which(name):
        calls.append(name)
        return "/usr/local/bin/madengine"

    settings = parse_settings({"madengine_command": "/shared/venv/bin/madengine"})
    assert resolve_madengine_command(settings, which) == "/shared/venv/bin/madengine"
    assert calls == []


def test_resolve_madengine_command_from_path():
    assert resolve_madengine_command(SlurmSettings(), lambda name: f"/opt/bin/{name}") == "/opt/bin/madengine"


def test_resolve_madengine_command_not_on_path():
    assert resolve_madengine_command(SlurmSettings(), lambda name: None) == "madengine"


def test_gpu_request_styles():
    for style in slurm_config.GPU_REQUEST_STYLES:
        assert parse_settings({"gpu_request": style}).gpu_request == style


@pytest.mark.parametrize("key", ["enable_node_check", "shared_workspace", "results_dir"])
def test_keys_of_the_original_we_do_not_act_on_are_refused_with_why(key):
    with pytest.raises(ConfigError) as info:
        parse_settings({key: True})
    assert f"slurm.{key}" in info.value.msg and info.value.hint == "remove the key"
    assert "unknown" not in info.value.msg
