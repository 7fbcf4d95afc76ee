"""Bad input gets one clear line, the right exit code, and no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from clirun import madengine

pytestmark = pytest.mark.integration


def one_error_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


def test_malformed_models_json_names_the_file(mad_package: Path) -> None:
    (mad_package / "models.json").write_text('[{"name": "dummy",}]')
    result = madengine(mad_package, "discover")
    assert result.rc == 1
    line = one_error_line(result.stderr)
    assert "models.json" in line and "line 1" in line


def test_card_without_scripts_names_file_and_card(mad_package: Path) -> None:
    (mad_package / "scripts" / "dummy2" / "models.json").write_text('[{"name": "broken", "dockerfile": "x"}]')
    result = madengine(mad_package, "run", "--tags", "dummy")
    assert result.rc == 1
    line = one_error_line(result.stderr)
    assert "scripts/dummy2/models.json" in line and "'broken'" in line and "'scripts'" in line


def test_unknown_tag(mad_package: Path) -> None:
    result = madengine(mad_package, "run", "--tags", "no_such_model")
    assert result.rc == 1
    assert "no_such_model" in one_error_line(result.stderr)
    assert not (mad_package / "perf.csv").exists()


def test_ambiguous_tag_shows_both_readings(mad_package: Path) -> None:
    result = madengine(mad_package, "discover", "--tags", "dummy2:model1")
    assert result.rc == 1
    line = one_error_line(result.stderr)
    assert "ambiguous" in line and "[dummy2] with args '--model1'" in line and "[dummy2/model1]" in line


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["run", "--tags", "dummy", "-c", "{not json"], "--additional-context"),
        (["run", "--tags", "dummy", "-c", '{"partition": "gpu"}'], "belongs under 'slurm'"),
        (["run", "--tags", "dummy", "-c", '{"docker_gpu": "0"}'], "did you mean 'docker_gpus'"),
        (["run", "--tags", "dummy", "-c", '{"gpu_vendor": "INTEL"}'], "gpu_vendor"),
        (["run", "--tags", "dummy", "-f", "missing.json"], "missing.json"),
        (["run", "--tags", "dummy", "--timeout", "-5"], "--timeout"),
        (["run", "--tags", "dummy", "--run-id", "nightly 1"], "--run-id 'nightly 1'"),
        (["run", "--tags", "dummy", "--run-id", "../x"], "--run-id '../x'"),
        (["run"], "--tags"),
        (["run", "--manifest-file", "nope.json"], "nope.json"),
        (["run", "--bogus-option"], "--bogus-option"),
        (["build", "--tags", "dummy", "--use-image", "x", "--registry", "127.0.0.1:1"], "--use-image"),
    ],
)
def test_invalid_arguments_exit_4(mad_package: Path, args: list, needle: str) -> None:
    result = madengine(mad_package, *args)
    assert result.rc == 4, result.output
    assert needle in one_error_line(result.stderr)


def test_verbose_shows_the_traceback(mad_package: Path) -> None:
    (mad_package / "models.json").write_text("{}")
    result = madengine(mad_package, "discover", "--verbose")
    assert result.rc == 1
    assert "Traceback" in result.stderr


def test_discover_json(mad_package: Path) -> None:
    import json

    result = madengine(mad_package, "discover", "--tags", "dummy2/all", "--json")
    assert result.rc == 0, result.output
    models = json.loads(result.stdout)
    assert [m["name"] for m in models] == ["dummy2/model1", "dummy2/model2"]
    assert models[0]["scripts"] == "scripts/dummy2/run.sh"
