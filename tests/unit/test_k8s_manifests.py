"""Rendering the Kubernetes objects of a model: names, argv, ConfigMap, Secrets, Job shape, offline schemas."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from ansible_collections.rocm.madengine.plugins.module_utils import k8s_manifests as km
from ansible_collections.rocm.madengine.plugins.module_utils.errors import ConfigError
from ansible_collections.rocm.madengine.plugins.module_utils.k8s_config import parse_settings
from ansible_collections.rocm.madengine.plugins.module_utils.manifest import ManifestEntry, entries

PASSWORD = "s3cr3t-Passw0rd"
HUB_PASSWORD = "hub-Passw0rd"
ENV_SECRET = "env-secret-value"
TOKEN = "hf-token-value"
REGISTRY = "registry.local:5000"
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\Z")
LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?\Z")
CREDENTIALS = {
    REGISTRY: {"username": "bench", "password": PASSWORD},
    "dockerhub": {"username": "hubuser", "password": HUB_PASSWORD},
    "HF": {"token": TOKEN},
}


@pytest.fixture
def package(tmp_path: Path) -> Path:
    scripts = tmp_path / "scripts" / "dummy"
    (scripts / "conf" / "deep").mkdir(parents=True)
    (scripts / "run.sh").write_text("#!/bin/bash\necho 'performance: 1 samples_per_second'\n")
    (scripts / "conf" / "deep" / "settings.yaml").write_text("a: 1\n")
    (scripts / "conf" / "weights.bin").write_bytes(b"\xff\xfe\x00\x01")
    (tmp_path / "credential.json").write_text(json.dumps(CREDENTIALS))
    return tmp_path


def manifest(model=None, image=None, key="ci-dummy_dummy.ubuntu.amd"):
    model = {"name": "dummy", "scripts": "scripts/dummy/run.sh", "args": "", "n_gpus": "1", **(model or {})}
    image = {"docker_image": key, "registry_image": f"{REGISTRY}/{key}", **(image or {})}
    return {"built_images": {key: image}, "built_models": {key: model}, "context": {"gpu_vendor": "AMD"}}


def entry_of(**kwargs) -> ManifestEntry:
    return entries(manifest(**kwargs))[0]


def render(
    package, entry=None, ctx=None, *, run_id="run1", timeout=3600, credentials=None, environ=None, **manifest_args
):
    ctx = {"k8s": {}} if ctx is None else ctx
    return km.render_model(
        entry or entry_of(**manifest_args),
        parse_settings(ctx),
        run_id=run_id,
        package_root=str(package),
        manifest_text=json.dumps(manifest()),
        credentials=CREDENTIALS if credentials is None else credentials,
        timeout=timeout,
        context=ctx,
        environ={"MAD_SECRETS_TOKEN": ENV_SECRET} if environ is None else environ,
    )


def kinds(rendered):
    return [obj["kind"] for obj in rendered.objects]


def obj(rendered, kind, suffix=""):
    found = [o for o in rendered.objects if o["kind"] == kind and o["metadata"]["name"].endswith(suffix)]
    assert len(found) == 1, (kind, suffix, kinds(rendered))
    return found[0]


def pod(rendered):
    return rendered.job["spec"]["template"]["spec"]


def container(rendered):
    return pod(rendered)["containers"][0]


def env(rendered):
    return {item["name"]: item for item in container(rendered)["env"]}


def env_values(rendered):
    return {name: item["value"] for name, item in env(rendered).items() if "value" in item}


# --- names -----------------------------------------------------------------------------------------------


def test_job_name_follows_the_original_rule_plus_the_run_id():
    name = km.job_name("dummy_torchrun", "20240101-abc")
    assert name.startswith("madengine-dummy-torchrun-")
    assert name == "madengine-dummy-torchrun-20240101-abc"
    assert DNS_LABEL.fullmatch(km.job_name("Primus_Pretrain/Llama.3 8B", "r.1"))


def test_two_runs_get_different_names():
    assert km.job_name("dummy", "run1") != km.job_name("dummy", "run2")
    assert km.job_name("dummy", "run1", "2") != km.job_name("dummy", "run1")


def test_long_names_are_hashed_and_short_enough():
    model = "pyt_huggingface_" + "very_long_model_name_" * 6
    first = km.job_name(model, "0123456789abcdef")
    second = km.job_name(model, "0123456789abcdeg")
    for name in (first, second):
        assert len(name) <= km.MAX_JOB_NAME <= 63 and DNS_LABEL.fullmatch(name)
        assert re.search(r"-[0-9a-f]{12}$", name)
        assert len(f"{name}-99999") <= 63  # Indexed Job hostnames <job>-<index>
    assert first != second


def test_label_values_are_valid_and_hashed_when_unsafe():
    assert km.label_value("dummy_torchrun") == "dummy_torchrun"
    for text in ("primus_pretrain/llama 8b", "x" * 80, "_leading", "ünïcode"):
        value = km.label_value(text)
        assert LABEL_VALUE.fullmatch(value) and re.search(r"[0-9a-f]{12}$", value)
    assert km.label_value("a/b") != km.label_value("a b")


def test_objects_are_named_and_labelled(package):
    rendered = render(package, model={"name": "dummy/variant"}, run_id="R-1")
    job = rendered.job_name
    names = [o["metadata"]["name"] for o in rendered.objects]
    assert names == [f"{job}-registry-pull", f"{job}-runtime", f"{job}-config", job]
    for item in rendered.objects + [rendered.job["spec"]["template"]]:
        labels = item["metadata"]["labels"]
        assert labels["app"] == "madengine" and labels["madengine/run"] == "R-1"
        assert LABEL_VALUE.fullmatch(labels["model"])
    annotations = rendered.job["metadata"]["annotations"]
    assert annotations["madengine/run-id"] == "R-1"
    assert annotations["madengine/model"] == "dummy/variant"
    assert annotations["madengine/manifest-key"] == rendered.entry.key
    assert annotations["madengine/spec-hash"] == rendered.spec_hash
    assert all(o["metadata"]["namespace"] == "default" for o in rendered.objects)


# --- the command --------------------------------------------------------------------------------------


def test_args_stay_argv_never_shell_text(package):
    rendered = render(package, model={"args": "--batch 4 '$(rm -rf /);x' --name=\"a b\""})
    command = container(rendered)["command"]
    assert command[:4] == ["sh", "-c", km.POD_WRAPPER, km.WRAPPER_NAME]
    # every `$` is doubled: Kubernetes reads `$$` as `$` and never expands `$(...)`
    assert command[4:] == ["bash", "run.sh", "--batch", "4", "$$(rm -rf /);x", "--name=a b"]
    assert "rm -rf" not in command[2]


def test_context_model_args_replace_the_cards_args(package):
    ctx = {"k8s": {}, "model_args": "--epochs 1"}
    assert container(render(package, ctx=ctx, model={"args": "--x"}))["command"][4:] == [
        "bash",
        "run.sh",
        "--epochs",
        "1",
    ]


def test_wrapper_is_left_alone_by_kubernetes_expansion():
    assert "$(" not in km.POD_WRAPPER and "$$" not in km.POD_WRAPPER
    assert km.RESULTS_BEGIN in km.POD_WRAPPER and km.RESULTS_END in km.POD_WRAPPER


def _local_wrapper(tmp_path: Path) -> str:
    """POD_WRAPPER with its absolute paths moved under tmp_path."""
    wrapper = km.POD_WRAPPER
    for path in ("/madengine", "/myworkspace", "/results"):
        wrapper = wrapper.replace(path, str(tmp_path / path.strip("/")))
    return wrapper


@pytest.mark.parametrize("shell", ["sh", "busybox"])
def test_wrapper_rebuilds_the_directory_runs_argv_and_prints_results(tmp_path, shell):
    if shell == "busybox" and not os.path.exists("/usr/bin/busybox") and not os.path.exists("/bin/busybox"):
        pytest.skip("busybox is not installed")
    scripts = tmp_path / "madengine" / "scripts"
    (scripts / "sub").mkdir(parents=True)
    (scripts / "sub" / "data.txt").write_text("nested\n")
    (scripts / ".hidden").write_text("h\n")
    (scripts / "model.sh").write_text(
        'echo "cwd=$(pwd)"; for a in "$@"; do echo "arg=$a"; done; cat sub/data.txt; '
        'printf "model,performance\\nm,1" > out.csv; exit 3\n'
    )
    (tmp_path / "madengine" / "credential.json").write_text("{}")
    argv = ["sh", "model.sh", "$(touch pwned);x", "a b"]
    shell_argv = ["busybox", "sh"] if shell == "busybox" else ["sh"]
    result = subprocess.run(
        [*shell_argv, "-c", _local_wrapper(tmp_path), km.WRAPPER_NAME, *argv],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PATH": os.environ["PATH"], "MAD_OUTPUT_CSV": "out.csv", "MAD_K8S_POD_NAME": "pod-0"},
        timeout=30,
    )
    run_dir = tmp_path / "myworkspace" / "run_directory"
    assert result.returncode == 3, result.stderr
    lines = result.stdout.splitlines()
    assert f"cwd={run_dir}" in lines and "arg=$(touch pwned);x" in lines and "arg=a b" in lines
    assert "nested" in lines and not (run_dir / "pwned").exists()
    begin, end = lines.index(km.RESULTS_BEGIN), lines.index(km.RESULTS_END)
    assert lines[begin + 1 : end] == ["model,performance", "m,1"]
    assert (run_dir / ".hidden").exists() and (tmp_path / "myworkspace" / "credential.json").exists()
    assert (tmp_path / "results" / "pod-0" / "out.csv").read_text() == "model,performance\nm,1"


def test_wrapper_forwards_term_to_the_model(tmp_path):
    scripts = tmp_path / "madengine" / "scripts"
    scripts.mkdir(parents=True)
    (scripts / "model.sh").write_text(
        "trap 'echo model-got-term; exit 7' TERM\necho started\nwhile :; do sleep 0.1; done\n"
    )
    process = subprocess.Popen(
        ["sh", "-c", _local_wrapper(tmp_path), km.WRAPPER_NAME, "sh", "model.sh"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "started"
    time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=20)
    assert "model-got-term" in out and process.returncode == 7


# --- ConfigMap ----------------------------------------------------------------------------------------


def test_configmap_items_rebuild_nested_paths(package):
    rendered = render(package)
    configmap = obj(rendered, "ConfigMap", "-config")
    volume = next(v for v in pod(rendered)["volumes"] if v["name"] == "scripts")
    items = volume["configMap"]["items"]
    by_path = {item["path"]: item["key"] for item in items}
    assert set(by_path) == {"run.sh", "conf/deep/settings.yaml", "conf/weights.bin"}
    assert configmap["data"][by_path["conf/deep/settings.yaml"]] == "a: 1\n"
    assert configmap["binaryData"][by_path["conf/weights.bin"]] == "//4AAQ=="
    assert json.loads(configmap["data"]["build_manifest.json"])["built_images"]
    keys = [item["key"] for item in items]
    assert len(set(keys)) == len(keys) and all(re.fullmatch(r"[-._a-zA-Z0-9]+", k) for k in keys)
    mounts = {m["name"]: m for m in container(rendered)["volumeMounts"]}
    assert mounts["scripts"]["mountPath"] == km.SCRIPTS_MOUNT and mounts["scripts"]["readOnly"] is True
    assert mounts["workspace"]["mountPath"] == "/myworkspace"


def test_oversize_script_directory_names_the_largest_files(package):
    scripts = package / "scripts" / "dummy"
    (scripts / "big.dat").write_bytes(b"x" * 700_000)
    (scripts / "conf" / "huge.txt").write_text("y" * 400_000)
    with pytest.raises(ConfigError) as info:
        render(package)
    assert "conf/huge.txt (400000 bytes)" in info.value.msg and "big.dat (700000 bytes)" in info.value.msg
    assert info.value.msg.index("big.dat") < info.value.msg.index("huge.txt")
    assert "scripts directory" in (info.value.hint or "")


def test_missing_script_directory_is_named(package):
    with pytest.raises(ConfigError, match="script directory scripts/nothere not found"):
        render(package, model={"scripts": "scripts/nothere/run.sh"})


# --- images and Secrets ----------------------------------------------------------------------------------


def test_unpushed_image_is_refused(package):
    with pytest.raises(ConfigError) as info:
        render(package, image={"registry_image": ""})
    assert "was not pushed to a registry; Kubernetes pulls images" in info.value.msg
    assert info.value.hint == "build with --registry HOST:PORT"


def test_secret_values_never_in_job_or_configmap(package):
    rendered = render(package, model={"cred": "HF"})
    public = json.dumps([o for o in rendered.objects if o["kind"] != "Secret"])
    for secret in (PASSWORD, HUB_PASSWORD, TOKEN, ENV_SECRET):
        assert secret not in public
    runtime = obj(rendered, "Secret", "-runtime")
    assert runtime["type"] == "Opaque"
    assert json.loads(runtime["stringData"]["credential.json"])[REGISTRY]["password"] == PASSWORD
    assert runtime["stringData"]["HF_TOKEN"] == TOKEN and runtime["stringData"]["MAD_SECRETS_TOKEN"] == ENV_SECRET
    refs = {
        n: e["valueFrom"]["secretKeyRef"] for n, e in env(rendered).items() if "secretKeyRef" in e.get("valueFrom", {})
    }
    assert refs == {
        "HF_TOKEN": {"name": runtime["metadata"]["name"], "key": "HF_TOKEN"},
        "MAD_SECRETS_TOKEN": {"name": runtime["metadata"]["name"], "key": "MAD_SECRETS_TOKEN"},
    }
    mount = next(m for m in container(rendered)["volumeMounts"] if m["name"] == "runtime")
    assert mount == {
        "name": "runtime",
        "mountPath": km.CREDENTIAL_MOUNT,
        "subPath": "credential.json",
        "readOnly": True,
    }


def test_pull_secret_is_for_the_registry_the_image_is_in(package):
    rendered = render(package)
    pull = obj(rendered, "Secret", "-registry-pull")
    assert pull["type"] == "kubernetes.io/dockerconfigjson"
    auths = json.loads(pull["stringData"][".dockerconfigjson"])["auths"]
    assert list(auths) == [REGISTRY] and auths[REGISTRY]["password"] == PASSWORD
    assert pod(rendered)["imagePullSecrets"] == [{"name": pull["metadata"]["name"]}]
    hub = render(package, image={"registry_image": "hubuser/bench:dummy"})
    auths = json.loads(obj(hub, "Secret", "-registry-pull")["stringData"][".dockerconfigjson"])["auths"]
    assert list(auths) == ["https://index.docker.io/v1/"] and HUB_PASSWORD in json.dumps(auths)


def test_no_pull_secret_without_credentials_for_that_registry(package):
    rendered = render(package, image={"registry_image": "other.example:5000/dummy"}, credentials={"HF": {"token": "t"}})
    assert "-registry-pull" not in json.dumps([o["metadata"]["name"] for o in rendered.objects])
    assert "imagePullSecrets" not in pod(rendered)


def test_without_any_credential_there_is_no_runtime_secret(package):
    rendered = render(package, credentials={}, environ={})
    assert kinds(rendered) == ["ConfigMap", "Job"]
    assert all(v["name"] != "runtime" for v in pod(rendered)["volumes"])


def test_existing_and_omit_strategies_create_no_secrets(package):
    ctx = {
        "k8s": {
            "secrets": {"strategy": "existing", "image_pull_secret_names": ["regcred"], "runtime_secret_name": "creds"}
        }
    }
    rendered = render(package, ctx=ctx, model={"cred": "HF"})
    assert kinds(rendered) == ["ConfigMap", "Job"]
    assert pod(rendered)["imagePullSecrets"] == [{"name": "regcred"}]
    volume = next(v for v in pod(rendered)["volumes"] if v["name"] == "runtime")
    assert volume["secret"]["secretName"] == "creds"
    assert TOKEN not in json.dumps(rendered.objects) and ENV_SECRET not in json.dumps(rendered.objects)
    omitted = render(package, ctx={"k8s": {"secrets": {"strategy": "omit"}}})
    assert kinds(omitted) == ["ConfigMap", "Job"] and "imagePullSecrets" not in pod(omitted)


def test_extra_pull_secret_names_follow_the_created_one(package):
    rendered = render(package, ctx={"k8s": {"secrets": {"image_pull_secret_names": ["extra"]}}})
    assert [s["name"] for s in pod(rendered)["imagePullSecrets"]] == [f"{rendered.job_name}-registry-pull", "extra"]


# --- the Job ------------------------------------------------------------------------------------------


def test_single_node_job_shape(package):
    rendered = render(package, timeout=600)
    spec = rendered.job["spec"]
    assert pod(rendered)["activeDeadlineSeconds"] == 600 and rendered.timeout == 600
    assert "activeDeadlineSeconds" not in spec  # the pod's deadline keeps the pod and its log; the Job's would not
    assert spec["completions"] == spec["parallelism"] == 1 and rendered.nnodes == 1
    assert spec["backoffLimit"] == 0 and "completionMode" not in spec and "ttlSecondsAfterFinished" not in spec
    pod_spec = pod(rendered)
    assert pod_spec["restartPolicy"] == "Never" and pod_spec["terminationGracePeriodSeconds"] == 30
    assert pod_spec["hostNetwork"] is True and pod_spec["dnsPolicy"] == "ClusterFirstWithHostNet"
    assert "hostIPC" not in pod_spec and "subdomain" not in pod_spec
    assert "Service" not in kinds(rendered)
    volumes = {v["name"]: v for v in pod_spec["volumes"]}
    assert volumes["shm"]["emptyDir"] == {"medium": "Memory"} and volumes["results"] == {
        "name": "results",
        "emptyDir": {},
    }
    values = env_values(rendered)
    assert values["MAD_DEPLOYMENT_TYPE"] == "kubernetes" and values["MAD_K8S_JOB"] == "true"
    assert values["MAD_MODEL_NAME"] == "dummy" and values["MAD_RUNTIME_NGPUS"] == "1"
    assert values["HSA_NO_SCRATCH_RECLAIM"] == "1" and values["HIP_VISIBLE_DEVICES"] == "0"
    assert values["MAD_MULTI_NODE_RUNNER"] == "torchrun --standalone --nproc_per_node=1"
    assert "MAD_SYSTEM_GPU_ARCHITECTURE" not in values  # the original always said gfx90a
    assert env(rendered)["MAD_K8S_POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"


@pytest.mark.parametrize("timeout", [None, 0])
def test_no_timeout_no_deadline(package, timeout):
    rendered = render(package, timeout=timeout)
    assert "activeDeadlineSeconds" not in pod(rendered) and rendered.timeout is None


def test_gpu_resources_from_the_model_or_the_settings(package):
    rendered = render(package, model={"n_gpus": "4"})
    resources = container(rendered)["resources"]
    assert resources["limits"]["amd.com/gpu"] == 4 and resources["requests"]["amd.com/gpu"] == 4
    assert resources["requests"]["memory"] == "16Gi" and resources["limits"]["cpu"] == "16"
    assert env_values(rendered)["HIP_VISIBLE_DEVICES"] == "0,1,2,3"
    pinned = render(package, ctx={"k8s": {"gpu_count": 2, "memory": "8Gi"}}, model={"n_gpus": "4"})
    assert container(pinned)["resources"]["limits"]["amd.com/gpu"] == 2
    assert container(pinned)["resources"]["requests"]["memory"] == "8Gi"
    with pytest.raises(ConfigError, match=r"set k8s\.gpu_count"):
        render(package, model={"n_gpus": "-1"})


def test_cpu_vendor_requests_no_gpu_and_nothing_by_default(package):
    rendered = render(package, ctx={"k8s": {}, "gpu_vendor": "CPU"}, model={"n_gpus": "4"})
    assert container(rendered)["resources"] == {}
    values = env_values(rendered)
    assert values["MAD_RUNTIME_NGPUS"] == "0" and values["MAD_GPU_VENDOR"] == "CPU"
    assert not {"HIP_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES", "HSA_NO_SCRATCH_RECLAIM"} & set(values)


def test_nvidia_resource_name(package):
    rendered = render(package, ctx={"k8s": {}, "gpu_vendor": "NVIDIA"})
    assert container(rendered)["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert "HSA_NO_SCRATCH_RECLAIM" not in env_values(rendered)


def test_environment_sources_and_precedence(package):
    ctx = {
        "k8s": {"env_vars": {"FROM_K8S": "1", "SHARED": "k8s"}},
        "docker_env_vars": {"SHARED": "docker", "PRICE": "$5 $(HOME)"},
        "gpu_architecture": "gfx942",
        "guest_os": "centos",
    }
    values = env_values(render(package, ctx=ctx, model={"multiple_results": "perf_dummy.csv"}))
    assert values["FROM_K8S"] == "1" and values["SHARED"] == "docker"
    assert values["PRICE"] == "$$5 $$(HOME)"  # literal after Kubernetes' expansion
    assert values["MAD_SYSTEM_GPU_ARCHITECTURE"] == "gfx942" and values["MAD_GUEST_OS"] == "CENTOS"
    assert values["MAD_OUTPUT_CSV"] == "perf_dummy.csv"
    assert values["OMP_NUM_THREADS"] == "8"


def test_multi_node_is_an_indexed_job_with_a_headless_service(package):
    ctx = {"k8s": {"namespace": "bench"}, "distributed": {"nnodes": 3, "master_port": 29600}}
    rendered = render(package, ctx=ctx)
    job = rendered.job_name
    assert kinds(rendered)[-2:] == ["Service", "Job"] and rendered.nnodes == 3 and rendered.service_name == job
    spec = rendered.job["spec"]
    assert spec["completionMode"] == "Indexed" and spec["completions"] == spec["parallelism"] == 3
    service = obj(rendered, "Service")
    assert service["spec"]["clusterIP"] == "None" and service["spec"]["selector"] == {"job-name": job}
    assert service["spec"]["ports"][0]["port"] == 29600
    assert pod(rendered)["subdomain"] == job and pod(rendered)["hostIPC"] is True
    values = env_values(rendered)
    assert values["MASTER_ADDR"] == f"{job}-0.{job}.bench.svc.cluster.local"
    assert values["MASTER_PORT"] == "29600" and values["NNODES"] == "3"
    assert "--node_rank=$(NODE_RANK) " in values["MAD_MULTI_NODE_RUNNER"]
    items = container(rendered)["env"]
    order = [item["name"] for item in items]
    for name in ("RANK", "NODE_RANK", "JOB_COMPLETION_INDEX"):
        ref = env(rendered)[name]["valueFrom"]["fieldRef"]["fieldPath"]
        assert ref == "metadata.annotations['batch.kubernetes.io/job-completion-index']"
    assert order.index("NODE_RANK") < order.index("MAD_MULTI_NODE_RUNNER")  # defined before it is expanded
    assert len(order) == len(set(order))


def test_multi_node_deepspeed_is_refused(package):
    with pytest.raises(ConfigError, match="deepspeed on 2 nodes"):
        render(package, ctx={"k8s": {}, "distributed": {"nnodes": 2, "launcher": "deepspeed"}})


def test_scheduling_settings_reach_the_pod(package):
    ctx = {
        "k8s": {
            "node_selector": {"gpu": "mi300x"},
            "tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
            "host_network": False,
            "results_pvc": "bench-results",
            "ttl_seconds_after_finished": 600,
            "backoff_limit": 1,
            "image_pull_policy": "IfNotPresent",
        }
    }
    rendered = render(package, ctx=ctx)
    pod_spec = pod(rendered)
    assert pod_spec["nodeSelector"] == {"gpu": "mi300x"}
    assert pod_spec["tolerations"] == [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert pod_spec["hostNetwork"] is False and "dnsPolicy" not in pod_spec
    results = next(v for v in pod_spec["volumes"] if v["name"] == "results")
    assert results["persistentVolumeClaim"] == {"claimName": "bench-results"}
    assert rendered.job["spec"]["ttlSecondsAfterFinished"] == 600 and rendered.job["spec"]["backoffLimit"] == 1
    assert container(rendered)["imagePullPolicy"] == "IfNotPresent"


# --- spec hash and every model -------------------------------------------------------------------------


def test_spec_hash_is_stable_and_follows_the_inputs(package):
    first, again = render(package), render(package)
    assert first.spec_hash == again.spec_hash and re.fullmatch(r"[0-9a-f]{64}", first.spec_hash)
    assert render(package, model={"args": "--x 1"}).spec_hash != first.spec_hash
    assert render(package, run_id="run2").spec_hash != first.spec_hash
    assert render(
        package, credentials={**CREDENTIALS, REGISTRY: {"username": "bench", "password": "new"}}
    ).spec_hash == (first.spec_hash)  # Secret values do not enter the hash


def test_render_manifest_renders_every_model_with_its_timeout(package):
    doc = manifest()
    doc["built_images"]["second"] = {"docker_image": "second", "registry_image": f"{REGISTRY}/second"}
    doc["built_models"]["second"] = {"name": "second_model", "scripts": "scripts/dummy", "timeout": 90}
    rendered = km.render_manifest(
        doc,
        parse_settings({"k8s": {}}),
        run_id="r",
        package_root=str(package),
        manifest_text=json.dumps(doc),
        credentials={},
        cli_timeout=None,
        context={},
        environ={},
    )
    assert [r.entry.model_name for r in rendered] == ["dummy", "second_model"]
    assert [r.timeout for r in rendered] == [7200, 90]
    assert len({r.job_name for r in rendered}) == 2


# --- files ----------------------------------------------------------------------------------------------


def test_write_manifests_contain_no_secret_values(package, tmp_path):
    rendered = render(package, model={"cred": "HF"})
    out = tmp_path / "out" / "k8s"
    paths = km.write_manifests(str(out), [rendered])
    assert paths == [str(out / f"{rendered.job_name}.yaml")]
    text = Path(paths[0]).read_text()
    for secret in (PASSWORD, HUB_PASSWORD, TOKEN, ENV_SECRET):
        assert secret not in text
    assert text.startswith("#") and "placeholders" in text.splitlines()[1]
    documents = list(yaml.safe_load_all(text))
    assert [d["kind"] for d in documents] == kinds(rendered)
    runtime = next(d for d in documents if d["metadata"]["name"].endswith("-runtime"))
    assert runtime["stringData"]["credential.json"] == "<from credential.json: credential.json>"
    assert runtime["stringData"]["MAD_SECRETS_TOKEN"] == "<from the environment: MAD_SECRETS_TOKEN>"
    assert documents[-1] == rendered.job  # everything else as rendered
    assert PASSWORD in json.dumps(rendered.objects)  # the objects to apply keep their values


# --- offline schema validation (kubernetes-validate, spec'd by the test-infra guide: 1.20 drops unknown fields)


def _validate(paths, version):
    command = [sys.executable, "-m", "kubernetes_validate", "--strict", "--quiet", "-k", version, *map(str, paths)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def _newest_schema_version() -> str:
    from kubernetes_validate import utils

    return max(utils.all_versions(), key=lambda v: tuple(int(p) for p in v.split(".")))


def test_rendered_objects_pass_strict_schema_validation(package, tmp_path):
    pytest.importorskip("kubernetes_validate")
    rendered = [
        render(package, ctx={"k8s": {}, "gpu_vendor": "CPU"}, run_id="cpu"),
        render(package, model={"cred": "HF", "args": "--a '$(x)'"}, run_id="amd"),
        render(
            package,
            run_id="multi",
            ctx={
                "k8s": {
                    "node_selector": {"amd.com/gpu.product": "MI300X"},
                    "tolerations": [{"key": "amd.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                    "results_pvc": "bench-results",
                    "ttl_seconds_after_finished": 3600,
                    "secrets": {"image_pull_secret_names": ["extra"]},
                },
                "distributed": {"nnodes": 2},
            },
        ),
    ]
    assert [r.nnodes for r in rendered] == [1, 1, 2]
    paths = km.write_manifests(str(tmp_path / "manifests"), rendered)
    for version in ("1.28.0", _newest_schema_version()):
        result = _validate(paths, version)
        assert result.returncode == 0, f"against {version}:\n{result.stdout}{result.stderr}"


def test_schema_validation_catches_an_unknown_field(package, tmp_path):
    pytest.importorskip("kubernetes_validate")
    rendered = render(package)
    rendered.job["spec"]["template"]["spec"]["containers"][0]["workdir"] = "/tmp"  # workingDir is the field
    path = km.write_manifests(str(tmp_path), [rendered])[0]
    result = _validate([path], "1.28.0")
    assert result.returncode != 0 and "workdir" in result.stdout + result.stderr
