"""--inventory before any play: the inventory's groups, where ansible-playbook is, ansible's own error lines."""

from __future__ import annotations

import json
import os
import sys

import pytest

from ansible_collections.rocm.madengine.plugins.module_utils.errors import ConfigError
from madengine.cli import fleet


@pytest.fixture
def split_inventory(tmp_path):
    """An inventory directory as the fleet tests write it: GPU hosts in INI, the build host in YAML."""
    (tmp_path / "hosts.ini").write_text("[madengine_gpu]\nnode1 ansible_host=192.0.2.1\nnode2 ansible_host=192.0.2.2\n")
    controller = {"all": {"hosts": {"localhost": {}}, "children": {"madengine_build": {"hosts": {"localhost": {}}}}}}
    (tmp_path / "controller.yml").write_text(json.dumps(controller))
    return str(tmp_path)


@pytest.mark.parametrize("command", ["run", "build", "run-only"])
def test_an_inventory_with_the_groups_passes(split_inventory, command):
    fleet.check_inventory(command, split_inventory, None)


def test_limit_keeping_a_host_of_each_group_passes(split_inventory):
    fleet.check_inventory("run", split_inventory, "localhost:node1")


def test_limit_dropping_the_gpu_hosts_names_the_group_and_the_limit(split_inventory):
    with pytest.raises(ConfigError) as info:
        fleet.check_inventory("run-only", split_inventory, "localhost")
    assert (
        info.value.msg == f"--inventory {split_inventory}: no hosts in group 'madengine_gpu' matching --limit localhost"
    )


def test_slurm_needs_a_login_node_and_points_to_the_slurm_example(split_inventory):
    with pytest.raises(ConfigError) as info:
        fleet.check_inventory("slurm-run-only", split_inventory, None)
    assert "'madengine_slurm_login'" in info.value.msg
    assert "inventories/slurm-example/hosts.yml" in str(info.value.hint)


def test_ansible_playbook_beside_this_python_is_used_when_not_on_path(monkeypatch):
    monkeypatch.setattr(fleet.shutil, "which", lambda _name: None)
    if not os.access(os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), os.X_OK):
        pytest.fail("this test needs ansible-playbook installed beside the test interpreter (scripts/setup.sh)")
    assert fleet.playbook_path()["PATH"].split(os.pathsep)[0] == os.path.dirname(sys.executable)


def test_no_ansible_playbook_anywhere_is_one_line(monkeypatch):
    monkeypatch.setattr(fleet.shutil, "which", lambda _name: None)
    monkeypatch.setattr(fleet.sys, "executable", "/nonexistent/python")
    with pytest.raises(ConfigError) as info:
        fleet.playbook_path()
    assert info.value.msg == "--inventory needs ansible-playbook, which is not on PATH"


def test_ansible_error_lines_are_shown_without_colour(capsys):
    fleet.show_ansible_errors("\x1b[0;31m[ERROR]: Invalid play strategy specified: x\x1b[0m\n\x1b[0m\n")
    assert capsys.readouterr().err.split() == ["ansible", "[ERROR]:", "Invalid", "play", "strategy", "specified:", "x"]


def test_without_error_lines_the_last_line_is_shown(capsys):
    fleet.show_ansible_errors("usage: ansible-playbook [-h]\nansible-playbook: error: playbook required\n\n")
    assert capsys.readouterr().err.strip() == "ansible ansible-playbook: error: playbook required"
