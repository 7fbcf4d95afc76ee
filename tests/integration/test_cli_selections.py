"""Discovery through the real CLI: one model with several args, a printing getter, empty tags, card warnings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from clirun import madengine, manifest, perf_rows

pytestmark = pytest.mark.integration

IMAGE = "ci-dummy_dummy.ubuntu.cpu"


def test_one_model_with_two_args_runs_twice(mad_package: Path, docker_client) -> None:
    result = madengine(mad_package, "run", "--tags", "dummy:foo=1", "--tags", "dummy:foo=2,dummy:foo=1")
    assert result.rc == 0, result.output
    rows = perf_rows(mad_package)
    assert [(r["model"], r["args"], r["status"]) for r in rows] == [
        ("dummy", " --foo 1", "SUCCESS"),
        ("dummy", " --foo 2", "SUCCESS"),
    ]
    assert rows[0]["run_id"] == rows[1]["run_id"]
    data = manifest(mad_package)
    assert list(data["built_images"]) == [IMAGE, f"{IMAGE}#2"]
    assert data["built_images"][f"{IMAGE}#2"]["docker_image"] == IMAGE
    assert [m["args"] for m in data["built_models"].values()] == [" --foo 1", " --foo 2"]
    assert docker_client.containers.list(all=True, filters={"ancestor": IMAGE}) == []
    # each selection keeps its own run log
    first = (mad_package / "dummy_dummy.ubuntu.cpu.run.live.log").read_text()
    second = (mad_package / "dummy_dummy.ubuntu.cpu-2.run.live.log").read_text()
    assert "--foo 1" in first and "--foo 2" in second


def test_discover_json_lists_each_selection_and_only_json(mad_package: Path) -> None:
    getter = mad_package / "scripts" / "dummy3" / "get_models_json.py"
    getter.write_text(
        "import os\nprint('hello from the getter')\nos.write(1, b'raw fd output\\n')\n" + getter.read_text()
    )
    result = madengine(
        mad_package, "discover", "--tags", "dummy:batch-size=4", "--tags", "dummy:batch-size=8", "--json"
    )
    assert result.rc == 0, result.output
    models = json.loads(result.stdout)
    assert [(m["name"], m["args"]) for m in models] == [("dummy", " --batch-size 4"), ("dummy", " --batch-size 8")]
    assert "hello from the getter" in result.stderr and "raw fd output" in result.stderr


def test_discover_warns_about_cards_a_build_would_reject(mad_package: Path) -> None:
    cards = json.loads((mad_package / "models.json").read_text())
    cards.append({"name": "no_fields", "tags": ["x"]})
    (mad_package / "models.json").write_text(json.dumps(cards))
    result = madengine(mad_package, "discover", "--json")
    assert result.rc == 0, result.output
    assert "no_fields" in [m["name"] for m in json.loads(result.stdout)]
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [
        "warning: models.json: model card 'dummy_missing_dockerfile': no Dockerfile matches docker/does_not_exist.*; "
        "add docker/does_not_exist.<os>.<vendor>.Dockerfile or fix 'dockerfile'",
        "warning: models.json: model card 'no_fields' lacks 'dockerfile' and 'scripts'; it cannot be built or run "
        "until the card names a Dockerfile prefix and a script",
    ]


@pytest.mark.parametrize("command", ["discover", "build", "run"])
def test_empty_tag_is_a_usage_error(mad_package: Path, command: str) -> None:
    result = madengine(mad_package, command, "--tags", "dummy", "--tags", " ")
    assert result.rc == 4, result.output
    assert result.stderr.strip().splitlines() == [
        "error: --tags ' ': empty tag. give a model name or tag (e.g. --tags dummy, --tags all); "
        "'madengine discover' lists them"
    ]
    assert not (mad_package / "build_manifest.json").exists()


def test_unknown_tag_suggests_names(mad_package: Path) -> None:
    result = madengine(mad_package, "run", "--tags", "dumy_multi")
    assert result.rc == 1, result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: tag 'dumy_multi' selects no model. did you mean 'dummy_multi'")
