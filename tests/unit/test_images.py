"""images.repo_digest: which digest describes the reference that ran."""

from __future__ import annotations

from ansible_collections.rocm.madengine.plugins.module_utils import images


def test_repo_digest_only_for_the_same_repository():
    record = {
        "Id": "sha256:abc",
        "RepoDigests": ["127.0.0.1:5001/other/name@sha256:111", "reg:5000/team/img@sha256:222"],
    }
    assert images.repo_digest("reg:5000/team/img:ci-x", record) == "reg:5000/team/img@sha256:222"
    assert images.repo_digest("ci-dummy_dummy.ubuntu.cpu", record) == "sha256:abc"
    assert images.repo_digest("reg:5000/team/img", {"Id": "sha256:abc"}) == "sha256:abc"


def test_repository_strips_only_the_tag():
    assert images.repository("localhost:5000/a/b:tag") == "localhost:5000/a/b"
    assert images.repository("localhost:5000/a/b") == "localhost:5000/a/b"
    assert images.repository("ubuntu:22.04") == "ubuntu"


def test_a_registry_that_does_not_answer_is_named_with_what_to_do():
    exc = RuntimeError('Get "http://127.0.0.1:5999/v2/": dial tcp 127.0.0.1:5999: connect: connection refused')
    error = images.registry_error("push", "127.0.0.1:5999/team/img:ci-x", exc)
    assert error.exit_code == 2
    assert error.msg.startswith("push of 127.0.0.1:5999/team/img:ci-x failed: Get ")
    assert error.one_line().endswith(
        "connection refused. the registry 127.0.0.1:5999 is not reachable; "
        "check that it is running and reachable from this host"
    )


def test_refused_credentials_point_at_credential_json():
    exc = RuntimeError("unauthorized: authentication required")
    error = images.registry_error("pull", "reg.example.com/team/img:1", exc)
    assert error.one_line() == (
        "pull of reg.example.com/team/img:1 failed: unauthorized: authentication required. "
        "the registry reg.example.com refused the credentials; check its entry in credential.json"
    )


def test_other_engine_errors_are_kept_as_they_are():
    error = images.registry_error("pull", "img:1", RuntimeError("manifest unknown"))
    assert error.one_line() == "pull of img:1 failed: manifest unknown"
