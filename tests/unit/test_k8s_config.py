"""The `k8s` section of the additional context: preset order, vendors, profiles, validation wording."""

from __future__ import annotations

import os

import pytest

from ansible_collections.rocm.madengine.plugins.module_utils.errors import ConfigError
from ansible_collections.rocm.madengine.plugins.module_utils.k8s_config import (
    AMD_MULTI_GPU,
    K8S_KEYS,
    is_k8s_target,
    merged_context,
    parse_settings,
)


@pytest.mark.parametrize(
    "ctx, expected",
    [
        ({"k8s": {}}, True),
        ({"kubernetes": {"namespace": "x"}}, True),
        ({"deploy": "k8s"}, True),
        ({"deploy": "Kubernetes"}, True),
        ({"deploy": "slurm"}, False),
        ({"slurm": {}}, False),
        ({}, False),
    ],
)
def test_is_k8s_target(ctx, expected):
    assert is_k8s_target(ctx) is expected


def test_defaults_for_amd_single_gpu():
    settings = parse_settings({"k8s": {}})
    assert settings.gpu_vendor == "AMD" and settings.profile == "single-gpu"
    assert settings.gpu_resource_name == "amd.com/gpu"
    assert settings.namespace == "default" and settings.image_pull_policy == "Always"
    assert settings.backoff_limit == 0  # not the original's 3: a failed benchmark is not retried
    assert settings.gpu_count is None  # from the model's n_gpus at render time
    assert (settings.memory, settings.memory_limit, settings.cpu, settings.cpu_limit) == ("16Gi", "32Gi", "8", "16")
    assert settings.host_network is True and settings.host_ipc is False
    assert settings.env_vars == {"OMP_NUM_THREADS": "8"}  # no AMD multi-GPU env on one GPU
    assert settings.secrets.strategy == "from_local_credentials"
    assert settings.cleanup == "on_success" and settings.pending_timeout == 300
    assert settings.results_pvc == "" and settings.output_dir == "k8s_results"


def test_user_beats_profile_beats_vendor_beats_defaults():
    ctx = {"gpu_vendor": "NVIDIA", "k8s": {"gpu_count": 4, "cpu": "4", "env_vars": {"NCCL_DEBUG": "TRACE"}}}
    settings = parse_settings(ctx)
    assert settings.profile == "multi-gpu"
    assert settings.cpu == "4"  # user over the multi-gpu profile's 16
    assert settings.memory == "64Gi"  # the profile
    assert settings.gpu_resource_name == "nvidia.com/gpu"  # the vendor
    assert settings.env_vars["OMP_NUM_THREADS"] == "12"  # the vendor over the defaults' 8
    assert settings.env_vars["NCCL_DEBUG"] == "TRACE"  # the user over the vendor's INFO
    assert settings.env_vars["NCCL_P2P_LEVEL"] == "NVL"
    assert "HSA_ENABLE_SDMA" not in settings.env_vars  # AMD only
    assert settings.distributed["launcher"] == "torchrun"  # the multi-gpu profile


def test_context_env_vars_under_k8s_env_vars():
    settings = parse_settings({"env_vars": {"A": "ctx", "B": 2}, "k8s": {"env_vars": {"A": "k8s"}}})
    assert settings.env_vars["A"] == "k8s" and settings.env_vars["B"] == "2"


def test_amd_multi_gpu_env_only_for_multi_gpu_and_multi_node():
    single = parse_settings({"k8s": {"gpu_count": 1}})
    multi = parse_settings({"k8s": {"gpu_count": 8}})
    nodes = parse_settings({"k8s": {}, "distributed": {"nnodes": 2}})
    for name, value in AMD_MULTI_GPU["env_vars"].items():
        assert name not in single.env_vars
        assert multi.env_vars[name] == value
        assert nodes.env_vars[name] == value
    assert nodes.profile == "multi-node" and nodes.host_ipc is True and nodes.nnodes == 2
    assert nodes.env_vars["NCCL_TIMEOUT"] == "600"
    assert multi.host_ipc is False


def test_launcher_or_enabled_selects_multi_gpu():
    assert parse_settings({"k8s": {}, "distributed": {"launcher": "vllm"}}).profile == "multi-gpu"
    assert parse_settings({"k8s": {}, "distributed": {"enabled": True}}).profile == "multi-gpu"
    settings = parse_settings({"k8s": {}, "distributed": {"launcher": "vllm"}})
    assert settings.distributed["launcher"] == "vllm"  # the user over the profile's torchrun


def test_launcher_object_overrides_distributed():
    ctx = {
        "k8s": {},
        "distributed": {"nnodes": 4, "launcher": "torchrun"},
        "launcher": {"type": "deepspeed", "nnodes": 2},
    }
    settings = parse_settings(ctx)
    assert settings.distributed["launcher"] == "deepspeed" and settings.nnodes == 2
    with pytest.raises(ConfigError, match=r"'launcher\.nodes' is unknown"):
        parse_settings({"k8s": {}, "launcher": {"nodes": 2}})


def test_cpu_gets_no_gpu_resource_and_no_default_requests():
    settings = parse_settings({"k8s": {}, "gpu_vendor": "CPU"})
    assert settings.uses_gpus is False and settings.gpu_resource_name == ""
    assert (settings.memory, settings.memory_limit, settings.cpu, settings.cpu_limit) == (None, None, None, None)
    nodes = parse_settings({"k8s": {"memory": "2Gi"}, "distributed": {"nnodes": 2}}, gpu_vendor="CPU")
    assert nodes.gpu_vendor == "CPU" and nodes.memory == "2Gi" and nodes.cpu is None
    assert "HSA_ENABLE_SDMA" not in nodes.env_vars


def test_vendor_from_context_beats_the_manifest_vendor():
    assert parse_settings({"k8s": {}, "gpu_vendor": "nvidia"}, gpu_vendor="AMD").gpu_vendor == "NVIDIA"
    assert parse_settings({"k8s": {}}, gpu_vendor="NVIDIA").gpu_vendor == "NVIDIA"
    with pytest.raises(ConfigError, match="gpu_vendor"):
        parse_settings({"k8s": {}, "gpu_vendor": "TPU"})


def test_kubernetes_alias_and_both_given():
    assert parse_settings({"kubernetes": {"namespace": "bench"}}).namespace == "bench"
    with pytest.raises(ConfigError, match="'k8s' and 'kubernetes' are both given"):
        parse_settings({"k8s": {}, "kubernetes": {}})


def test_unknown_key_names_it_and_suggests():
    with pytest.raises(ConfigError) as info:
        parse_settings({"k8s": {"namespce": "x"}})
    assert "'k8s.namespce' is unknown" in info.value.msg
    assert "namespace" in (info.value.hint or "")
    with pytest.raises(ConfigError, match=r"'kubernetes\.zzz' is unknown"):
        parse_settings({"kubernetes": {"zzz": 1}})
    with pytest.raises(ConfigError, match=r"'k8s\.secrets\.stratgy' is unknown"):
        parse_settings({"k8s": {"secrets": {"stratgy": "omit"}}})


def test_misplaced_and_unsupported_keys():
    with pytest.raises(ConfigError, match=r"'k8s\.gpu_vendor' is misplaced"):
        parse_settings({"k8s": {"gpu_vendor": "AMD"}})
    with pytest.raises(ConfigError, match=r"'k8s\.storage_class'.*PersistentVolumeClaims"):
        parse_settings({"k8s": {"storage_class": "nfs"}})


# One value per key that the key must refuse (a new key needs a case here).
BAD = {
    "kubeconfig": 3,
    "context": ["a"],
    "namespace": "Bench_NS",
    "image_pull_policy": "always",
    "backoff_limit": -1,
    "ttl_seconds_after_finished": "1h",
    "gpu_resource_name": "amd gpu",
    "gpu_count": 0,
    "memory": "lots",
    "memory_limit": "64 GB",
    "cpu": True,
    "cpu_limit": "-1",
    "node_selector": {"gpu": 1},
    "tolerations": [{"key": "gpu", "effect": "NoSchedul"}],
    "host_network": "yes",
    "host_ipc": 1,
    "env_vars": {"A-B": "1"},
    "secrets": "omit",
    "wait": "no",
    "wait_timeout": -5,
    "pending_timeout": 0,
    "cleanup": "sometimes",
    "results_pvc": "My PVC",
    "output_dir": "",
}


def test_bad_table_covers_every_key():
    assert set(BAD) == set(K8S_KEYS)


@pytest.mark.parametrize("key", sorted(BAD))
def test_wrong_type_names_the_key_and_the_expected_type(key):
    with pytest.raises(ConfigError) as info:
        parse_settings({"k8s": {key: BAD[key]}})
    assert info.value.msg.startswith(f"additional context key 'k8s.{key}': must be ")
    assert "\n" not in info.value.one_line()


def test_section_must_be_an_object():
    with pytest.raises(ConfigError, match="'k8s': must be an object"):
        parse_settings({"k8s": "default"})


def test_values_are_normalised():
    settings = parse_settings(
        {
            "k8s": {
                "kubeconfig": "~/kube/conf",
                "memory": 1024,
                "wait_timeout": 0,
                "tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
                "node_selector": {"amd.com/gpu.family": "MI300"},
            }
        }
    )
    assert settings.kubeconfig == os.path.expanduser("~/kube/conf")
    assert settings.memory == "1024"
    assert settings.wait_timeout is None
    assert settings.tolerations == [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}]


def test_runtime_secret_name_needs_existing_or_omit():
    with pytest.raises(ConfigError, match="runtime_secret_name': only used with strategy"):
        parse_settings({"k8s": {"secrets": {"runtime_secret_name": "creds"}}})
    settings = parse_settings({"k8s": {"secrets": {"strategy": "existing", "runtime_secret_name": "creds"}}})
    assert settings.secrets.runtime_secret_name == "creds"
    assert settings.secrets.image_pull_secret_names == []


def test_distributed_counts_are_checked():
    with pytest.raises(ConfigError, match=r"'distributed\.nnodes': must be a whole number"):
        parse_settings({"k8s": {}, "distributed": {"nnodes": "2"}})
    with pytest.raises(ConfigError, match=r"'distributed\.master_port'"):
        parse_settings({"k8s": {}, "distributed": {"master_port": 70000}})


def test_merged_context_puts_the_run_context_over_the_manifest():
    manifest = {
        "context": {"gpu_vendor": "NVIDIA"},
        "deployment_config": {
            "target": "k8s",
            "kubernetes": {"namespace": "built", "cpu": "2"},
            "env_vars": {"A": "1"},
            "distributed": {"nnodes": 2},
        },
    }
    ctx = merged_context(manifest, {"k8s": {"namespace": "run"}, "env_vars": {"B": "2"}})
    assert ctx["k8s"] == {"namespace": "run", "cpu": "2"}
    assert ctx["env_vars"] == {"A": "1", "B": "2"}
    assert ctx["gpu_vendor"] == "NVIDIA" and ctx["deploy"] == "k8s" and ctx["distributed"] == {"nnodes": 2}
    settings = parse_settings(ctx)
    assert settings.namespace == "run" and settings.cpu == "2" and settings.nnodes == 2
