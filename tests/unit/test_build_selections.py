"""One model selected with several args: one image build, one manifest entry per selection ('<image>#<n>')."""

from __future__ import annotations

import json

import pytest

from ansible_collections.rocm.madengine.plugins.module_utils import build, discovery, dockerfiles, manifest, prebuilt
from ansible_collections.rocm.madengine.plugins.module_utils.errors import BuildError

IMAGE = "ci-dummy_dummy.ubuntu.cpu"
CPU = {"gpu_vendor": "CPU"}


@pytest.fixture(autouse=True)
def _fresh_cache():
    discovery.clear_cache()
    yield
    discovery.clear_cache()


@pytest.fixture
def builds(monkeypatch):
    """The selections _build_one was called for; it returns a pushed image's record (no Docker)."""
    calls = []

    def fake_build_one(root, model, dockerfile, options, creds, reporter, target, arch=None):
        calls.append((model["name"], model["args"]))
        image = dockerfiles.image_name(model["name"], dockerfile, arch)
        if model["name"] == "dummy_exit":
            raise BuildError(f"model '{model['name']}': docker build failed")
        return {"model": model["name"], "docker_image": image, "cached": False, "registry_image": f"reg/x:{image}"}

    monkeypatch.setattr(build, "_build_one", fake_build_one)
    return calls


def test_each_selection_gets_its_own_entry_and_the_image_is_built_once(mad_package, builds):
    tags = ["dummy:foo=1", "dummy:foo=2", "dummy2", "dummy:foo=1", "dummy:foo=3"]
    outcome = build.build_models(str(mad_package), build.BuildOptions(tags=tags, context=CPU, default_vendor="CPU"))
    assert builds == [("dummy", " --foo 1"), ("dummy2", "")]
    data = json.loads((mad_package / "build_manifest.json").read_text())
    assert data == outcome.manifest
    keys = [IMAGE, f"{IMAGE}#2", "ci-dummy2_dummy.ubuntu.cpu", f"{IMAGE}#3"]
    assert list(data["built_images"]) == keys == list(data["built_models"])
    assert [data["built_models"][k]["args"] for k in keys] == [" --foo 1", " --foo 2", "", " --foo 3"]
    for key in (f"{IMAGE}#2", f"{IMAGE}#3"):
        assert data["built_images"][key] == data["built_images"][IMAGE]
        assert data["built_images"][key]["docker_image"] == IMAGE
        assert data["built_models"][key]["env_vars"]["DOCKER_IMAGE_NAME"] == f"reg/x:{IMAGE}"
    assert [r["docker_image"] for r in outcome.successes] == [IMAGE, "ci-dummy2_dummy.ubuntu.cpu"]
    assert data["summary"]["successful_pushes"] == [f"reg/x:{IMAGE}", "reg/x:ci-dummy2_dummy.ubuntu.cpu"]
    entries = manifest.entries(data)
    assert [(e.key, e.local_name, e.registry_image, e.model_name) for e in entries][:2] == [
        (IMAGE, IMAGE, f"reg/x:{IMAGE}", "dummy"),
        (f"{IMAGE}#2", IMAGE, f"reg/x:{IMAGE}", "dummy"),
    ]
    assert [e.model["args"] for e in entries if e.model] == [" --foo 1", " --foo 2", "", " --foo 3"]


def test_a_failed_image_is_not_rebuilt_for_another_selection(mad_package, builds):
    options = build.BuildOptions(tags=["dummy_exit:a=1", "dummy_exit:a=2"], context=CPU, check_only=True)
    outcome = build.build_models(str(mad_package), options)
    assert builds == [("dummy_exit", " --a 1")]
    assert [(f["model"], f["args"]) for f in outcome.failures] == [("dummy_exit", " --a 1"), ("dummy_exit", " --a 2")]
    assert all("docker build failed" in f["error"] for f in outcome.failures)
    assert outcome.manifest["built_images"] == {}
    assert not (mad_package / "build_manifest.json").exists()


def test_use_image_keeps_every_selection(mad_package):
    data = prebuilt.use_image_manifest(str(mad_package), "img:1", ["dummy:a=1", "dummy:a=2", "dummy2"], {}, "CPU")
    assert list(data["built_models"]) == ["dummy", "dummy#2", "dummy2"] == list(data["built_images"])
    assert [m["args"] for m in data["built_models"].values()] == [" --a 1", " --a 2", ""]
    assert {e.local_name for e in manifest.entries(data)} == {"img:1"}


def test_selection_key_numbers_from_two():
    data: dict = {"built_images": {}}
    keys = []
    for _ in range(3):
        key = manifest.selection_key(data, "img")
        data["built_images"][key] = {}
        keys.append(key)
    assert keys == ["img", "img#2", "img#3"]
