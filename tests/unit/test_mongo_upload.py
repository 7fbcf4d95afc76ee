"""madengine database without a server: settings and URI escaping, typing, unique keys, the upload loop (a fake
target), dry runs."""

from __future__ import annotations

import datetime
import json
import urllib.parse
from pathlib import Path
from typing import Any, Dict, List

import pytest

from ansible_collections.rocm.madengine.plugins.module_utils import mongo_upload, typed_csv
from ansible_collections.rocm.madengine.plugins.module_utils.errors import ConfigError, MadengineError

PASSWORD = "p@ss:w/rd%20+x"


def test_uri_escapes_credentials_and_redacts_them() -> None:
    settings = mongo_upload.MongoSettings.from_env(
        {"MONGO_HOST": "db", "MONGO_PORT": "27018", "MONGO_USER": "us@er", "MONGO_PASSWORD": PASSWORD}
    )
    uri = settings.uri()
    assert uri == f"mongodb://us%40er:{urllib.parse.quote_plus(PASSWORD)}@db:27018/admin"
    parsed = urllib.parse.urlsplit(uri)
    assert urllib.parse.unquote_plus(parsed.password or "") == PASSWORD
    assert parsed.hostname == "db" and parsed.port == 27018
    shown = settings.shown_uri()
    assert shown == "mongodb://us%40er:***@db:27018/admin"
    assert PASSWORD not in repr(settings) and "p@ss" not in shown
    text = f"failed for {uri} and {PASSWORD} and {urllib.parse.quote_plus(PASSWORD)}"
    assert PASSWORD not in settings.scrub(text) and urllib.parse.quote_plus(PASSWORD) not in settings.scrub(text)


def test_uri_defaults_and_options() -> None:
    assert mongo_upload.MongoSettings.from_env({}).uri() == "mongodb://localhost:27017"
    only_user = mongo_upload.MongoSettings.from_env({"MONGO_USER": "u"})
    assert only_user.uri() == "mongodb://localhost:27017"
    full = mongo_upload.MongoSettings.from_env(
        {
            "MONGO_USER": "u",
            "MONGO_PASSWORD": "p",
            "MONGO_AUTH_SOURCE": "perf",
            "MONGO_AUTH_MECHANISM": "SCRAM-SHA-256",
            "MONGO_TIMEOUT_MS": "250",
        }
    )
    assert full.uri() == "mongodb://u:p@localhost:27017/perf?authMechanism=SCRAM-SHA-256"
    assert full.timeout_ms == 250
    override = mongo_upload.MongoSettings.from_env({"MONGO_URI": "mongodb://a:secret@h:1/?tls=true"})
    assert override.uri() == "mongodb://a:secret@h:1/?tls=true"
    assert override.shown_uri() == "mongodb://a:***@h:1/?tls=true"
    assert override.scrub("auth failed for secret") == "auth failed for ***"


def test_password_file(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text(PASSWORD + "\n")
    settings = mongo_upload.MongoSettings.from_env({"MONGO_USER": "u", "MONGO_PASSWORD_FILE": str(secret)})
    assert settings.password == PASSWORD
    with pytest.raises(ConfigError, match="MONGO_PASSWORD_FILE"):
        mongo_upload.MongoSettings.from_env({"MONGO_PASSWORD_FILE": str(tmp_path / "missing")})


@pytest.mark.parametrize("name,value", [("MONGO_PORT", "x"), ("MONGO_TIMEOUT_MS", "-5")])
def test_bad_numbers_are_config_errors(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        mongo_upload.MongoSettings.from_env({name: value})


def test_csv_typing_like_pandas() -> None:
    text = (
        "model, n, perf ,flag,cfg,mixed,blank,na\n"
        'a,1,1.5,True,"{""x"": 1}",1,,NA\n'
        'b,,2,False,"[1, 2]",x,,\n'
        ",3,1e3,true,{broken,2,,\n"
        ",,,,,,,\n"
    )
    rows = typed_csv.parse(text)
    assert len(rows) == 3  # the all-empty row is dropped
    assert list(rows[0]) == ["model", "n", "perf", "flag", "cfg", "mixed", "blank", "na"]
    assert [r["n"] for r in rows] == [1, None, 3]
    assert [r["perf"] for r in rows] == [1.5, 2.0, 1000.0]
    assert [r["flag"] for r in rows] == [True, False, True]
    assert rows[0]["cfg"] == {"x": 1} and rows[1]["cfg"] == [1, 2] and rows[2]["cfg"] == "{broken"
    assert [r["mixed"] for r in rows] == ["1", "x", "2"]
    assert rows[0]["blank"] is None and rows[0]["na"] is None
    assert rows[2]["model"] is None


def test_format_by_extension_or_first_character(tmp_path: Path) -> None:
    as_json = tmp_path / "rows.txt"
    as_json.write_text(json.dumps([{"model": "a", "v": 1}]))
    assert mongo_upload.load_documents(str(as_json)) == [{"model": "a", "v": 1}]
    single = tmp_path / "one.json"
    single.write_text('{"model": "a"}')
    assert mongo_upload.load_documents(str(single)) == [{"model": "a"}]
    as_csv = tmp_path / "rows.dat"
    as_csv.write_text("model,v\na,2\n")
    assert mongo_upload.load_documents(str(as_csv)) == [{"model": "a", "v": 2}]
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    with pytest.raises(MadengineError, match="array of objects"):
        mongo_upload.load_documents(str(bad))
    with pytest.raises(MadengineError, match="no such file"):
        mongo_upload.load_documents(str(tmp_path / "none.csv"))


def test_unique_key_of_a_perf_csv_is_the_row_identity() -> None:
    docs = [{"model": "a", "run_id": "r", "machine_name": "h", "args": "", "metric": "m", "performance": 1}]
    assert mongo_upload.detect_unique_key(docs) == ["run_id", "model", "machine_name", "args", "metric"]
    docs[0]["repeat"] = 1
    assert mongo_upload.detect_unique_key(docs)[-1] == "repeat"


def test_unique_key_legacy_detection() -> None:
    assert mongo_upload.detect_unique_key([{"model": "a"}, {"model": "b"}]) == ["model"]
    assert mongo_upload.detect_unique_key([{"model": "a", "id": 1}, {"model": "a", "id": 2}]) == ["id"]
    same = [{"model": "a", "timestamp": 1}, {"model": "a", "timestamp": 1}]
    assert mongo_upload.detect_unique_key(same) == ["model", "timestamp"]
    assert mongo_upload.detect_unique_key([{"model": "a", "x": 1}, {"model": "a", "x": 2}]) == ["model"]


def test_explicit_unique_key_must_exist() -> None:
    docs = [{"model": "a", "host": "h"}]
    assert mongo_upload.check_unique_key(["model", " host"], docs) == ["model", "host"]
    with pytest.raises(ConfigError, match="--unique-key nope"):
        mongo_upload.check_unique_key(["model", "nope"], docs)
    with pytest.raises(ConfigError, match="empty"):
        mongo_upload.check_unique_key([""], docs)


def test_meta_fields_are_added_where_absent() -> None:
    now = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    docs: List[Dict[str, Any]] = [{"model": "a"}, {"model": "b", "created_date": "keep"}]
    mongo_upload.add_meta(docs, now)
    assert docs[0]["_meta_uploaded_at"] == now and docs[0]["created_date"] == "2026-01-02 03:04:05"
    assert docs[1]["created_date"] == "keep"
    update = mongo_upload.upsert_update({"model": "b", "created_date": "keep"}, now)
    assert update["$set"] == {"model": "b", "created_date": "keep"}
    assert update["$setOnInsert"] == {"_meta_uploaded_at": now}


class FakeTarget:
    """A collection in a dict, keyed like the server would; counts as bulk_write reports them."""

    def __init__(self) -> None:
        self.docs: Dict[str, Dict[str, Any]] = {}
        self.inserted: List[Dict[str, Any]] = []
        self.indexes: List[tuple] = []

    def upsert(self, ops):
        counts = {"nUpserted": 0, "nMatched": 0, "nModified": 0, "writeErrors": []}
        for flt, update in ops:
            key = json.dumps(flt, sort_keys=True)
            if key in self.docs:
                counts["nMatched"] += 1
                before = dict(self.docs[key])
                self.docs[key].update(update["$set"])
                counts["nModified"] += before != self.docs[key]
            else:
                self.docs[key] = {**update["$set"], **update.get("$setOnInsert", {})}
                counts["nUpserted"] += 1
        return counts

    def insert(self, docs):
        self.inserted.extend(docs)
        return {"nInserted": len(docs)}

    def create_index(self, keys, unique):
        self.indexes.append((tuple(keys), unique))
        return "idx"


def perf_file(tmp_path: Path, performance: str = "100") -> Path:
    path = tmp_path / "perf.csv"
    path.write_text(
        "model,args,machine_name,metric,performance,status,run_id\n"
        f"a,,h,m,{performance},SUCCESS,r1\n"
        "b,--x,h,m,7,SUCCESS,r1\n"
        "c,,h,,,FAILURE,r1\n"
    )
    return path


def test_second_upload_updates_instead_of_duplicating(tmp_path: Path) -> None:
    target = FakeTarget()
    first = mongo_upload.upload_file(str(perf_file(tmp_path)), "db", "c", batch_size=2, target=target)
    assert (first.inserted, first.updated, first.unchanged, first.batches) == (3, 0, 0, 2)
    assert first.ok and len(target.docs) == 3
    assert target.indexes == [(("run_id", "model", "machine_name", "args", "metric"), True)]
    again = mongo_upload.upload_file(str(perf_file(tmp_path)), "db", "c", target=target)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 3) and again.ok
    changed = mongo_upload.upload_file(str(perf_file(tmp_path, "150")), "db", "c", target=target)
    assert (changed.inserted, changed.updated, changed.unchanged) == (0, 1, 2)
    assert len(target.docs) == 3
    stored = [d for d in target.docs.values() if d["model"] == "a"][0]
    assert stored["performance"] == 150 and isinstance(stored["_meta_uploaded_at"], datetime.datetime)


def test_no_upsert_inserts_and_no_index_skips_it(tmp_path: Path) -> None:
    target = FakeTarget()
    result = mongo_upload.upload_file(str(perf_file(tmp_path)), "db", "c", upsert=False, index=False, target=target)
    assert result.inserted == 3 and len(target.inserted) == 3 and target.indexes == []


def test_dry_run_contacts_nothing(tmp_path: Path) -> None:
    class Refuses(FakeTarget):
        def upsert(self, ops):
            raise AssertionError("a dry run wrote")

    result = mongo_upload.upload_file(str(perf_file(tmp_path)), "db", "c", dry_run=True, target=Refuses())
    assert result.documents == 3 and result.inserted == 0 and result.keys[0] == "run_id"


def test_duplicate_keys_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "dupes.csv"
    path.write_text("model,v\na,1\na,2\n")
    result = mongo_upload.upload_file(str(path), "db", "c", unique_key=["model"], dry_run=True)
    assert any("share their unique key" in m for m in result.messages)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"batch_size": 0}, "--batch-size"),
        ({"database": "a.b"}, "--database"),
        ({"collection": "system.x"}, "--collection"),
    ],
)
def test_bad_options_are_config_errors(tmp_path: Path, kwargs: dict, match: str) -> None:
    args = {"database": "db", "collection": "c", **kwargs}
    with pytest.raises(ConfigError, match=match):
        mongo_upload.upload_file(str(perf_file(tmp_path)), target=FakeTarget(), dry_run=True, **args)


def test_empty_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("model,v\n")
    with pytest.raises(MadengineError, match="no rows"):
        mongo_upload.upload_file(str(path), "db", "c", target=FakeTarget())


def test_one_line_errors_hide_the_password() -> None:
    settings = mongo_upload.MongoSettings(user="u", password=PASSWORD)
    exc = RuntimeError(f"bad uri {settings.uri()} (configured timeouts: 5s), full error: {{'pw': '{PASSWORD}'}}")
    line = mongo_upload.one_line(exc, settings)
    assert PASSWORD not in line and urllib.parse.quote_plus(PASSWORD) not in line
    assert "configured timeouts" not in line and "\n" not in line
