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
