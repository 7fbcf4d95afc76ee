"""Fixtures for the rocm.madengine module tests: a runner for `ansible localhost -m ...` and a private MAD package."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Iterator

import pytest
from modrun import Ansible, Package


@pytest.fixture
def ansible(tmp_path: Path) -> Ansible:
    return Ansible(tmp_path)


@pytest.fixture
def package(mad_package: Path, docker_client) -> Iterator[Package]:
    """mad_package with an extra copy of the `dummy` model named ansible_it_<id>: its image
    (ci-ansible_it_<id>_dummy.ubuntu.cpu) is built fresh by this test and removed afterwards, so that parallel
    tests sharing the Docker engine cannot make it cached or stale under us."""
    ident = uuid.uuid4().hex[:8]
    model = f"ansible_it_{ident}"
    cards = json.loads((mad_package / "models.json").read_text(encoding="utf-8"))
    card = dict(next(c for c in cards if c["name"] == "dummy"))
    card.update(name=model, tags=[model])
    cards.append(card)
    (mad_package / "models.json").write_text(json.dumps(cards, indent=2), encoding="utf-8")
    pkg = Package(mad_package, model, model)
    try:
        yield pkg
    finally:
        for image in docker_client.images.list():
            for tag in image.tags:
                if model in tag:
                    docker_client.images.remove(tag, force=True)
