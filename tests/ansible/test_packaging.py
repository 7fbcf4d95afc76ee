"""The collection as users get it: `ansible-galaxy collection build`, `install` into a temp path, `ansible-doc`."""

from __future__ import annotations

import re
import tarfile
from pathlib import Path

import pytest
import yaml
from modrun import COLLECTION_DIR, FQCN, MODULES, ansible_env, run_tool, venv_bin

pytestmark = pytest.mark.integration


def short_descriptions() -> dict:
    """short_description of each module, read from its DOCUMENTATION."""
    result = {}
    for name in MODULES:
        text = (COLLECTION_DIR / "plugins" / "modules" / f"{name}.py").read_text(encoding="utf-8")
        doc = re.search(r'^DOCUMENTATION = r"""\n(.*?)^"""', text, re.S | re.M)
        assert doc, name
        result[name] = yaml.safe_load(doc.group(1))["short_description"]
    return result


def test_build_install_and_ansible_doc(tmp_path: Path) -> None:
    env = ansible_env(tmp_path, collections_path=tmp_path / "installed")
    galaxy = str(venv_bin() / "ansible-galaxy")
    built = run_tool([galaxy, "collection", "build", str(COLLECTION_DIR), "--output-path", str(tmp_path)], env)
    assert built.returncode == 0, built.stdout + built.stderr
    (tarball,) = tmp_path.glob("rocm-madengine-*.tar.gz")
    with tarfile.open(tarball) as archive:
        names = archive.getnames()
    assert "meta/runtime.yml" in names and "plugins/doc_fragments/common.py" in names
    assert not [n for n in names if "__pycache__" in n or n.startswith("tests/output")], names

    installed = run_tool([galaxy, "collection", "install", str(tarball), "-p", str(tmp_path / "installed")], env)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    target = tmp_path / "installed" / "ansible_collections" / "rocm" / "madengine"
    assert (target / "plugins" / "modules" / "run_model.py").is_file()

    listing = run_tool([str(venv_bin() / "ansible-doc"), "-t", "module", "-l", "rocm.madengine"], env)
    assert listing.returncode == 0, listing.stderr
    assert sorted(re.findall(r"^(rocm\.madengine\.\w+)", listing.stdout, re.M)) == sorted(
        f"{FQCN}.{m}" for m in MODULES
    )
    for name, short in short_descriptions().items():
        doc = run_tool([str(venv_bin() / "ansible-doc"), "-t", "module", f"{FQCN}.{name}"], env)
        assert doc.returncode == 0, f"{name}: {doc.stderr}"
        flat = " ".join(doc.stdout.split())
        assert f"MODULE {FQCN}.{name} ({target}/plugins/modules/{name}.py)" in flat, f"{name}: not the installed copy"
        assert "package_dir" in flat and "rocm.madengine.madengine" in flat, f"{name}: doc fragments not resolved"
        snippet = run_tool([str(venv_bin() / "ansible-doc"), "-t", "module", "-s", f"{FQCN}.{name}"], env)
        assert snippet.returncode == 0, f"{name}: {snippet.stderr}"
        assert f"- name: {short}" in snippet.stdout, f"{name}: short description missing:\n{snippet.stdout}"


def test_every_module_is_in_the_action_group() -> None:
    """module_defaults: {group/rocm.madengine.madengine: ...} reaches every module (and every doc says so)."""
    runtime = yaml.safe_load((COLLECTION_DIR / "meta" / "runtime.yml").read_text(encoding="utf-8"))
    assert sorted(runtime["action_groups"]["madengine"]) == sorted(MODULES)
    on_disk = sorted(p.stem for p in (COLLECTION_DIR / "plugins" / "modules").glob("*.py") if p.stem != "__init__")
    assert on_disk == sorted(MODULES)
