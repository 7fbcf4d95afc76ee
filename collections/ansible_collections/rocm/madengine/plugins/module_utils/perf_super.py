"""perf_super.json/.csv and perf_entry_super.json/.csv: the rows of each model enriched with the `configs` its
`--config <path>` argument names and, for multiple_results models, the result's other columns (`multi_results`)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shlex
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence

from . import atomic, perfcsv, typed_csv
from .errors import MadengineError

SUPER_JSON, SUPER_CSV = "perf_super.json", "perf_super.csv"
ENTRY_JSON, ENTRY_CSV = "perf_entry_super.json", "perf_entry_super.csv"
LOCK_FILE = ".perf_super.lock"
MAD_SCRIPT_DIRS = ("MAD", "MAD-private", "MAD-internal")


class ConfigReadError(MadengineError):
    """A --config file that cannot be read; the rows are still written, without configs."""


def config_arg(args: str) -> str:
    """The path of `--config <path>` (or --config=<path>) in a model's args; '' when there is none."""
    try:
        words = shlex.split(args)
    except ValueError:
        words = args.split()
    for index, word in enumerate(words):
        if word == "--config" and index + 1 < len(words):
            return words[index + 1]
        if word.startswith("--config="):
            return word.split("=", 1)[1]
    return ""


def candidate_dirs(root: str, scripts: str) -> List[str]:
    """Where a relative --config path is looked for, in order: the script's directory and the directories above
    it up to the package, the scripts base directory (scripts/ or scripts/<MAD|MAD-private|MAD-internal>/), the
    package root."""
    root = os.path.abspath(root)
    script_dir = os.path.dirname(scripts) if os.path.splitext(scripts)[1] else scripts
    dirs: List[str] = []
    current = os.path.abspath(os.path.join(root, script_dir)) if script_dir else root
    while current.startswith(root) and current != root:
        dirs.append(current)
        current = os.path.dirname(current)
    dirs += [os.path.join(root, "scripts", name) for name in MAD_SCRIPT_DIRS]
    dirs += [os.path.join(root, "scripts"), root]
    seen: Dict[str, None] = {}
    for directory in dirs:
        seen.setdefault(directory, None)
    return list(seen)


def resolve_config(path: str, root: str, scripts: str) -> str:
    """The file a --config path names; '' when none of the candidate directories has it."""
    if os.path.isabs(path):
        return path if os.path.isfile(path) else ""
    for directory in candidate_dirs(root, scripts):
        candidate = os.path.join(directory, path)
        if os.path.isfile(candidate):
            return candidate
    return ""


def load_config(path: str) -> Any:
    """.csv → a list of row dicts (all-empty rows dropped, empty cells None); .json as is; .yaml/.yml parsed."""
    ext = os.path.splitext(path)[1].lower()
    try:
        if ext == ".csv":
            return typed_csv.read(path)
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        if ext == ".json":
            return json.loads(text)
        if ext in (".yaml", ".yml"):
            import yaml

            return yaml.safe_load(text)
    except ImportError:
        raise ConfigReadError(f"config {path}: reading YAML needs PyYAML (pip install pyyaml)") from None
    except Exception as exc:  # noqa: BLE001 - any parse error of any of the three formats
        raise ConfigReadError(f"config {path}: cannot read it ({type(exc).__name__}: {exc})") from None
    raise ConfigReadError(f"config {path}: unknown format {ext or '(no extension)'}; use .csv, .json or .yaml")


def model_configs(model: Mapping[str, Any], root: str) -> Any:
    """The configs of a model (None without a --config argument); ConfigReadError when the file is missing or
    unreadable."""
    arg = config_arg(str(model.get("args") or ""))
    if not arg:
        return None
    path = resolve_config(arg, root, str(model.get("scripts") or ""))
    if not path:
        raise ConfigReadError(f"--config {arg} of model {model.get('name')}: file not found")
    return load_config(path)


def _normalised(name: Any) -> str:
    return str(name or "").replace("/", "_").replace("-", "_").lower()


def match_config(configs: Any, result: Mapping[str, Any]) -> Any:
    """The config row of one result of a multiple_results model: the first whose model is a substring of the
    result's model or the other way round (and the same benchmark when both have one), else the first row.
    Configs that are not a list of several rows are returned as they are."""
    if not isinstance(configs, list) or len(configs) < 2:
        return configs
    model = _normalised(result.get("model"))
    for config in configs:
        if not isinstance(config, Mapping):
            continue
        wanted = _normalised(config.get("model"))
        if not wanted or not (wanted in model or model in wanted):
            continue
        if config.get("benchmark") not in (None, "") and result.get("benchmark") not in (None, ""):
            if str(config.get("benchmark")) != str(result.get("benchmark")):
                continue
        return config
    return configs[0]


def records(
    rows: Sequence[Mapping[str, Any]], base_columns: Sequence[str], multiple: bool, configs: Any
) -> List[Dict[str, Any]]:
    """The perf_super entries of one model's rows. base_columns: the columns of the model's own row; for a
    multiple_results model every other column came from its results CSV and goes into multi_results."""
    base = set(base_columns)
    entries = []
    for row in rows:
        entry = {k: v for k, v in row.items() if k in base}
        if multiple:
            extra = {k: v for k, v in row.items() if k not in base and k != "status" and v not in (None, "")}
            entry["multi_results"] = extra or None
            entry["configs"] = match_config(configs, row)
        else:
            entry["multi_results"] = None
            entry["configs"] = configs
        entries.append(entry)
    return entries


def _csv_rows(entries: Sequence[Mapping[str, Any]]) -> List[Dict[str, Any]]:
    out = []
    for entry in entries:
        row = dict(entry)
        for key in ("configs", "multi_results"):
            row[key] = "" if row.get(key) is None else json.dumps(row[key], sort_keys=True, default=str)
        out.append(row)
    return out


@contextlib.contextmanager
def _locked(root: str) -> Iterator[None]:
    with open(os.path.join(root, LOCK_FILE), "a", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def append(root: str, entries: Sequence[Mapping[str, Any]]) -> None:
    """Add entries to perf_super.json/.csv and make them the content of perf_entry_super.json/.csv, under a lock
    (concurrent runs in one package lose nothing), each file replaced in one step."""
    if not entries:
        return
    with _locked(root):
        path = os.path.join(root, SUPER_JSON)
        existing: List[Any] = []
        if os.path.isfile(path):
            try:
                with open(path, encoding="utf-8") as handle:
                    existing = json.load(handle)
            except ValueError as exc:
                raise MadengineError(
                    f"{path} is not valid JSON ({exc}); perf_super files not updated",
                    hint="move it away; the next run starts a new one",
                ) from None
            if not isinstance(existing, list):
                raise MadengineError(f"{path} is not a JSON array; perf_super files not updated")
        everything = existing + list(entries)
        with atomic.replacing(path) as handle:
            json.dump(everything, handle, indent=2, default=str)
        perfcsv.write_rows(os.path.join(root, SUPER_CSV), _csv_rows(everything))
        with atomic.replacing(os.path.join(root, ENTRY_JSON)) as handle:
            json.dump(list(entries), handle, indent=2, default=str)
        perfcsv.write_rows(os.path.join(root, ENTRY_CSV), _csv_rows(entries))


def update(
    root: str,
    model: Mapping[str, Any],
    rows: Sequence[Mapping[str, Any]],
    base_columns: Sequence[str],
    warn: Optional[Any] = None,
) -> None:
    """Write one model's rows to the perf_super files. A config that cannot be read is a warning (the rows are
    written with configs null); a perf_super file that cannot be written is a warning too (perf.csv has the
    rows)."""
    say = warn or (lambda message: None)
    try:
        configs = model_configs(model, root)
    except ConfigReadError as exc:
        say(f"{model.get('name')}: {exc.one_line()}; perf_super rows without configs")
        configs = None
    entries = records(rows, base_columns, bool(model.get("multiple_results")), configs)
    try:
        append(root, entries)
    except MadengineError as exc:
        say(exc.one_line())
    except OSError as exc:
        say(f"cannot write the perf_super files in {root}: {exc.strerror or exc}")
