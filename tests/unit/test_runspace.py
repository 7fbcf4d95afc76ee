"""Run directories and their owners: what `madengine clean` may remove and what it must leave."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ansible_collections.rocm.madengine.plugins.module_utils import cleanup, ownership
from ansible_collections.rocm.madengine.plugins.module_utils.ownership import Owner, this_process
from ansible_collections.rocm.madengine.plugins.module_utils.runspace import RUN_DIRECTORY, RunSpace, runs_dir


def dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(proc.stdout)


def package(tmp_path: Path) -> Path:
    scripts = tmp_path / "scripts" / "m"
    scripts.mkdir(parents=True)
    (scripts / "run.sh").write_text("echo hi\n")
    return tmp_path


def test_this_process_is_alive_and_round_trips_through_labels():
    me = this_process("r1")
    assert me.alive() and me.pid == os.getpid() and me.pid_start
    labels = me.labels("dummy", keep=True)
    assert labels[ownership.KEEP_LABEL] == "true" and labels[ownership.MODEL_LABEL] == "dummy"
    assert Owner.from_labels(labels) == me
    assert Owner.from_labels({ownership.RUN_LABEL: "r1"}) is None  # an older madengine's container: unknown


def test_dead_reused_and_foreign_owners():
    me = this_process("r1")
    assert not Owner("r1", me.host, dead_pid(), "1").alive()
    assert not Owner("r1", me.host, me.pid, str(int(me.pid_start) + 1)).alive()  # the pid was reused
    assert Owner("r1", "another-host", dead_pid(), "1").alive()  # cannot be seen from here: left alone


def test_slots_are_copies_and_vanish_with_the_run(tmp_path):
    root = package(tmp_path)
    space = RunSpace(str(root), this_process("run.with.dots"))
    slot = space.slot("m_m.ubuntu", str(root / "scripts" / "m"))
    (Path(slot) / "out.txt").write_text("written by the model")
    assert (Path(slot) / "run.sh").read_text() == "echo hi\n"
    assert not (root / "scripts" / "m" / "out.txt").exists()
    owner = json.loads((Path(space.path) / "owner.json").read_text())
    assert owner["pid"] == os.getpid() and owner["run_id"] == "run.with.dots"
    (root / RUN_DIRECTORY).mkdir()  # the engine's mount point
    space.release(slot, keep=False)
    assert space.close() is None
    assert os.listdir(runs_dir(str(root))) == [] and not (root / RUN_DIRECTORY).exists()


def test_the_mount_point_stays_while_another_run_directory_exists(tmp_path):
    root = package(tmp_path)
    other = RunSpace(str(root), this_process("other"))
    other.slot("x", str(root / "scripts" / "m"))
    mine = RunSpace(str(root), this_process("mine"))
    mine.slot("x", str(root / "scripts" / "m"))
    (root / RUN_DIRECTORY).mkdir()
    mine.close()
    assert (root / RUN_DIRECTORY).is_dir()


def test_kept_slots_keep_the_directory_and_say_so(tmp_path):
    root = package(tmp_path)
    space = RunSpace(str(root), this_process("keep"))
    slot = space.slot("m", str(root / "scripts" / "m"))
    space.release(slot, keep=True)
    kept = space.close()
    assert kept and Path(slot).is_dir()
    assert json.loads((Path(kept) / "owner.json").read_text())["kept"] == ["m"]


def test_leftover_run_dirs_are_those_of_dead_processes(tmp_path):
    root = package(tmp_path)
    live = RunSpace(str(root), this_process("live"))
    live.slot("m", str(root / "scripts" / "m"))
    dead = RunSpace(str(root), Owner("dead", this_process("x").host, dead_pid(), "1"))
    dead.slot("m", str(root / "scripts" / "m"))
    found = cleanup.leftover_run_dirs(str(root))
    assert [(item.run_id, item.name) for item in found] == [("dead", dead.path)]
    assert cleanup.remove(found) == []
    assert not Path(dead.path).exists() and Path(live.path).is_dir()
