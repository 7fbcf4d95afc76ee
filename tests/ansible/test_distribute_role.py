"""The distribute role on the controller itself: one archive per host, idempotent, honest in check mode."""

from __future__ import annotations

import json
import re
import stat
import subprocess
from pathlib import Path
from typing import Dict

import pytest
from modrun import ansible_env, venv_bin

pytestmark = pytest.mark.integration

MODELS = ("dummy", "dummy2/model1")  # scripts/dummy and scripts/dummy2; scripts/dummy3 is not needed
NEEDED_DIRS = ("dummy", "dummy2")


def write_manifest(package: Path) -> Path:
    """A manifest naming two models of the fixture package (distribute reads only their scripts)."""
    found = subprocess.run(
        [str(venv_bin() / "madengine"), "discover", "--json", "--tags", ",".join(MODELS)],
        cwd=package,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    cards = json.loads(found.stdout)
    assert [c["name"] for c in cards] == list(MODELS)
    manifest = {
        "built_images": {f"ci-{c['name']}": {"docker_image": f"ci-{c['name']}_dummy.ubuntu.cpu"} for c in cards},
        "built_models": {f"ci-{c['name']}": c for c in cards},
    }
    path = package / "out" / "nightly_manifest.json"
    path.parent.mkdir()
    path.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return path


class Play:
    def __init__(self, tmp: Path, package: Path, manifest: Path) -> None:
        self.work = tmp / "work"
        self.scratch = tmp / "controller-tmp"
        self.scratch.mkdir()
        self.playbook = tmp / "distribute.yml"
        variables = {
            "madengine_package_dir": str(package),
            "madengine_output_dir": str(manifest.parent),
            "madengine_manifest": manifest.name,
            "madengine_work_dir": str(self.work),
            "madengine_distribute_mode": "none",
        }
        play = [{"hosts": "localhost", "connection": "local", "gather_facts": False, "vars": variables,
                 "roles": ["rocm.madengine.distribute"]}]  # fmt: skip
        self.playbook.write_text(json.dumps(play), encoding="utf-8")
        self.env = {**ansible_env(tmp), "TMPDIR": str(self.scratch)}

    def run(self, *extra: str) -> Dict[str, int]:
        result = subprocess.run(
            [str(venv_bin() / "ansible-playbook"), "-i", "localhost,", str(self.playbook), *extra],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
        recap = re.search(r"localhost\s*:\s*(.*)", result.stdout.split("PLAY RECAP")[-1])
        assert recap, result.stdout[-2000:]
        return {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", recap.group(1))}


def test_distribute_unpacks_once_and_is_idempotent(mad_package: Path, tmp_path: Path) -> None:
    manifest = write_manifest(mad_package)
    (mad_package / "credential.json").write_text('{"dockerhub": {"password": "x"}}', encoding="utf-8")
    play = Play(tmp_path, mad_package, manifest)

    assert play.run("--check")["changed"] > 0
    assert not play.work.exists(), "check mode created the work directory"

    assert play.run()["changed"] > 0
    assert (play.work / "build_manifest.json").read_bytes() == manifest.read_bytes()
    assert (play.work / "models.json").read_bytes() == (mad_package / "models.json").read_bytes()
    for directory in NEEDED_DIRS:
        for source in (mad_package / "scripts" / directory).iterdir():
            copied = play.work / "scripts" / directory / source.name
            assert copied.read_bytes() == source.read_bytes(), copied
            assert copied.stat().st_mode & 0o111 == source.stat().st_mode & 0o111, f"{copied}: exec bits"
    assert not (play.work / "scripts" / "dummy3").exists(), "a directory no model of the manifest needs"
    assert stat.S_IMODE((play.work / "credential.json").stat().st_mode) == 0o600

    assert play.run()["changed"] == 0
    assert play.run("--check")["changed"] == 0

    script = mad_package / "scripts" / "dummy2" / "run.sh"
    script.write_text(script.read_text(encoding="utf-8") + "# changed\n", encoding="utf-8")
    assert play.run("--check")["changed"] > 0
    assert not (play.work / "scripts" / "dummy2" / "run.sh").read_text(encoding="utf-8").endswith("# changed\n")
    assert play.run()["changed"] > 0
    assert (play.work / "scripts" / "dummy2" / "run.sh").read_text(encoding="utf-8").endswith("# changed\n")

    (play.work / "scripts" / "dummy" / "run.sh").unlink()  # lost on the host; the package did not change
    assert play.run()["changed"] > 0
    assert (play.work / "scripts" / "dummy" / "run.sh").read_bytes() == (
        mad_package / "scripts" / "dummy" / "run.sh"
    ).read_bytes()
    assert play.run()["changed"] == 0

    assert list(play.scratch.iterdir()) == [], "the controller's staging directory was left behind"
