"""credential.json, MAD_DOCKERHUB_* overrides, registry credentials and names (spec 4.6, 9.6-9.7, fix 15.2.12)."""

from __future__ import annotations

import json

import pytest

from ansible_collections.rocm.madengine.plugins.module_utils import credentials
from ansible_collections.rocm.madengine.plugins.module_utils.errors import ConfigError

CREDS = {
    "dockerhub": {"username": "hubuser", "password": "hubpass", "repository": "myorg/ci"},
    "localhost:5000": {"username": "reguser", "password": "regpass", "repository": "team"},
    "registry.example.com": {"username": "u", "password": "p"},
    "AMD_GITHUB": {"username": "gh", "password": "tok"},
}


def write_creds(root, data):
    (root / "credential.json").write_text(json.dumps(data))


# --- loading -----------------------------------------------------------------------------------------


def test_load_without_file_or_env(tmp_path):
    assert credentials.load_credentials(str(tmp_path), environ={}) == {}


def test_load_file(tmp_path):
    write_creds(tmp_path, CREDS)
    assert credentials.load_credentials(str(tmp_path), environ={}) == CREDS


def test_dockerhub_env_override_replaces_the_entry(tmp_path):
    write_creds(tmp_path, CREDS)
    env = {"MAD_DOCKERHUB_USER": "envuser", "MAD_DOCKERHUB_PASSWORD": "envpass"}
    creds = credentials.load_credentials(str(tmp_path), environ=env)
    assert creds["dockerhub"] == {"username": "envuser", "password": "envpass"}
    assert creds["localhost:5000"] == CREDS["localhost:5000"]


def test_dockerhub_env_override_with_repository(tmp_path):
    env = {"MAD_DOCKERHUB_USER": "u", "MAD_DOCKERHUB_PASSWORD": "p", "MAD_DOCKERHUB_REPO": "org/repo"}
    creds = credentials.load_credentials(str(tmp_path), environ=env)
    assert creds == {"dockerhub": {"username": "u", "password": "p", "repository": "org/repo"}}


@pytest.mark.parametrize(
    "env", [{"MAD_DOCKERHUB_USER": "u"}, {"MAD_DOCKERHUB_PASSWORD": "p"}, {"MAD_DOCKERHUB_REPO": "r"}]
)
def test_dockerhub_env_override_needs_user_and_password(tmp_path, env):
    write_creds(tmp_path, CREDS)
    assert credentials.load_credentials(str(tmp_path), environ=env)["dockerhub"] == CREDS["dockerhub"]


def test_load_reads_os_environ_by_default(tmp_path, monkeypatch):
    monkeypatch.setenv("MAD_DOCKERHUB_USER", "osuser")
    monkeypatch.setenv("MAD_DOCKERHUB_PASSWORD", "ospass")
    monkeypatch.delenv("MAD_DOCKERHUB_REPO", raising=False)
    assert credentials.load_credentials(str(tmp_path))["dockerhub"] == {"username": "osuser", "password": "ospass"}


def test_invalid_json_is_a_config_error(tmp_path):
    (tmp_path / "credential.json").write_text('{"a": 1,\n}')
    with pytest.raises(ConfigError) as info:
        credentials.load_credentials(str(tmp_path), environ={})
    assert "credential.json" in info.value.msg
    assert "line 2" in info.value.msg


def test_non_object_is_a_config_error(tmp_path):
    write_creds(tmp_path, ["dockerhub"])
    with pytest.raises(ConfigError) as info:
        credentials.load_credentials(str(tmp_path), environ={})
    assert "credential.json" in info.value.msg


# --- registry credentials ----------------------------------------------------------------------------


@pytest.mark.parametrize("registry", ["", "docker.io", "DOCKER.IO", "dockerhub", "index.docker.io", "docker.io/"])
def test_dockerhub_spellings_use_the_dockerhub_entry(registry):
    auth = credentials.registry_auth(CREDS, registry)
    assert auth is not None
    assert (auth.username, auth.password) == ("hubuser", "hubpass")


def test_literal_registry_key():
    auth = credentials.registry_auth(CREDS, "localhost:5000")
    assert auth.auth_config() == {"username": "reguser", "password": "regpass"}
    assert credentials.registry_auth(CREDS, "localhost:5000/").username == "reguser"


def test_literal_key_wins_over_dockerhub_alias():
    creds = dict(CREDS, **{"docker.io": {"username": "literal", "password": "x"}})
    assert credentials.registry_auth(creds, "docker.io").username == "literal"


def test_unknown_registry_has_no_credentials():
    assert credentials.registry_auth(CREDS, "ghcr.io") is None
    assert credentials.registry_auth({}, "") is None


def test_entry_that_is_not_an_object_is_a_config_error():
    with pytest.raises(ConfigError) as info:
        credentials.registry_auth({"ghcr.io": "token"}, "ghcr.io")
    assert info.value.msg == "credential.json entry 'ghcr.io': must be an object, got str"


def test_other_entries_may_be_anything():
    assert credentials.registry_auth({"NAS_NODES": [{"NAME": "n"}], "ghcr.io": {}}, "quay.io") is None


@pytest.mark.parametrize("entry", [{"username": "u"}, {"password": "p"}, {"username": "", "password": "p"}])
def test_missing_username_or_password_is_a_config_error(entry):
    with pytest.raises(ConfigError) as info:
        credentials.registry_auth({"ghcr.io": entry}, "ghcr.io")
    assert "ghcr.io" in info.value.msg
    assert "password" in info.value.msg


def test_repr_hides_the_password():
    auth = credentials.RegistryAuth("someone", "s3cr3t-value")
    assert "someone" in repr(auth)
    assert "s3cr3t-value" not in repr(auth)
    assert "s3cr3t-value" not in str(auth)
    assert "s3cr3t-value" not in f"{auth!r} {auth}"


# --- registry image names ----------------------------------------------------------------------------


def test_registry_image_with_repository():
    assert credentials.registry_image(CREDS, "localhost:5000", "ci-dummy_dummy.ubuntu.amd") == (
        "localhost:5000/team:ci-dummy_dummy.ubuntu.amd"
    )


def test_registry_image_without_repository():
    assert credentials.registry_image(CREDS, "registry.example.com", "ci-x") == "registry.example.com/ci-x"
    assert credentials.registry_image({}, "localhost:5000/", "ci-x") == "localhost:5000/ci-x"


def test_registry_image_repository_slashes_are_trimmed():
    creds = {"localhost:5000": {"repository": "/team/sub/"}}
    assert credentials.registry_image(creds, "localhost:5000", "ci-x") == "localhost:5000/team/sub:ci-x"


@pytest.mark.parametrize("registry", ["docker.io", "dockerhub", "DockerHub"])
def test_dockerhub_registry_image(registry):
    assert credentials.registry_image(CREDS, registry, "ci-x") == "myorg/ci:ci-x"


def test_dockerhub_without_repository_is_an_error():
    creds = {"dockerhub": {"username": "u", "password": "p"}}
    with pytest.raises(ConfigError) as info:
        credentials.registry_image(creds, "docker.io", "ci-x")
    assert "repository" in info.value.msg
    with pytest.raises(ConfigError):
        credentials.registry_image({}, "dockerhub", "ci-x")


@pytest.mark.parametrize(
    "ref,expected",
    [
        ("localhost:5000/ci-x:latest", "localhost:5000"),
        ("localhost/ci-x", "localhost"),
        ("ghcr.io/org/image:1", "ghcr.io"),
        ("rocm/pytorch:latest", ""),
        ("ubuntu", ""),
        ("ubuntu:22.04", ""),
    ],
)
def test_registry_of(ref, expected):
    assert credentials.registry_of(ref) == expected


def test_is_dockerhub():
    assert credentials.is_dockerhub(" Docker.IO ")
    assert credentials.is_dockerhub("registry-1.docker.io")
    assert not credentials.is_dockerhub("docker.io/myorg")
    assert not credentials.is_dockerhub("localhost:5000")
