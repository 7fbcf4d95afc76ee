"""The additional context: parsing, merging, validation (spec 9.1-9.2, 9.5, 4.1)."""

from __future__ import annotations

import json

import pytest

from ansible_collections.rocm.madengine.plugins.module_utils import context
from ansible_collections.rocm.madengine.plugins.module_utils.errors import ConfigError

# --- parsing -----------------------------------------------------------------------------------------


def test_json_string():
    assert context.parse_context_string('{"gpu_vendor": "AMD", "n": 1, "b": true}') == {
        "gpu_vendor": "AMD",
        "n": 1,
        "b": True,
    }


def test_python_literal_string():
    assert context.parse_context_string("{'ctx_test': '1', 'flag': True, 'none': None}") == {
        "ctx_test": "1",
        "flag": True,
        "none": None,
    }


@pytest.mark.parametrize("text", [None, "", "   ", "{}", "  {}  "])
def test_empty_means_no_context(text):
    assert context.parse_context_string(text) == {}


@pytest.mark.parametrize("text", ["[1, 2]", "'gpu'", "42", '"AMD"'])
def test_non_object_is_a_config_error(text):
    with pytest.raises(ConfigError) as info:
        context.parse_context_string(text)
    assert "must be an object" in info.value.msg
    assert "example" in (info.value.hint or "")


@pytest.mark.parametrize("text", ["{gpu_vendor: AMD}", "{'a': 1", "__import__('os')"])
def test_unparsable_is_a_config_error(text):
    with pytest.raises(ConfigError) as info:
        context.parse_context_string(text)
    assert "not valid JSON" in info.value.msg


def test_file_and_string_are_merged_shallowly_string_wins(tmp_path):
    path = tmp_path / "ctx.json"
    path.write_text(json.dumps({"guest_os": "UBUNTU", "docker_env_vars": {"A": "1", "B": "2"}, "docker_gpus": "0-3"}))
    merged = context.load_context('{"docker_env_vars": {"C": "3"}, "docker_gpus": "1"}', str(path))
    assert merged == {"guest_os": "UBUNTU", "docker_env_vars": {"C": "3"}, "docker_gpus": "1"}


def test_file_only(tmp_path):
    path = tmp_path / "ctx.json"
    path.write_text('{"gpu_vendor": "nvidia"}')
    assert context.load_context(None, str(path)) == {"gpu_vendor": "NVIDIA"}


def test_file_must_be_json_not_python_literal(tmp_path):
    path = tmp_path / "ctx.json"
    path.write_text("{'gpu_vendor': 'AMD'}")
    with pytest.raises(ConfigError) as info:
        context.load_context(None, str(path))
    assert str(path) in info.value.msg
    assert "line 1" in info.value.msg


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError) as info:
        context.read_context_file(str(tmp_path / "nope.json"))
    assert "nope.json" in info.value.msg
    assert "not found" in info.value.msg


def test_file_with_a_list(tmp_path):
    path = tmp_path / "ctx.json"
    path.write_text("[]")
    with pytest.raises(ConfigError) as info:
        context.read_context_file(str(path))
    assert "object" in info.value.msg


# --- validation --------------------------------------------------------------------------------------


def test_unknown_key_with_a_dict_value_lists_known_keys():
    with pytest.raises(ConfigError) as info:
        context.validate_context({"frobnicate": {"a": 1}})
    assert "'frobnicate'" in info.value.msg
    hint = info.value.hint or ""
    assert "known keys:" in hint
    for key in ("docker_env_vars", "docker_build_arg", "gpu_vendor", "docker_mounts"):
        assert key in hint


def test_near_miss_key_suggests_the_right_one():
    with pytest.raises(ConfigError) as info:
        context.validate_context({"docker_gpu": "0"})
    assert "did you mean 'docker_gpus'" in info.value.msg


def test_near_miss_of_a_string_key_is_also_caught():
    with pytest.raises(ConfigError) as info:
        context.validate_context({"gpu_vender": "AMD"})
    assert "did you mean 'gpu_vendor'" in info.value.msg


@pytest.mark.parametrize(
    "key,section", [("partition", "slurm"), ("nnodes", "distributed"), ("BASE_DOCKER", "docker_build_arg")]
)
def test_misplaced_key_names_its_section(key, section):
    with pytest.raises(ConfigError) as info:
        context.validate_context({key: "x"})
    assert "misplaced" in info.value.msg
    assert f"'{section}'" in info.value.msg


@pytest.mark.parametrize("key", ["tools", "pre_scripts", "vllm", "MAD_CONTAINER_IMAGE"])
def test_not_yet_supported_key_is_an_error(key):
    with pytest.raises(ConfigError) as info:
        context.validate_context({key: [] if key in ("tools", "pre_scripts") else {}})
    assert f"'{key}'" in info.value.msg
    assert "not supported" in info.value.msg


def test_no_effect_keys_are_dropped_with_a_warning():
    warnings = []
    result = context.validate_context({"timeout": 60, "timeout_multiplier": 2, "ctx_test": "1"}, warn=warnings.append)
    assert result == {"ctx_test": "1"}
    assert len(warnings) == 2
    assert "'timeout'" in warnings[0]


def test_custom_string_key_is_accepted():
    assert context.validate_context({"ctx_test": "1", "host_os": "HOST_UBUNTU"}) == {
        "ctx_test": "1",
        "host_os": "HOST_UBUNTU",
    }


def test_custom_key_with_a_non_string_value_is_an_error():
    with pytest.raises(ConfigError):
        context.validate_context({"ctx_test": 1})


@pytest.mark.parametrize("value,expected", [("amd", "AMD"), (" Nvidia ", "NVIDIA"), ("AMD", "AMD")])
def test_gpu_vendor_is_upper_cased(value, expected):
    assert context.validate_context({"gpu_vendor": value})["gpu_vendor"] == expected


@pytest.mark.parametrize("value,expected", [("ubuntu", "UBUNTU"), ("centos", "CENTOS")])
def test_guest_os_is_upper_cased(value, expected):
    assert context.validate_context({"guest_os": value})["guest_os"] == expected


@pytest.mark.parametrize("key,value", [("gpu_vendor", "intel"), ("guest_os", "debian"), ("gpu_vendor", 1)])
def test_vendor_and_os_are_validated(key, value):
    with pytest.raises(ConfigError) as info:
        context.validate_context({key: value})
    assert f"'{key}'" in info.value.msg


@pytest.mark.parametrize("name", ["1BAD", "A-B", "with space", ""])
def test_docker_env_var_names_are_validated(name):
    with pytest.raises(ConfigError) as info:
        context.validate_context({"docker_env_vars": {name: "x"}})
    assert "docker_env_vars" in info.value.msg
    assert repr(name) in info.value.msg


def test_docker_env_var_values_must_be_scalars():
    with pytest.raises(ConfigError):
        context.validate_context({"docker_env_vars": {"A": {"b": 1}}})


def test_docker_build_arg_values_are_stringified():
    result = context.validate_context({"docker_build_arg": {"N": 1, "F": 1.5, "B": True, "E": None, "S": "s"}})
    assert result["docker_build_arg"] == {"N": "1", "F": "1.5", "B": "True", "E": "", "S": "s"}


@pytest.mark.parametrize(
    "key,value",
    [
        ("docker_build_arg", "BASE_DOCKER=x"),
        ("docker_env_vars", ["A=1"]),
        ("docker_gpus", 0),
        ("log_error_patterns", []),
        ("log_error_benign_patterns", ["ok", 1]),
        ("skip_perf_collection", "yes"),
        ("n_gpus", "four"),
        ("gpus_per_node", True),
    ],
)
def test_type_checks(key, value):
    with pytest.raises(ConfigError) as info:
        context.validate_context({key: value})
    assert f"'{key}'" in info.value.msg


def test_gpu_count_keys_accept_whole_numbers():
    assert context.validate_context({"n_gpus": "-1", "gpus_per_node": 4}) == {"n_gpus": "-1", "gpus_per_node": 4}


def test_docker_mounts_need_absolute_container_paths():
    assert context.validate_context({"docker_mounts": {"/data": "/mnt/data"}}) == {
        "docker_mounts": {"/data": "/mnt/data"}
    }
    with pytest.raises(ConfigError):
        context.validate_context({"docker_mounts": {"data": "/mnt/data"}})
    with pytest.raises(ConfigError):
        context.validate_context({"docker_mounts": {"/data": 5}})


def test_deploy_names_a_known_target():
    for value in ("local", "slurm", "k8s", "kubernetes"):
        assert context.validate_context({"deploy": value}) == {"deploy": value}
    with pytest.raises(ConfigError) as info:
        context.validate_context({"deploy": "nomad"})
    assert "'nomad'" in info.value.msg and "k8s" in info.value.hint


def test_two_targets_in_one_context_are_refused():
    with pytest.raises(ConfigError) as info:
        context.validate_context({"slurm": {}, "k8s": {}})
    assert "kubernetes" in info.value.msg and "slurm" in info.value.msg


def test_slurm_section_is_validated_with_the_key_named():
    assert context.validate_context({"slurm": {"partition": "gpu"}}) == {"slurm": {"partition": "gpu"}}
    with pytest.raises(ConfigError) as info:
        context.validate_context({"slurm": {"partiton": "gpu"}})
    assert "slurm.partiton" in info.value.msg and "partition" in info.value.hint
    with pytest.raises(ConfigError) as info:
        context.validate_context({"slurm": {"launcher": "torchrun"}})
    assert "slurm.launcher" in info.value.msg and "distributed" in info.value.msg


def test_distributed_keys_are_checked():
    assert context.validate_context({"distributed": {"launcher": "torchrun"}}) == {
        "distributed": {"launcher": "torchrun"}
    }
    with pytest.raises(ConfigError) as info:
        context.validate_context({"distributed": {"launchr": "torchrun"}})
    assert "distributed.launchr" in info.value.msg


def test_rocenv_mode():
    assert context.validate_context({"rocenv_mode": "full"}) == {"rocenv_mode": "full"}
    with pytest.raises(ConfigError):
        context.validate_context({"rocenv_mode": "medium"})


def test_non_string_keys_are_rejected():
    with pytest.raises(ConfigError):
        context.validate_context({1: "x"})


# --- secrets and Dockerfile matching -----------------------------------------------------------------


def test_secret_env_picks_names_containing_mad_secrets():
    environ = {"MAD_SECRETS_HFTOKEN": "t1", "MY_MAD_SECRETS": "t2", "MAD_SECRET_HFTOKEN": "no", "PATH": "/bin"}
    assert context.secret_env(environ) == {"MAD_SECRETS_HFTOKEN": "t1", "MY_MAD_SECRETS": "t2"}


def test_secret_env_reads_os_environ(monkeypatch):
    monkeypatch.setenv("XMAD_SECRETSX", "v")
    assert context.secret_env()["XMAD_SECRETSX"] == "v"


def test_dockerfile_match_context_without_ctx_test_file(tmp_path):
    ctx = {"gpu_vendor": "NVIDIA", "docker_env_vars": {"A": "1"}, "custom": "c", "n_gpus": 2}
    assert context.dockerfile_match_context(ctx, str(tmp_path), "AMD") == {
        "gpu_vendor": "NVIDIA",
        "guest_os": "UBUNTU",
        "custom": "c",
        "ctx_test": "None",
    }


def test_dockerfile_match_context_with_ctx_test_file(tmp_path):
    (tmp_path / "ctx_test").write_text(" 2\n")
    assert context.dockerfile_match_context({}, str(tmp_path), "CPU") == {
        "gpu_vendor": "CPU",
        "guest_os": "UBUNTU",
        "ctx_test": "2",
    }


def test_explicit_ctx_test_beats_the_file(tmp_path):
    (tmp_path / "ctx_test").write_text("2")
    match = context.dockerfile_match_context({"ctx_test": "1", "guest_os": "CENTOS"}, str(tmp_path), "AMD")
    assert match["ctx_test"] == "1"
    assert match["guest_os"] == "CENTOS"


def test_runtime_gpu_override():
    assert context.runtime_gpu_override({}) is None
    assert context.runtime_gpu_override({"n_gpus": "2"}) == 2
    assert context.runtime_gpu_override({"ngpus": 3, "gpus_per_node": 5}) == 5
    assert context.runtime_gpu_override({"deployment_config": {"gpu_count": 6}}) == 6
