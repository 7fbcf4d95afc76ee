"""madengine database against the real MongoDB wire-protocol server of scripts/setup-mongo.sh (mongoeco, with
SCRAM-SHA-256 auth), uploading the perf.csv of a real run (Docker) of the fixture package; read back with pymongo."""

from __future__ import annotations

import datetime
import os
import urllib.parse
import uuid
from pathlib import Path
from typing import Dict, Iterator

import pytest
from clirun import REPO_ROOT, madengine, perf_rows

pytestmark = pytest.mark.integration

MONGO_HINT = "run `bash scripts/setup-mongo.sh` first"
MONGO_KEYS = (
    "MONGO_HOST",
    "MONGO_PORT",
    "MONGO_USER",
    "MONGO_PASSWORD",
    "MONGO_PASSWORD_FILE",
    "MONGO_AUTH_SOURCE",
    "MONGO_AUTH_MECHANISM",
    "MONGO_TIMEOUT_MS",
    "MONGO_URI",
)


@pytest.fixture(scope="module")
def mongo_env() -> Dict[str, str]:
    """The MONGO_* settings setup-mongo.sh wrote (every MONGO_* key set, so the caller's own do not leak in)."""
    env_file = Path(os.environ.get("MADENGINE_MONGO_DIR") or "/var/tmp/madengine-mongo") / "mongo.env"
    if not env_file.is_file():
        pytest.skip(f"{env_file} is missing: {MONGO_HINT}")
    env = {key: "" for key in MONGO_KEYS}
    for line in env_file.read_text(encoding="utf-8").splitlines():
        key, sep, value = line.partition("=")
        if sep and not key.startswith("#"):
            env[key.strip()] = value.strip()
    return env


@pytest.fixture(scope="module")
def mongo_client(mongo_env: Dict[str, str]) -> Iterator[object]:
    import pymongo

    password = Path(mongo_env["MONGO_PASSWORD_FILE"]).read_text(encoding="utf-8").strip()
    uri = (
        f"mongodb://{urllib.parse.quote_plus(mongo_env['MONGO_USER'])}:{urllib.parse.quote_plus(password)}"
        f"@{mongo_env['MONGO_HOST']}:{mongo_env['MONGO_PORT']}/?authSource={mongo_env['MONGO_AUTH_SOURCE']}"
        f"&authMechanism={mongo_env['MONGO_AUTH_MECHANISM']}&directConnection=true"
    )
    client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=5000)
    try:
        client.admin.command("ping")
    except pymongo.errors.PyMongoError as exc:
        pytest.fail(
            f"the server of {mongo_env['MONGO_HOST']}:{mongo_env['MONGO_PORT']} does not answer "
            f"({type(exc).__name__}): {MONGO_HINT}",
            pytrace=False,
        )
    yield client
    client.close()


@pytest.fixture
def database(mongo_client) -> Iterator[str]:
    name = f"madengine_test_{uuid.uuid4().hex[:10]}"
    yield name
    mongo_client.drop_database(name)


@pytest.fixture(scope="module")
def run_package(tmp_path_factory, infra) -> Path:
    """The fixture package after one real run with a failing model and a multiple_results model."""
    import shutil

    target = tmp_path_factory.mktemp("db") / "mad"
    shutil.copytree(REPO_ROOT / "tests" / "fixtures" / "mad", target, symlinks=True)
    result = madengine(target, "run", "--tags", "dummy,dummy_exit,multi", "--run-id", "dbrun")
    assert result.rc == 3, result.output
    return target


def upload(package: Path, env: Dict[str, str], *args: str):
    return madengine(package, "database", "--file", "perf.csv", *args, env=env)


def test_upload_reads_back_and_a_second_upload_updates(run_package, mongo_env, mongo_client, database) -> None:
    rows = perf_rows(run_package)
    first = upload(run_package, mongo_env, "--db", database, "-c", "perf")
    assert first.rc == 0, first.output
    collection = mongo_client[database]["perf"]
    assert collection.count_documents({}) == len(rows) == 6
    dummy = collection.find_one({"model": "dummy"})
    assert dummy["status"] == "SUCCESS" and dummy["run_id"] == "dbrun"
    assert isinstance(dummy["performance"], int) and str(dummy["performance"]) == rows[0]["performance"]
    assert isinstance(dummy["test_duration"], float)
    assert isinstance(dummy["_meta_uploaded_at"], datetime.datetime)
    assert len(dummy["created_date"]) == len("2026-01-01 00:00:00")
    failed = collection.find_one({"model": "dummy_exit"})
    assert failed["status"] == "FAILURE" and failed["failure_reason"] == "EXIT_CODE" and failed["exit_code"] == 3
    assert failed["performance"] == 10 and failed["gpu_architecture"] is None  # empty cells are null
    multi = collection.find_one({"model": "dummy_multi_2"})
    assert isinstance(multi["temperature"], int)
    indexes = {ix["name"]: ix for ix in collection.list_indexes()}
    assert indexes["madengine_unique_key"]["unique"] is True
    assert list(indexes["madengine_unique_key"]["key"])[:2] == ["run_id", "model"]
    uploaded_at = dummy["_meta_uploaded_at"]

    second = upload(run_package, mongo_env, "--db", database, "--collection", "perf")
    assert second.rc == 0, second.output
    assert collection.count_documents({}) == len(rows)
    numbers = [line for line in second.stdout.splitlines() if line.strip().startswith("│")][-1]
    cells = [c.strip() for c in numbers.strip("│ ").split("│")]
    documents, inserted, updated, unchanged, errors = (int(c) for c in cells[:5])
    assert (documents, inserted, errors) == (6, 0, 0) and updated + unchanged == 6
    assert collection.find_one({"model": "dummy"})["_meta_uploaded_at"] == uploaded_at


def test_wrong_password_is_one_line_without_the_password(run_package, mongo_env, mongo_client, database) -> None:
    secret = "not-it@:/%25x"
    env = {**mongo_env, "MONGO_PASSWORD": secret, "MONGO_PASSWORD_FILE": ""}
    result = upload(run_package, env, "--db", database, "-c", "perf")
    assert result.rc == 1, result.output
    assert secret not in result.output and urllib.parse.quote_plus(secret) not in result.output
    assert "not-it" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "Authentication failed" in lines[0]
    assert f"{mongo_env['MONGO_USER']}:***@" in lines[0]
    assert database not in mongo_client.list_database_names()


def test_dry_run_connects_to_nothing(run_package, mongo_env, mongo_client, database) -> None:
    env = {**mongo_env, "MONGO_PORT": "1", "MONGO_TIMEOUT_MS": "200"}
    result = upload(run_package, env, "--db", database, "-c", "perf", "--dry-run")
    assert result.rc == 0, result.output
    assert (
        "dry run: would upsert (key run_id, model, machine_name, args, docker_image, metric, repeat) 6 document(s)"
        in (result.stderr)
    )
    assert database not in mongo_client.list_database_names()
    down = upload(run_package, env, "--db", database, "-c", "perf")
    assert down.rc == 1 and "cannot connect" in down.stderr and "Traceback" not in down.output


def test_no_upsert_inserts_again_and_bad_key_exits_4(run_package, mongo_env, mongo_client, database) -> None:
    for _ in range(2):
        result = upload(run_package, mongo_env, "--db", database, "-c", "raw", "--no-upsert", "--no-index")
        assert result.rc == 0, result.output
    assert mongo_client[database]["raw"].count_documents({}) == 12
    assert [ix["name"] for ix in mongo_client[database]["raw"].list_indexes()] == ["_id_"]
    bad = upload(run_package, mongo_env, "--db", database, "-c", "raw", "-k", "model,nope")
    assert bad.rc == 4 and "--unique-key nope" in bad.stderr
