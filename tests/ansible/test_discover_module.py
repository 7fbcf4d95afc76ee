"""discover_models through ansible-core: selections with args, a printing getter, card warnings, empty tags."""

from __future__ import annotations

from pathlib import Path

import pytest
from modrun import Ansible

pytestmark = pytest.mark.integration


def test_discover_module_selections_warnings_and_a_printing_getter(ansible: Ansible, mad_package: Path) -> None:
    getter = mad_package / "scripts" / "dummy3" / "get_models_json.py"
    getter.write_text("import os\nprint('getter says hi')\nos.write(1, b'raw fd\\n')\n" + getter.read_text())
    tags = ["dummy:bs=4", "dummy:bs=8", "dummy_missing_dockerfile", "dummy3/model3"]
    found = ansible.module("discover_models", {"package_dir": str(mad_package), "tags": tags})
    assert found.rc == 0, found.output
    assert [(m["name"], m["args"]) for m in found.data["models"]] == [
        ("dummy", " --bs 4"),
        ("dummy", " --bs 8"),
        ("dummy_missing_dockerfile", ""),
        ("dummy3/model3", ""),
    ]
    # module.warn(): Ansible shows the result's warnings on stderr
    assert [line for line in found.stderr.splitlines() if line.startswith("[WARNING]")] == [
        "[WARNING]: models.json: model card 'dummy_missing_dockerfile': no Dockerfile matches "
        "docker/does_not_exist.*; add docker/does_not_exist.<os>.<vendor>.Dockerfile or fix 'dockerfile'"
    ]
    assert "getter says hi" not in found.stdout and "raw fd" not in found.stdout

    empty = ansible.module("discover_models", {"package_dir": str(mad_package), "tags": ["dummy", ""]})
    assert empty.failed and empty.data["option"] == "tags"
    assert empty.data["msg"].startswith("tags '': empty tag")  # the module names its option, not the CLI flag
