"""Bad input, one case a row: the exit code of the README's table, one line naming the file, option or key, and
never a traceback. Every case runs the real entry point (madengine.cli.app.main) in this process on its own copy
of the fixture MAD package; a subprocess per case would cost ~0.4 s of interpreter start-up each.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
import shutil
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import pytest

from madengine.cli.app import main

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
BUSYBOX = "madengine-test/busybox:latest"
Setup = Callable[[Path], None]


# --- setups: small edits of the package copy ------------------------------------------------------------------


def write(path: str, content: Union[str, bytes, Any]) -> Setup:
    """Write `content` (text, bytes, or anything JSON) to `path` in the package."""

    def apply(package: Path) -> None:
        target = package / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        elif isinstance(content, str):
            target.write_text(content, encoding="utf-8")
        else:
            target.write_text(json.dumps(content), encoding="utf-8")

    return apply


def remove(path: str) -> Setup:
    return lambda package: (package / path).unlink()


def copy(source: str, path: str) -> Setup:
    """Copy a file of this repository into the package."""
    return lambda package: shutil.copyfile(REPO_ROOT / source, package / path)


def mkdir(path: str) -> Setup:
    return lambda package: (package / path).mkdir(parents=True, exist_ok=True)


def card(name: str, **fields: Any) -> Dict[str, Any]:
    """A root model card that builds from the fixture's docker/dummy and runs scripts/dummy/run.sh."""
    return {"name": name, "dockerfile": "docker/dummy", "scripts": "scripts/dummy/run.sh", "tags": ["t"], **fields}


def add_cards(*cards: Any) -> Setup:
    """Append cards to the root models.json."""

    def apply(package: Path) -> None:
        path = package / "models.json"
        path.write_text(json.dumps(json.loads(path.read_text(encoding="utf-8")) + list(cards)), encoding="utf-8")

    return apply


def getter(source: str) -> Setup:
    """Replace scripts/dummy3/get_models_json.py."""
    return write("scripts/dummy3/get_models_json.py", source)


def manifest(*entries: Tuple[str, Dict[str, Any], Optional[Dict[str, Any]]], **top: Any) -> Setup:
    """build_manifest.json with (key, built_images record, built_models record or None) entries."""
    data: Dict[str, Any] = {"built_images": {}, "built_models": {}, "context": {}, **top}
    for key, image, model in entries:
        data["built_images"][key] = image
        if model is not None:
            data["built_models"][key] = model
    return write("build_manifest.json", data)


def image_record(model: str, image: str = BUSYBOX, **fields: Any) -> Dict[str, Any]:
    return {"model": model, "docker_image": image, "dockerfile": "docker/dummy.ubuntu.cpu.Dockerfile", **fields}


def model_record(name: str, **fields: Any) -> Dict[str, Any]:
    return {"name": name, "scripts": "scripts/dummy/run.sh", "args": "", "n_gpus": "1", "tags": [], **fields}


NO_GROUP_INVENTORY = "all:\n  hosts:\n    localhost:\n      ansible_connection: local\n"
GPU_ONLY_INVENTORY = "madengine_gpu:\n  hosts:\n    localhost:\n      ansible_connection: local\n"
LOCAL_INVENTORY = "inventories/local/hosts.yml"
RUN = ("run", "--tags", "dummy")
RUN_CPU = ("run", "-c", '{"gpu_vendor": "CPU"}', "--tags")
RUN_MANIFEST = ("run", "--manifest-file", "build_manifest.json")


@dataclass
class Result:
    rc: Any
    stdout: str
    stderr: str


@dataclass(frozen=True)
class Case:
    id: str
    argv: Sequence[str]
    rc: int
    line: Optional[str]  # regex for the one error line (exit != 0) or warning line (exit 0); None: no diagnostic
    setup: Sequence[Setup] = ()
    env: Dict[str, str] = field(default_factory=dict)
    rows: Sequence[str] = ()  # models that must each end as a perf.csv row
    docker: bool = False  # needs the Docker engine and the base images of setup-infra.sh
    check: Optional[Callable[[Result], None]] = None


def json_with_two_dummy_selections(result: Result) -> None:
    models = json.loads(result.stdout)
    assert [(m["name"], m["args"].strip()) for m in models] == [
        ("dummy", "--batch-size 4"),
        ("dummy", "--batch-size 8"),
    ]


SECRET = "pa55-not-for-logs"


def secret_not_shown(result: Result) -> None:
    assert SECRET not in result.stdout + result.stderr


def stdout_is_json(result: Result) -> None:
    assert [m["name"] for m in json.loads(result.stdout)] == ["dummy3/model3"]


NOISY_GETTER = """
from madengine.utils.discover_models import CustomModel
print("loading models...")
def list_models():
    print("listing")
    return [CustomModel(name="model3", dockerfile="docker/dummy", scripts="run.sh", tags=["t"])]
"""

CASES: Tuple[Case, ...] = (
    # --- models.json ------------------------------------------------------------------------------------------
    Case("models-json-missing", ("discover",), 1, r"models\.json: not found", [remove("models.json")]),
    Case(
        "models-json-not-json", ("discover",), 1, r"models\.json: invalid JSON at line 1", [write("models.json", "[{")]
    ),
    Case(
        "models-json-empty",
        ("discover",),
        1,
        r"models\.json: invalid JSON at line 1 column 1",
        [write("models.json", "")],
    ),
    Case("models-json-object", ("discover",), 1, r"models\.json: must hold a JSON array", [write("models.json", {})]),
    Case(
        "models-json-binary", ("discover",), 1, r"models\.json: cannot read", [write("models.json", b"\xff\xfe\x00[")]
    ),
    Case("models-json-dir", ("discover",), 1, r"models\.json", [remove("models.json"), mkdir("models.json")]),
    Case("card-not-object", ("discover",), 1, r"models\.json: entry 0 must be an object", [write("models.json", [1])]),
    Case(
        "card-no-name",
        ("discover",),
        1,
        r"models\.json: entry 1 has no 'name'",
        [write("models.json", [card("a"), {"tags": []}])],
    ),
    Case("card-tags-number", ("discover",), 1, r"models\.json: model card 'x': 'tags'", [add_cards(card("x", tags=3))]),
    Case(
        "card-args-list",
        ("discover",),
        1,
        r"models\.json: model card 'x': 'args'",
        [add_cards(card("x", args=["--a"]))],
    ),
    Case("card-timeout-text", ("discover",), 1, r"model card 'x': 'timeout'", [add_cards(card("x", timeout="soon"))]),
    Case("card-duplicate", ("discover",), 1, r"model name 'dummy' is defined twice", [add_cards(card("dummy"))]),
    Case(
        "scoped-card-no-dockerfile",
        ("discover",),
        1,
        r"scripts/dummy2/models\.json: model card 'm' lacks 'dockerfile'",
        [write("scripts/dummy2/models.json", [{"name": "m", "scripts": "run.sh"}])],
    ),
    Case(
        "scoped-json-bad",
        ("discover",),
        1,
        r"scripts/dummy2/models\.json: invalid JSON",
        [write("scripts/dummy2/models.json", "[}")],
    ),
    Case(
        "scoped-both-kinds",
        ("discover",),
        1,
        r"scripts/dummy3: has both models\.json and get_models_json\.py",
        [write("scripts/dummy3/models.json", [])],
    ),
    Case(
        "card-multiple-results-list",
        ("discover",),
        1,
        r"models\.json: model card 'x': 'multiple_results' must be a string",
        [add_cards(card("x", multiple_results=["a.csv"]))],
    ),
    # --- model cards that fail the build (rows are still written) --------------------------------------------
    Case(
        "card-dockerfile-no-file",
        RUN_CPU + ("dummy_missing_dockerfile",),
        2,
        r"no Dockerfile matches docker/does_not_exist",
        rows=["dummy_missing_dockerfile"],
    ),
    Case(
        "card-dockerfile-no-header",
        RUN_CPU + ("dummy_noheader",),
        2,
        r"docker/dummy_noheader\.ubuntu\.cpu\.Dockerfile has no '# CONTEXT",
        rows=["dummy_noheader"],
    ),
    Case(
        "card-dockerfile-bad-header",
        RUN_CPU + ("x",),
        2,
        r"docker/x\.ubuntu\.cpu\.Dockerfile: the CONTEXT header is not a Python dict",
        [
            write("docker/x.ubuntu.cpu.Dockerfile", "# CONTEXT {'gpu_vendor': \nFROM scratch\n"),
            add_cards(card("x", dockerfile="docker/x")),
        ],
        rows=["x"],
    ),
    Case(
        "card-vendor-mismatch",
        RUN_CPU + ("dummy_amd_only",),
        2,
        r"model 'dummy_amd_only': no Dockerfile's CONTEXT matches",
        rows=["dummy_amd_only"],
    ),
    Case(
        "card-cred-unknown",
        RUN_CPU + ("x",),
        2,
        r"credential 'NOPE' not found in credential\.json",
        [add_cards(card("x", cred="NOPE"))],
        rows=["x"],
    ),
    Case(
        "card-cred-not-object",
        RUN_CPU + ("x",),
        2,
        r"credential\.json entry 'MAD_X' must be an object, got str",
        [add_cards(card("x", cred="MAD_X")), write("credential.json", {"MAD_X": "user:pass"})],
        rows=["x"],
    ),
    Case(
        "card-context-not-dir",
        RUN_CPU + ("x",),
        2,
        r"build context nowhere \(its 'dockercontext' 'nowhere'\) is not a directory",
        [add_cards(card("x", dockercontext="nowhere"))],
        rows=["x"],
    ),
    # --- get_models_json.py -----------------------------------------------------------------------------------
    Case(
        "getter-syntax",
        ("discover",),
        1,
        r"scripts/dummy3/get_models_json\.py: failed to execute: SyntaxError",
        [getter("def list_models(:\n")],
    ),
    Case(
        "getter-raises-on-import",
        ("discover",),
        1,
        r"get_models_json\.py: failed to execute: RuntimeError: no cluster",
        [getter("raise RuntimeError('no cluster')\n")],
    ),
    Case(
        "getter-missing-import",
        ("discover",),
        1,
        r"get_models_json\.py: failed to execute: ModuleNotFoundError",
        [getter("import not_a_module_xyz\n")],
    ),
    Case(
        "getter-no-list-models",
        ("discover",),
        1,
        r"get_models_json\.py: no list_models\(\) function",
        [getter("x = 1\n")],
    ),
    Case(
        "getter-list-models-raises",
        ("discover",),
        1,
        r"get_models_json\.py: list_models\(\) failed: KeyError",
        [getter("def list_models():\n    return {}['x']\n")],
    ),
    Case(
        "getter-returns-none",
        ("discover",),
        1,
        r"get_models_json\.py: list_models\(\)",
        [getter("def list_models():\n    return None\n")],
    ),
    Case(
        "getter-item-dict",
        ("discover",),
        1,
        r"get_models_json\.py: list_models\(\) item 0 is a dict",
        [getter("def list_models():\n    return [{'name': 'a'}]\n")],
    ),
    Case(
        "getter-item-no-name",
        ("discover",),
        1,
        r"get_models_json\.py: list_models\(\) item 0 has no name",
        [
            getter(
                "from madengine.utils.discover_models import CustomModel\n"
                "def list_models():\n    return [CustomModel(name='')]\n"
            )
        ],
    ),
    # --- tags -------------------------------------------------------------------------------------------------
    Case("tag-unknown", ("run", "--tags", "nosuch"), 1, r"tag 'nosuch' selects no model"),
    Case("tag-unknown-scoped", ("discover", "--tags", "dummy2/nosuch"), 1, r"tag 'dummy2/nosuch' selects no model"),
    Case("tag-unknown-build", ("build", "--tags", "dummy,nosuch"), 1, r"tag 'nosuch' selects no model"),
    Case("tag-dir-only", ("discover", "--tags", "dummy2/"), 1, r"tag 'dummy2/' selects no model"),
    Case("tag-ambiguous", ("discover", "--tags", "dummy2:model1"), 1, r"tag 'dummy2:model1' is ambiguous"),
    # --- additional context -----------------------------------------------------------------------------------
    Case("ctx-not-json", RUN + ("-c", "{gpu_vendor: AMD"), 4, r"--additional-context: not valid JSON"),
    Case("ctx-list", RUN + ("-c", "[1]"), 4, r"--additional-context: must be an object, got list"),
    Case(
        "ctx-misplaced",
        RUN + ("-c", '{"partition": "gpu"}'),
        4,
        r"key 'partition' is misplaced: it belongs under 'slurm'",
    ),
    Case(
        "ctx-typo",
        RUN + ("-c", '{"docker_env_var": {}}'),
        4,
        r"key 'docker_env_var' is unknown; did you mean 'docker_env_vars'",
    ),
    Case("ctx-unknown-object", RUN + ("-c", '{"frobnicate": {"a": 1}}'), 4, r"key 'frobnicate' is unknown"),
    Case("ctx-vendor", RUN + ("-c", '{"gpu_vendor": "INTEL"}'), 4, r"key 'gpu_vendor': must be one of"),
    Case("ctx-guest-os", RUN + ("-c", '{"guest_os": "WINDOWS"}'), 4, r"key 'guest_os': must be one of"),
    Case(
        "ctx-env-name",
        RUN + ("-c", '{"docker_env_vars": {"1X": "a"}}'),
        4,
        r"key 'docker_env_vars': '1X' is not a valid variable name",
    ),
    Case(
        "ctx-env-nested",
        RUN + ("-c", '{"docker_env_vars": {"X": {"a": 1}}}'),
        4,
        r"key 'docker_env_vars\.X': must be a scalar",
    ),
    Case("ctx-mount-relative", RUN + ("-c", '{"docker_mounts": {"data": "/tmp"}}'), 4, r"key 'docker_mounts\.data'"),
    Case(
        "ctx-distributed-key", RUN + ("-c", '{"distributed": {"nodes": 2}}'), 4, r"key 'distributed\.nodes' is unknown"
    ),
    Case("ctx-slurm-key", RUN + ("-c", '{"slurm": {"partitions": "gpu"}}'), 4, r"key 'slurm\.partitions' is unknown"),
    Case(
        "ctx-slurm-time", RUN + ("-c", '{"slurm": {"time": "forever"}}'), 4, r"key 'slurm\.time': must be a Slurm time"
    ),
    Case("ctx-docker-gpus", RUN + ("-c", '{"docker_gpus": "0-"}'), 4, r"invalid docker_gpus value '0-'"),
    Case(
        "ctx-docker-gpus-build",
        ("build", "--tags", "dummy", "-c", '{"docker_gpus": "2-1"}'),
        4,
        r"invalid docker_gpus value '2-1': range '2-1' runs backwards",
    ),
    Case("ctx-ngpus", RUN + ("-c", '{"n_gpus": "many"}'), 4, r"key 'n_gpus': must be a whole number"),
    Case("ctx-rocenv", RUN + ("-c", '{"rocenv_mode": "medium"}'), 4, r"key 'rocenv_mode'"),
    Case("ctx-deploy", RUN + ("-c", '{"deploy": "nomad"}'), 4, r"key 'deploy'"),
    Case(
        "ctx-not-supported",
        RUN + ("-c", '{"tools": [{"name": "rpd"}]}'),
        4,
        r"key 'tools': profiling tools are not supported",
    ),
    Case("ctx-file-missing", RUN + ("-f", "ctx.json"), 4, r"--additional-context-file ctx\.json: file not found"),
    Case(
        "ctx-file-bad",
        RUN + ("-f", "ctx.json"),
        4,
        r"--additional-context-file ctx\.json: invalid JSON at line 2",
        [write("ctx.json", '{\n  "a": }')],
    ),
    Case(
        "ctx-file-list",
        RUN + ("-f", "ctx.json"),
        4,
        r"--additional-context-file ctx\.json: must hold a JSON object",
        [write("ctx.json", [])],
    ),
    Case("ctx-file-dir", RUN + ("-f", "ctxdir"), 4, r"--additional-context-file ctxdir", [mkdir("ctxdir")]),
    Case(
        "ctx-file-bad-key",
        RUN + ("-f", "ctx.json"),
        4,
        r"--additional-context-file ctx\.json: additional context key 'gpu_vendor'",
        [write("ctx.json", {"gpu_vendor": 1})],
    ),
    # --- data.json: data providers are not implemented, so nothing reads it; a model with data runs, with a warning
    Case(
        "data-json-ignored",
        RUN_MANIFEST + ("-c", '{"gpu_vendor": "CPU"}', "--skip-model-run"),
        0,
        r"x: data providers are not supported yet",
        [write("data.json", "{"), manifest(("x", image_record("x"), model_record("x", data="x_data")))],
        rows=["x"],
        docker=True,
    ),
    Case(
        "ctx-data",
        RUN + ("-c", '{"data": {"x": {"local": {"path": "/tmp"}}}}'),
        4,
        r"key 'data': data providers are not supported",
    ),
    # --- credential.json --------------------------------------------------------------------------------------
    Case(
        "cred-not-json",
        ("build", "--tags", "dummy"),
        4,
        r"credential\.json: invalid JSON",
        [write("credential.json", "{")],
    ),
    Case(
        "cred-list",
        ("build", "--tags", "dummy"),
        4,
        r"credential\.json: must hold a JSON object",
        [write("credential.json", [])],
    ),
    Case(
        "cred-no-password",
        ("build", "--tags", "dummy", "--registry", "127.0.0.1:1"),
        4,
        r"credential\.json entry for registry '127\.0\.0\.1:1': needs both",
        [write("credential.json", {"127.0.0.1:1": {"username": "u"}})],
    ),
    Case(
        "cred-dockerhub-no-repo",
        ("build", "--tags", "dummy", "--registry", "docker.io"),
        4,
        r"--registry docker\.io: Docker Hub needs a repository",
    ),
    Case(
        "cred-entry-text",
        ("build", "--tags", "dummy", "--registry", "127.0.0.1:1"),
        4,
        r"credential\.json entry '127\.0\.0\.1:1': must be an object, got str",
        [write("credential.json", {"127.0.0.1:1": "user:password"})],
    ),
    Case(
        "cred-env-dockerhub-no-repo",
        ("build", "--tags", "dummy", "--registry", "docker.io"),
        4,
        r"--registry docker\.io: Docker Hub needs a repository.*MAD_DOCKERHUB_REPO",
        env={"MAD_DOCKERHUB_USER": "someone", "MAD_DOCKERHUB_PASSWORD": SECRET},
        check=secret_not_shown,
    ),
    # --- build manifests --------------------------------------------------------------------------------------
    Case("manifest-missing", RUN_MANIFEST, 4, r"--manifest-file \./build_manifest\.json: file not found"),
    Case(
        "manifest-not-json",
        RUN_MANIFEST,
        4,
        r"--manifest-file \./build_manifest\.json: invalid JSON",
        [write("build_manifest.json", "{]")],
    ),
    Case(
        "manifest-list",
        RUN_MANIFEST,
        4,
        r"--manifest-file \./build_manifest\.json: must hold a JSON object",
        [write("build_manifest.json", [])],
    ),
    Case(
        "manifest-no-images",
        RUN_MANIFEST,
        4,
        r"--manifest-file \./build_manifest\.json: missing or invalid built_images",
        [write("build_manifest.json", {"built_models": {}})],
    ),
    Case(
        "manifest-record-text",
        RUN_MANIFEST,
        4,
        r"--manifest-file \./build_manifest\.json: built_images\['x'\] must be a JSON object",
        [write("build_manifest.json", {"built_images": {"x": "img"}, "built_models": {}})],
    ),
    Case(
        "manifest-deploy-text",
        RUN_MANIFEST,
        4,
        r"--manifest-file \./build_manifest\.json: 'deployment_config' must be a JSON object",
        [manifest(("x", image_record("x"), model_record("x")), deployment_config="slurm")],
    ),
    Case(
        "manifest-model-record-text",
        RUN_MANIFEST,
        4,
        r"--manifest-file \./build_manifest\.json: built_models\['x'\] must be a JSON object",
        [manifest(("x", image_record("x"), "x"))],
    ),
    Case(
        "manifest-slurm-bad",
        RUN_MANIFEST,
        4,
        r"build_manifest\.json: deployment_config: .*key 'slurm\.nodes': must be a whole number",
        [
            manifest(
                ("x", image_record("x"), model_record("x")),
                deployment_config={"target": "slurm", "slurm": {"nodes": "two"}},
            )
        ],
    ),
    Case(
        "manifest-no-model-record",
        RUN_MANIFEST,
        3,
        r"manifest entry 'x' has no built_models record",
        [manifest(("x", image_record("x"), None))],
        rows=["x"],
    ),
    Case(
        "manifest-image-missing",
        RUN_MANIFEST,
        3,
        r"image ci-nosuch_image not found on this host",
        [manifest(("x", image_record("x", "ci-nosuch_image"), model_record("x")))],
        rows=["x"],
        docker=True,
    ),
    Case(
        "manifest-vendor",
        RUN_MANIFEST + ("-c", '{"gpu_vendor": "CPU"}'),
        3,
        r"built for NVIDIA GPUs but this host is CPU",
        [manifest(("x", image_record("x", gpu_vendor="NVIDIA"), model_record("x")))],
        rows=["x"],
    ),
    Case(
        "manifest-scripts-missing",
        RUN_MANIFEST + ("-c", '{"gpu_vendor": "CPU"}'),
        3,
        r"script directory scripts/gone not found",
        [manifest(("x", image_record("x"), model_record("x", scripts="scripts/gone/run.sh")))],
        rows=["x"],
        docker=True,
    ),
    Case(
        "manifest-timeout-text",
        RUN_MANIFEST + ("-c", '{"gpu_vendor": "CPU"}'),
        3,
        r"model 'x': timeout 'soon' is not a whole number",
        [manifest(("x", image_record("x"), model_record("x", timeout="soon")))],
        rows=["x"],
        docker=True,
    ),
    Case(
        "manifest-two-bad",
        RUN_MANIFEST + ("-c", '{"gpu_vendor": "CPU"}'),
        3,
        r"manifest entry 'y' has no built_models record",
        [manifest(("x", image_record("x", gpu_vendor="AMD"), model_record("x")), ("y", image_record("y"), None))],
        rows=["x", "y"],
    ),
    Case("generate-manifest-missing", ("generate", "slurm", "-m", "gone.json"), 4, r"gone\.json: file not found"),
    # --- batch manifests and --use-image ----------------------------------------------------------------------
    Case(
        "batch-missing", ("build", "--batch-manifest", "batch.json"), 4, r"--batch-manifest batch\.json: file not found"
    ),
    Case(
        "batch-no-name",
        ("build", "--batch-manifest", "batch.json"),
        4,
        r"--batch-manifest batch\.json: entry 0 has no 'model_name'",
        [write("batch.json", [{"build_new": True}])],
    ),
    Case(
        "batch-unknown-key",
        ("build", "--batch-manifest", "batch.json"),
        4,
        r"entry 0 \('dummy'\) has unknown key\(s\) buildnew",
        [write("batch.json", [{"model_name": "dummy", "buildnew": True}])],
    ),
    Case(
        "batch-build-new-text",
        ("build", "--batch-manifest", "batch.json"),
        4,
        r"entry 0 \('dummy'\): build_new must be true or false",
        [write("batch.json", [{"model_name": "dummy", "build_new": "yes"}])],
    ),
    Case(
        "batch-and-tags",
        ("build", "--batch-manifest", "batch.json", "--tags", "dummy"),
        4,
        r"--batch-manifest and --tags",
        [write("batch.json", [{"model_name": "dummy", "build_new": True}])],
    ),
    Case(
        "use-image-auto",
        ("build", "--tags", "dummy", "--use-image", "auto"),
        4,
        r"--use-image auto: no selected model has env_vars\.DOCKER_IMAGE_NAME",
    ),
    Case(
        "use-image-registry",
        ("build", "--tags", "dummy", "--use-image", "x", "--registry", "r:5"),
        4,
        r"--use-image and --registry",
    ),
    # --- inventories (--inventory) ----------------------------------------------------------------------------
    Case("inventory-missing", RUN + ("--inventory", "hosts.yml"), 4, r"--inventory hosts\.yml: not found"),
    Case(
        "inventory-no-gpu-group",
        RUN_MANIFEST + ("--inventory", "hosts.yml"),
        4,
        r"--inventory hosts\.yml: no hosts in group 'madengine_gpu'",
        [write("hosts.yml", NO_GROUP_INVENTORY)],
    ),
    Case(
        "inventory-no-tags",
        ("run", "--inventory", "hosts.yml"),
        4,
        r"nothing to run.*--tags",
        [write("hosts.yml", NO_GROUP_INVENTORY)],
    ),
    Case(
        "inventory-no-build-group",
        ("build", "--tags", "dummy", "--inventory", "hosts.yml"),
        4,
        r"--inventory hosts\.yml: no hosts in group 'madengine_build'",
        [write("hosts.yml", GPU_ONLY_INVENTORY)],
    ),
    Case(
        "inventory-unparsable",
        RUN + ("--inventory", "hosts.yml"),
        4,
        r"--inventory hosts\.yml: ansible cannot read it: .*YAML",
        [write("hosts.yml", "all: [\n")],
    ),
    Case(
        "inventory-limit-matches-nothing",
        RUN + ("--inventory", "hosts.yml", "--limit", "gpu-node-*"),
        4,
        r"no hosts in group 'madengine_build' matching --limit gpu-node-\*",
        [copy(LOCAL_INVENTORY, "hosts.yml")],
    ),
    Case(
        "inventory-ini-broken",
        RUN + ("--inventory", "hosts.ini"),
        4,
        r"--inventory hosts\.ini: ansible cannot read it: Failed to parse inventory with 'ini' plugin",
        [write("hosts.ini", "[madengine_gpu\nlocalhost\n")],
    ),
    Case(
        "inventory-limit-malformed",
        RUN + ("--inventory", "hosts.yml", "--limit", "~("),
        4,
        r"--limit ~\(: Invalid host list pattern",
        [copy(LOCAL_INVENTORY, "hosts.yml")],
    ),
    # --- command-line options ---------------------------------------------------------------------------------
    Case("opt-unknown", ("run", "--tagz", "dummy"), 4, r"No such option '--tagz'"),
    Case("opt-command", ("rnu",), 4, r"No such command 'rnu'"),
    Case("opt-timeout-negative", RUN + ("--timeout", "-5"), 4, r"--timeout -5: must be"),
    Case("opt-timeout-text", RUN + ("--timeout", "soon"), 4, r"Invalid value for '--timeout': 'soon'"),
    Case("opt-run-id", RUN + ("--run-id", "a b"), 4, r"--run-id 'a b' is not allowed"),
    Case("opt-run-id-path", RUN + ("--run-id", "../x"), 4, r"--run-id '\.\./x' is not allowed"),
    Case("opt-nothing-to-run", ("run",), 4, r"nothing to run.*--tags"),
    Case("opt-registry-empty", ("build", "--tags", "dummy", "--registry", ""), 4, r"--registry: empty value"),
    Case("opt-missing-value", ("run", "--tags"), 4, r"Option '--tags' requires an argument"),
    Case("opt-build-no-tags", ("build",), 4, r"no models selected\. pass --tags"),
    Case(
        "opt-summary-dir-missing",
        RUN + ("--summary-output", "no/such/dir/s.json"),
        4,
        r"--summary-output no/such/dir/s\.json: directory .*no/such/dir does not exist",
    ),
    Case(
        "inventory-unknown-tag",
        ("run", "--tags", "nosuch", "--inventory", "hosts.yml"),
        1,
        r"tag 'nosuch' selects no model",
        [copy(LOCAL_INVENTORY, "hosts.yml")],
    ),
    Case(
        "manifest-no-images",
        RUN_MANIFEST,
        4,
        r"--manifest-file build_manifest\.json: lists no images, nothing to run",
        [manifest()],
    ),
    # --- discovery (issue 8 part 5) ------------------------------------------------------------------------------
    Case("tag-empty", ("discover", "--tags", ""), 4, r"--tags '': empty tag"),
    Case("tag-only-commas", ("run", "--tags", ","), 4, r"--tags ',': empty tag"),
    Case("tag-did-you-mean", ("discover", "--tags", "dumy"), 1, r"tag 'dumy' selects no model\. did you mean 'dummy'"),
    Case(
        "tag-same-model-two-args",
        ("discover", "--json", "--tags", "dummy:batch-size=4", "--tags", "dummy:batch-size=8"),
        0,
        None,
        check=json_with_two_dummy_selections,
    ),
    Case(
        "getter-prints",
        ("discover", "--json", "--tags", "dummy3/model3"),
        0,
        None,
        [getter(NOISY_GETTER)],
        check=stdout_is_json,
    ),
    Case(
        "card-no-dockerfile-warns",
        ("discover",),
        0,
        r"models\.json: model card 'x' lacks 'dockerfile'",
        [add_cards({"name": "x", "scripts": "scripts/dummy/run.sh"})],
    ),
    Case(
        "card-no-scripts-warns",
        ("discover",),
        0,
        r"models\.json: model card 'x' lacks 'scripts'",
        [add_cards({"name": "x", "dockerfile": "docker/dummy"})],
    ),
    Case(
        "card-prefix-no-file-warns",
        ("discover", "--tags", "x"),
        0,
        r"models\.json: model card 'x': no Dockerfile matches docker/nothing_here\.\*",
        [add_cards(card("x", dockerfile="docker/nothing_here"))],
    ),
)


def invoke(package: Path, argv: Sequence[str], env: Dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Result:
    """madengine.cli.app.main(argv) in `package`: its exit status and what it printed."""
    monkeypatch.chdir(package)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    out, err = io.StringIO(), io.StringIO()
    rc: Any = None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(argv))
        except SystemExit as exc:
            rc = exc.code
        except Exception:  # escaping main() is what a user sees as a traceback
            traceback.print_exc()
    return Result(rc, out.getvalue(), err.getvalue())


def perf_models(package: Path) -> List[str]:
    path = package / "perf.csv"
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        return sorted(row["model"] for row in csv.DictReader(handle))


@pytest.mark.parametrize("case", [pytest.param(case, id=case.id) for case in CASES])
def test_bad_input(
    case: Case, mad_package: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    if case.docker:
        request.getfixturevalue("infra")
    for step in case.setup:
        step(mad_package)
    result = invoke(mad_package, case.argv, case.env, monkeypatch)
    shown = f"rc={result.rc}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    assert "Traceback" not in result.stdout + result.stderr, shown
    assert result.rc == case.rc, shown
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    matching = [line for line in lines if case.line and re.search(case.line, line)]
    if case.rc in (1, 4):
        assert len(errors) == 1, shown
        assert case.line and re.search(case.line, errors[0]), shown
        assert all(line.startswith(("error:", "warning:")) for line in lines), shown
    elif case.rc in (2, 3):
        assert not errors, shown
        assert len(matching) == 1, shown
    else:
        assert not errors, shown
        assert len(matching) == (1 if case.line else 0), shown
    assert perf_models(mad_package) == sorted(case.rows), shown
    if case.check:
        case.check(result)
