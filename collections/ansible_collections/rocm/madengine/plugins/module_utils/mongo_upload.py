"""Uploading perf.csv (or a JSON file of rows) to MongoDB: connection settings from MONGO_*, documents, unique
keys, upserts in batches. Only MongoTarget talks to pymongo (imported when it connects); the rest is plain data."""

from __future__ import annotations

import datetime
import json
import os
import re
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Protocol, Sequence, Tuple

from . import typed_csv
from .errors import ConfigError, MadengineError

DEFAULT_BATCH_SIZE = 1000
# What identifies one perf.csv row across uploads: a second upload of the same file updates these documents.
PERF_ROW_KEY = ("run_id", "model", "machine_name", "args", "docker_image", "metric", "repeat")
# The original's auto-detection: the first of these whose (first 100) values are all distinct.
LEGACY_KEY_CANDIDATES = ("model", "name", "id", "timestamp", "date", "pipeline")
META_UPLOADED_AT = "_meta_uploaded_at"
META_CREATED_DATE = "created_date"
INDEX_NAME = "madengine_unique_key"


class UploadError(MadengineError):
    """The server could not be reached, refused the credentials or the writes (exit 1)."""


@dataclass(frozen=True)
class MongoSettings:
    host: str = "localhost"
    port: int = 27017
    user: str = ""
    password: str = field(default="", repr=False)
    auth_source: str = "admin"
    auth_mechanism: str = ""
    timeout_ms: int = 5000
    uri_override: str = field(default="", repr=False)

    @classmethod
    def from_env(cls, env: Optional[Mapping[str, str]] = None) -> MongoSettings:
        """MONGO_HOST, MONGO_PORT, MONGO_USER, MONGO_PASSWORD (or MONGO_PASSWORD_FILE), MONGO_AUTH_SOURCE,
        MONGO_AUTH_MECHANISM, MONGO_TIMEOUT_MS; MONGO_URI replaces all of the connection ones."""
        env = os.environ if env is None else env
        password = env.get("MONGO_PASSWORD", "")
        password_file = env.get("MONGO_PASSWORD_FILE", "")
        if not password and password_file:
            try:
                with open(password_file, encoding="utf-8") as handle:
                    password = handle.read().strip()
            except OSError as exc:
                raise ConfigError(
                    f"MONGO_PASSWORD_FILE {password_file}: {exc.strerror}", hint="point it at a readable file"
                ) from None
        uri = env.get("MONGO_URI", "")
        if uri and not password:  # known, so that it can be scrubbed from messages
            try:
                password = urllib.parse.unquote_plus(urllib.parse.urlsplit(uri).password or "")
            except ValueError:
                password = ""
        return cls(
            host=env.get("MONGO_HOST") or "localhost",
            port=_int_env(env, "MONGO_PORT", 27017),
            user=env.get("MONGO_USER", ""),
            password=password,
            auth_source=env.get("MONGO_AUTH_SOURCE") or "admin",
            auth_mechanism=env.get("MONGO_AUTH_MECHANISM", ""),
            timeout_ms=_int_env(env, "MONGO_TIMEOUT_MS", 5000),
            uri_override=uri,
        )

    @property
    def authenticated(self) -> bool:
        return bool(self.user and self.password)

    def uri(self) -> str:
        """mongodb://user:pass@host:port/<auth_source> with both credentials (escaped), else mongodb://host:port."""
        if self.uri_override:
            return self.uri_override
        host = f"[{self.host}]" if ":" in self.host and not self.host.startswith("[") else self.host
        if not self.authenticated:
            return f"mongodb://{host}:{self.port}"
        creds = f"{urllib.parse.quote_plus(self.user)}:{urllib.parse.quote_plus(self.password)}"
        query = f"?authMechanism={urllib.parse.quote_plus(self.auth_mechanism)}" if self.auth_mechanism else ""
        return f"mongodb://{creds}@{host}:{self.port}/{urllib.parse.quote(self.auth_source, safe='')}{query}"

    def shown_uri(self) -> str:
        """The URI with the password replaced by ***: the only form that is ever printed."""
        return redact(self.uri(), self.password)

    def scrub(self, text: str) -> str:
        return redact(text, self.password)


def _int_env(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "")
    if not raw.strip():
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number", hint=f"unset it (default {default})") from None
    if value <= 0:
        raise ConfigError(f"{name}={raw!r} must be positive", hint=f"unset it (default {default})")
    return value


_URI_CREDENTIALS = re.compile(r"(mongodb(?:\+srv)?://[^:/@\s]*):[^@\s]*@")


def redact(text: str, password: str = "") -> str:
    """text without the password: URI credentials become user:***, and the password (plain or escaped) ***."""
    text = _URI_CREDENTIALS.sub(r"\1:***@", text)
    forms = [password, urllib.parse.quote_plus(password), urllib.parse.quote(password, safe="")]
    for form in sorted(forms, key=len, reverse=True):
        if form:
            text = text.replace(form, "***")
    return text


# ----------------------------------------------------------------------------------------------------------------
# documents
# ----------------------------------------------------------------------------------------------------------------
def file_format(path: str, text: str) -> str:
    """'json' or 'csv': by extension, else by the first character ({ or [ is JSON)."""
    ext = os.path.splitext(path)[1].lower()
    if ext in (".json", ".csv"):
        return ext[1:]
    return "json" if text.lstrip("\ufeff \t\r\n")[:1] in ("{", "[") else "csv"


def load_documents(path: str) -> List[Dict[str, Any]]:
    """The documents of a CSV (typed like pandas) or JSON file (an object or an array of objects)."""
    if not os.path.isfile(path):
        raise MadengineError(f"--file {path}: no such file", hint="give a perf.csv or a JSON file of rows")
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise MadengineError(f"--file {path}: cannot read it ({exc})") from None
    if file_format(path, text) == "csv":
        try:
            return typed_csv.parse(text)
        except Exception as exc:  # noqa: BLE001 - csv.Error and friends: the file is not a CSV
            raise MadengineError(f"--file {path}: not a readable CSV ({exc})") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise MadengineError(f"--file {path}: not valid JSON ({exc})") from None
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise MadengineError(f"--file {path}: JSON must be an object or an array of objects")
    return [dict(item) for item in data]


def meta_fields(now: datetime.datetime) -> Dict[str, Any]:
    """_meta_uploaded_at (UTC datetime) and created_date ('YYYY-MM-DD HH:MM:SS') of an upload at `now`."""
    return {META_UPLOADED_AT: now, META_CREATED_DATE: now.strftime("%Y-%m-%d %H:%M:%S")}


def add_meta(docs: Sequence[Dict[str, Any]], now: datetime.datetime) -> None:
    """The meta fields, in the documents that lack them."""
    for doc in docs:
        for key, value in meta_fields(now).items():
            doc.setdefault(key, value)


def columns(docs: Sequence[Mapping[str, Any]]) -> List[str]:
    seen: Dict[str, None] = {}
    for doc in docs:
        for key in doc:
            seen.setdefault(key, None)
    return list(seen)


def detect_unique_key(docs: Sequence[Mapping[str, Any]]) -> List[str]:
    """A perf.csv's row identity when it has run_id and model (see PERF_ROW_KEY); else the original's rule: the
    first of model, name, id, timestamp, date, pipeline whose first 100 values are distinct; else model
    (+ timestamp)."""
    present = columns(docs)
    if "run_id" in present and "model" in present:
        return [key for key in PERF_ROW_KEY if key in present]
    sample = docs[:100]
    for key in LEGACY_KEY_CANDIDATES:
        if key in present:
            values = [json.dumps(d.get(key), sort_keys=True, default=str) for d in sample]
            if len(set(values)) == len(values):
                return [key]
    return ["model", "timestamp"] if "timestamp" in present else ["model"]


def check_unique_key(keys: Sequence[str], docs: Sequence[Mapping[str, Any]]) -> List[str]:
    """keys, when the documents have every one of them; a ConfigError naming the missing ones otherwise."""
    wanted = [k.strip() for k in keys if k.strip()]
    if not wanted:
        raise ConfigError("--unique-key is empty", hint="name one or more columns, e.g. -k model,run_id")
    present = columns(docs)
    missing = [k for k in wanted if k not in present]
    if missing:
        raise ConfigError(
            f"--unique-key {','.join(missing)}: no such column",
            hint=f"the columns are {', '.join(present[:40])}",
        )
    return wanted


def duplicate_keys(docs: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> int:
    """How many documents share their key with an earlier one (an upsert keeps only the last of them)."""
    seen = set()
    dupes = 0
    for doc in docs:
        value = json.dumps([doc.get(k) for k in keys], sort_keys=True, default=str)
        dupes += value in seen
        seen.add(value)
    return dupes


def key_filter(doc: Mapping[str, Any], keys: Sequence[str]) -> Dict[str, Any]:
    return {key: doc.get(key) for key in keys}


def upsert_update(doc: Mapping[str, Any], now: datetime.datetime) -> Dict[str, Any]:
    """The update of one upsert: the document's fields are set; the meta fields it lacks only when it is new
    (so uploading the same rows again changes nothing)."""
    update: Dict[str, Any] = {"$set": {k: v for k, v in doc.items() if k != "_id"}}
    on_insert = {k: v for k, v in meta_fields(now).items() if k not in doc}
    if on_insert:
        update["$setOnInsert"] = on_insert
    return update


def batches(items: Sequence[Any], size: int) -> List[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


# ----------------------------------------------------------------------------------------------------------------
# uploading
# ----------------------------------------------------------------------------------------------------------------
@dataclass
class UploadResult:
    documents: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: int = 0
    batches: int = 0
    keys: List[str] = field(default_factory=list)
    index: str = ""
    messages: List[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """At least one document written or found up to date (re-uploading the same file is not a failure)."""
        return self.inserted + self.updated + self.unchanged > 0


class Target(Protocol):
    """Where documents go; MongoTarget is the real one."""

    def upsert(self, ops: Sequence[Tuple[Dict[str, Any], Dict[str, Any]]]) -> Dict[str, Any]: ...

    def insert(self, docs: Sequence[Dict[str, Any]]) -> Dict[str, Any]: ...

    def create_index(self, keys: Sequence[str], unique: bool) -> str: ...


def upload(
    docs: Sequence[Dict[str, Any]],
    target: Target,
    keys: Sequence[str],
    batch_size: int = DEFAULT_BATCH_SIZE,
    upsert: bool = True,
    index: bool = True,
    now: Optional[datetime.datetime] = None,
) -> UploadResult:
    """Write the documents in batches (bulk upserts keyed by `keys`, or plain inserts) and index the keys."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    result = UploadResult(documents=len(docs), keys=list(keys))
    if index:
        try:
            result.index = target.create_index(keys, unique=upsert)
        except UploadError as exc:
            result.messages.append(f"index on {', '.join(keys)} not created: {exc.msg}")
    for batch in batches(list(docs), batch_size):
        result.batches += 1
        if upsert:
            counts = target.upsert([(key_filter(doc, keys), upsert_update(doc, now)) for doc in batch])
        else:
            fresh = [dict(doc) for doc in batch]
            add_meta(fresh, now)
            counts = target.insert(fresh)
        result.inserted += counts.get("nInserted", 0) + counts.get("nUpserted", 0)
        result.updated += counts.get("nModified", 0)
        result.unchanged += counts.get("nMatched", 0) - counts.get("nModified", 0)
        result.errors += len(counts.get("writeErrors", []))
        for error in counts.get("writeErrors", [])[:3]:
            result.messages.append(f"document {error.get('index', '?')}: {error.get('errmsg', error)}")
    return result


def one_line(exc: BaseException, settings: MongoSettings) -> str:
    """A pymongo error as one line, without the password (pymongo may quote the URI)."""
    text = str(exc).split("(configured timeouts", 1)[0].split(", full error:", 1)[0]
    text = " ".join(text.split())
    return settings.scrub(text.rstrip(" ,.") or type(exc).__name__)


class MongoTarget:
    """One collection of a MongoDB server, through pymongo."""

    def __init__(self, settings: MongoSettings, database: str, collection: str) -> None:
        self.settings = settings
        self.database = database
        self.collection_name = collection
        self.client: Any = None
        self.collection: Any = None

    def connect(self) -> None:
        try:
            import pymongo
            from pymongo import errors
        except ImportError:
            raise UploadError("pymongo is not installed", hint="pip install pymongo") from None
        self._errors = errors
        self._update_one = pymongo.UpdateOne
        shown = self.settings.shown_uri()
        try:
            self.client = pymongo.MongoClient(
                self.settings.uri(),
                serverSelectionTimeoutMS=self.settings.timeout_ms,
                connectTimeoutMS=self.settings.timeout_ms,
                directConnection=True,
            )
            self.client.admin.command("ping")
        except errors.OperationFailure as exc:
            self.close()
            auth = "Authentication failed" in str(exc) or exc.code in (18, 13)
            hint = "check MONGO_USER and MONGO_PASSWORD (and MONGO_AUTH_SOURCE, MONGO_AUTH_MECHANISM)" if auth else None
            what = "refused the login" if auth else "failed"
            raise UploadError(f"{shown} {what}: {one_line(exc, self.settings)}", hint=hint) from None
        except (errors.PyMongoError, ValueError, TypeError) as exc:
            self.close()
            raise UploadError(
                f"cannot connect to {shown}: {one_line(exc, self.settings)}",
                hint="check MONGO_HOST and MONGO_PORT (or MONGO_URI), and that the server runs",
            ) from None
        self.collection = self.client[self.database][self.collection_name]

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None

    def _failure(self, what: str, exc: BaseException) -> UploadError:
        return UploadError(
            f"{what} in {self.database}.{self.collection_name} failed: {one_line(exc, self.settings)}",
            hint="check that MONGO_USER may write to this database",
        )

    def upsert(self, ops: Sequence[Tuple[Dict[str, Any], Dict[str, Any]]]) -> Dict[str, Any]:
        requests = [self._update_one(flt, update, upsert=True) for flt, update in ops]
        return self._bulk(lambda: self.collection.bulk_write(requests, ordered=False).bulk_api_result, "upsert")

    def insert(self, docs: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
        def run() -> Dict[str, Any]:
            return {"nInserted": len(self.collection.insert_many(list(docs), ordered=False).inserted_ids)}

        return self._bulk(run, "insert")

    def _bulk(self, call: Callable[[], Dict[str, Any]], what: str) -> Dict[str, Any]:
        try:
            return call()
        except self._errors.BulkWriteError as exc:
            return dict(exc.details or {})
        except self._errors.PyMongoError as exc:
            raise self._failure(what, exc) from None

    def create_index(self, keys: Sequence[str], unique: bool) -> str:
        try:
            return str(self.collection.create_index([(k, 1) for k in keys], name=INDEX_NAME, unique=unique))
        except self._errors.PyMongoError as exc:
            raise self._failure("creating the index", exc) from None


def upload_file(
    path: str,
    database: str,
    collection: str,
    unique_key: Optional[Sequence[str]] = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    upsert: bool = True,
    index: bool = True,
    dry_run: bool = False,
    settings: Optional[MongoSettings] = None,
    target: Optional[Target] = None,
) -> UploadResult:
    """`madengine database`: read the file, pick the key, and upload (or, with dry_run, only plan: nothing is
    contacted). Raises ConfigError for bad options, MadengineError/UploadError for files and the server."""
    if batch_size < 1:
        raise ConfigError(f"--batch-size {batch_size}: must be at least 1")
    if not database or len(database) > 63 or any(c in database for c in '/\\. "$\0'):
        raise ConfigError(f"--database {database!r} is not a valid name", hint="use letters, digits, _ and -")
    if not collection or collection.startswith("system.") or "$" in collection or "\0" in collection:
        raise ConfigError(f"--collection {collection!r} is not a valid name", hint="use letters, digits, _ . and -")
    settings = settings or MongoSettings.from_env()
    docs = load_documents(path)
    if not docs:
        raise MadengineError(f"--file {path}: no rows to upload")
    keys = check_unique_key(unique_key, docs) if unique_key else detect_unique_key(docs)
    result = UploadResult(documents=len(docs), keys=keys, batches=len(batches(docs, batch_size)))
    dupes = duplicate_keys(docs, keys) if upsert else 0
    if dupes:
        result.messages.append(
            f"{dupes} row(s) share their unique key ({', '.join(keys)}) with an earlier row: each upsert keeps the "
            "last (choose the columns with --unique-key)"
        )
    if dry_run:
        return result
    owned = target is None
    if target is None:
        mongo = MongoTarget(settings, database, collection)
        mongo.connect()
        target = mongo
    try:
        done = upload(docs, target, keys, batch_size=batch_size, upsert=upsert, index=index)
    finally:
        if owned and isinstance(target, MongoTarget):
            target.close()
    done.messages = result.messages + done.messages
    return done
