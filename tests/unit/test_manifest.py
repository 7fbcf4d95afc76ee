"""build_manifest.json: writing (spec 5.1) and reading every producer's shape (5.1-5.4)."""

from __future__ import annotations

import json

import pytest

from ansible_collections.rocm.madengine.plugins.module_utils import manifest
from ansible_collections.rocm.madengine.plugins.module_utils.errors import ConfigError
from ansible_collections.rocm.madengine.plugins.module_utils.manifest import ManifestEntry

# --- writing -----------------------------------------------------------------------------------------


def test_new_manifest_shape_for_a_plain_local_build():
    doc = manifest.new_manifest({"gpu_vendor": "AMD", "guest_os": "UBUNTU"}, "AMD")
    assert list(doc) == [
        "built_images",
        "built_models",
        "context",
        "credentials_required",
        "summary",
        "deployment_config",
    ]
    assert doc["built_images"] == {} and doc["built_models"] == {}
    assert doc["credentials_required"] == []
    assert doc["context"] == {
        "docker_env_vars": {},
        "docker_mounts": {},
        "docker_build_arg": {},
        "gpu_vendor": "AMD",
        "guest_os": "UBUNTU",
        "docker_gpus": "",
    }
    assert doc["summary"] == {
        "successful_builds": [],
        "failed_builds": [],
        "total_build_time": 0.0,
        "successful_pushes": [],
        "failed_pushes": [],
    }
    assert doc["deployment_config"] == {"target": "local", "env_vars": {}, "debug": False}


def test_manifest_context_copies_docker_settings_and_kept_keys():
    ctx = {
        "docker_env_vars": {"A": "1"},
        "docker_mounts": {"/data": "/mnt"},
        "docker_build_arg": {"BASE_DOCKER": "x"},
        "guest_os": "CENTOS",
        "docker_gpus": "0-3",
        "tools": [{"name": "rocprof"}],
        "encapsulate_script": "wrap.sh",
        "ctx_test": "1",
    }
    block = manifest.manifest_context(ctx, "NVIDIA")
    assert block == {
        "docker_env_vars": {"A": "1"},
        "docker_mounts": {"/data": "/mnt"},
        "docker_build_arg": {"BASE_DOCKER": "x"},
        "gpu_vendor": "NVIDIA",
        "guest_os": "CENTOS",
        "docker_gpus": "0-3",
        "tools": [{"name": "rocprof"}],
        "encapsulate_script": "wrap.sh",
    }
    # copies, not the caller's dicts
    block["docker_env_vars"]["B"] = "2"
    assert ctx["docker_env_vars"] == {"A": "1"}


def test_manifest_context_does_not_add_host_secrets(monkeypatch):
    monkeypatch.setenv("MAD_SECRETS_TOKEN", "very-secret")
    text = json.dumps(manifest.new_manifest({}, "AMD"))
    assert "MAD_SECRETS_TOKEN" not in text
    assert "very-secret" not in text


def test_deployment_config_rules():
    ctx = {
        "deploy": "local",
        "distributed": {"launcher": "torchrun", "nnodes": None},
        "env_vars": {"MIOPEN_USER_DB_PATH": "/tmp/x", "KEEP": "1"},
        "debug": True,
        "vllm": {},
    }
    assert manifest.deployment_config(ctx) == {
        "target": "local",
        "distributed": {"launcher": "torchrun"},
        "env_vars": {"KEEP": "1"},
        "debug": True,
    }
    assert ctx["env_vars"]["MIOPEN_USER_DB_PATH"] == "/tmp/x"


def test_write_and_load_round_trip(tmp_path):
    doc = manifest.new_manifest({"docker_env_vars": {"X": "1"}}, "AMD")
    doc["built_images"]["ci-dummy_dummy.ubuntu.amd"] = {
        "model": "dummy",
        "docker_image": "ci-dummy_dummy.ubuntu.amd",
        "build_duration": 1.5,
    }
    doc["built_models"]["ci-dummy_dummy.ubuntu.amd"] = {"name": "dummy", "args": " --x 1", "tags": ["a"]}
    path = tmp_path / "out" / "build_manifest.json"
    manifest.write_manifest(str(path), doc)
    text = path.read_text()
    assert text.startswith('{\n  "built_images": {\n    "ci-dummy_dummy.ubuntu.amd"')  # 2-space indent
    assert text.endswith("\n")
    assert manifest.load_manifest(str(path)) == doc
    assert sorted(p.name for p in path.parent.iterdir()) == ["build_manifest.json"]


def test_write_replaces_an_existing_file(tmp_path):
    path = tmp_path / "build_manifest.json"
    path.write_text("old")
    manifest.write_manifest(str(path), {"built_images": {}, "built_models": {}})
    assert manifest.load_manifest(str(path)) == {"built_images": {}, "built_models": {}}


def test_load_missing_file(tmp_path):
    path = tmp_path / "nope.json"
    with pytest.raises(ConfigError) as info:
        manifest.load_manifest(str(path))
    assert str(path) in info.value.msg
    assert "not found" in info.value.msg


def test_load_bad_json(tmp_path):
    path = tmp_path / "m.json"
    path.write_text('{\n  "built_images": {,\n}')
    with pytest.raises(ConfigError) as info:
        manifest.load_manifest(str(path))
    assert str(path) in info.value.msg
    assert "line 2" in info.value.msg


@pytest.mark.parametrize(
    "doc,missing",
    [
        ({"built_models": {}}, "built_images"),
        ({"built_images": {}}, "built_models"),
        ({"built_images": [], "built_models": {}}, "built_images"),
    ],
)
def test_load_missing_sections(tmp_path, doc, missing):
    path = tmp_path / "m.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ConfigError) as info:
        manifest.load_manifest(str(path))
    assert str(path) in info.value.msg
    assert missing in info.value.msg


def test_load_non_object(tmp_path):
    path = tmp_path / "m.json"
    path.write_text("[]")
    with pytest.raises(ConfigError) as info:
        manifest.load_manifest(str(path))
    assert str(path) in info.value.msg


# --- entries of the four producer shapes -------------------------------------------------------------


def test_entries_join_images_and_models_by_key():
    doc = {
        "built_images": {"a": {"docker_image": "a"}, "b": {"docker_image": "b"}},
        "built_models": {"a": {"name": "model_a"}},
    }
    found = manifest.entries(doc)
    assert [e.key for e in found] == ["a", "b"]
    assert found[0].model == {"name": "model_a"}
    assert found[1].model is None
    assert found[0].model_name == "model_a"
    assert found[1].model_name == "b"


def test_normal_build_entry_5_1():
    image = {
        "model": "dummy",
        "docker_image": "ci-dummy_dummy.ubuntu.amd",
        "dockerfile": "docker/dummy.ubuntu.amd.Dockerfile",
        "registry": "localhost:5000",
        "registry_image": "localhost:5000/ci-dummy_dummy.ubuntu.amd",
    }
    entry = ManifestEntry("ci-dummy_dummy.ubuntu.amd", image, {"name": "dummy"})
    assert entry.local_name == "ci-dummy_dummy.ubuntu.amd"
    assert entry.registry_image == "localhost:5000/ci-dummy_dummy.ubuntu.amd"
    assert entry.model_name == "dummy"


def test_normal_build_entry_without_push():
    entry = ManifestEntry("ci-x", {"model": "x", "docker_image": "ci-x"}, None)
    assert entry.local_name == "ci-x"
    assert entry.registry_image == ""
    assert entry.model_name == "x"


def test_use_image_entry_5_2():
    image = {
        "image_name": "rocm/pytorch:latest",
        "docker_image": "rocm/pytorch:latest",
        "local_image": True,
        "dockerfile": "",
        "build_time": 0,
        "prebuilt": True,
    }
    entry = ManifestEntry("dummy", image, {"name": "dummy", "image": "rocm/pytorch:latest"})
    assert entry.local_name == "rocm/pytorch:latest"
    assert entry.model_name == "dummy"


def test_use_image_entry_with_only_image_name():
    entry = ManifestEntry("dummy", {"image_name": "rocm/pytorch:latest", "local_image": True}, None)
    assert entry.local_name == "rocm/pytorch:latest"


def test_container_image_entry_5_4():
    image = {
        "docker_image": "rocm/tensorflow:latest",
        "dockerfile": "N/A (local image mode)",
        "build_status": "SKIPPED",
        "build_time": 0,
        "local_image": True,
        "registry_image": None,
    }
    entry = ManifestEntry("local-dummy2_model1", image, {"name": "dummy2/model1"})
    assert entry.local_name == "rocm/tensorflow:latest"
    assert entry.registry_image == ""
    assert entry.model_name == "dummy2/model1"


def test_build_on_compute_entry_5_3_local_name():
    image = {
        "image_name": "registry.example.com/team/ci:dummy",
        "docker_image": "registry.example.com/team/ci:dummy",
        "local_image": "ci-dummy_dummy",
        "dockerfile": "docker/dummy.ubuntu.amd.Dockerfile",
        "build_time": 0,
        "built_on_compute": True,
        "registry": "registry.example.com/team/ci",
    }
    entry = ManifestEntry("dummy", image, {"name": "dummy"})
    assert entry.local_name == "ci-dummy_dummy"


def test_build_on_compute_entry_5_3_registry_image():
    image = {
        "image_name": "registry.example.com/team/ci:dummy",
        "docker_image": "registry.example.com/team/ci:dummy",
        "local_image": "ci-dummy_dummy",
        "built_on_compute": True,
        "registry": "registry.example.com/team/ci",
    }
    entry = ManifestEntry("dummy", image, {"name": "dummy"})
    assert entry.registry_image == "registry.example.com/team/ci:dummy"


def test_load_bad_json_says_what_to_do(tmp_path):
    path = tmp_path / "m.json"
    path.write_text('{"built_images": {"a": ')
    with pytest.raises(ConfigError) as info:
        manifest.load_manifest(str(path))
    assert info.value.exit_code == 4
    assert info.value.one_line().startswith(f"--manifest-file {path}: invalid JSON at line 1 column 24: ")
    assert info.value.one_line().endswith(". fix it, or write it again with 'madengine build'")


@pytest.mark.parametrize("section", ["built_images", "built_models"])
@pytest.mark.parametrize("record", ["ci-x", ["ci-x"], 3])
def test_load_refuses_a_record_that_is_not_an_object(tmp_path, section, record):
    doc = {"built_images": {"ci-x": {"docker_image": "ci-x"}}, "built_models": {"ci-x": {"name": "x"}}}
    doc[section]["ci-x"] = record
    path = tmp_path / "m.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ConfigError) as info:
        manifest.load_manifest(str(path))
    assert info.value.msg == (
        f"--manifest-file {path}: {section}['ci-x'] must be a JSON object, got {type(record).__name__}"
    )


def test_load_keeps_null_records_for_the_run_to_report(tmp_path):
    doc = {"built_images": {"ci-x": None}, "built_models": {"ci-x": None}}
    path = tmp_path / "m.json"
    path.write_text(json.dumps(doc))
    (entry,) = manifest.entries(manifest.load_manifest(str(path)))
    assert (entry.key, entry.image, entry.model) == ("ci-x", {}, None)
