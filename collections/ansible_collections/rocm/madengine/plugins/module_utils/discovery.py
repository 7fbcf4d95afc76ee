"""Reading the models of a MAD package: root models.json, scripts/<dir>/models.json, get_models_json.py."""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import os
import sys
import types
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

from .custom_model import CustomModel
from .dockerfiles import DockerfileIndex
from .errors import DiscoveryError
from .jsonfile import load_json

REQUIRED_SCOPED_KEYS = ("dockerfile", "scripts")
EXAMPLE_DYNAMIC = "tests/fixtures/mad/scripts/dummy3/get_models_json.py"


@dataclass
class DiscoveredModel:
    """A model card as discovered; `scope` is the scripts/<dir> it came from ('' for root models)."""

    name: str
    card: Dict[str, Any]
    source: str
    scope: str = ""
    custom: Optional[CustomModel] = None

    @property
    def tags(self) -> List[str]:
        return card_tags(self.card if self.custom is None else self.custom.to_dict())

    def resolve(self) -> Dict[str, Any]:
        """The model dict as selected: dynamic models get update_model() and path rewriting now."""
        if self.custom is None:
            return copy.deepcopy(self.card)
        model = copy.deepcopy(self.custom)
        with stdout_to_stderr():
            model.update_model()
            data = model.to_dict()
        data["name"] = self.name
        for key in ("dockerfile", "scripts"):
            if data.get(key):
                data[key] = scoped_path(self.scope, data[key])
        return data


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Send what a package's Python code prints to stderr, so that it never mixes with our stdout
    (`discover --json`, a module's JSON): sys.stdout and file descriptor 1, for child processes too."""
    saved_stream = sys.stdout
    _flush(saved_stream, sys.__stdout__)
    try:
        saved_fd: Optional[int] = os.dup(1)
        os.dup2(2, 1)
    except OSError:  # fd 1 or 2 is not open: nothing at the OS level to protect or to redirect to
        saved_fd = None
    sys.stdout = sys.stderr
    try:
        yield
    finally:
        _flush(sys.stdout, sys.__stdout__, sys.stderr)
        sys.stdout = saved_stream
        if saved_fd is not None:
            os.dup2(saved_fd, 1)
            os.close(saved_fd)


def _flush(*streams: Any) -> None:
    for stream in streams:
        with contextlib.suppress(Exception):
            stream.flush()


def card_tags(card: Dict[str, Any]) -> List[str]:
    tags = card.get("tags", [])
    if isinstance(tags, list):
        return [str(t) for t in tags]
    if isinstance(tags, str):
        return [t.strip() for t in tags.split(",") if t.strip()]
    return []


def scoped_path(scope: str, value: str) -> str:
    return os.path.normpath(os.path.join("scripts", scope, value))


def _read_json_array(path: str) -> List[Any]:
    return load_json(path, path, list, DiscoveryError, hint="it must be a JSON array of model objects")


def _check_card(path: str, index: int, card: Any, required: Tuple[str, ...]) -> None:
    if not isinstance(card, dict):
        raise DiscoveryError(f"{path}: entry {index} must be an object, got {type(card).__name__}")
    name = card.get("name")
    if not isinstance(name, str) or not name.strip():
        raise DiscoveryError(f"{path}: entry {index} has no 'name'", hint="every model card needs a non-empty name")
    missing = [key for key in required if not isinstance(card.get(key), str) or not card.get(key)]
    if missing:
        raise DiscoveryError(
            f"{path}: model card '{name}' lacks {', '.join(repr(k) for k in missing)}",
            hint="add the missing keys (dockerfile prefix and scripts path)",
        )
    tags = card.get("tags", [])
    if not isinstance(tags, (list, str)):
        raise DiscoveryError(f"{path}: model card '{name}': 'tags' must be a list or a comma-separated string")
    for key in ("args", "scripts", "dockerfile", "multiple_results"):
        if key in card and not isinstance(card[key], str):
            raise DiscoveryError(f"{path}: model card '{name}': '{key}' must be a string")
    timeout = card.get("timeout")
    if timeout is not None and (isinstance(timeout, bool) or not _is_int_like(timeout)):
        raise DiscoveryError(f"{path}: model card '{name}': 'timeout' must be a whole number of seconds")


def _is_int_like(value: Any) -> bool:
    try:
        int(str(value).strip())
    except ValueError:
        return False
    return True


def install_import_shims() -> None:
    """Make `madengine.utils.discover_models` importable where only the collection is installed."""
    for module_name in ("madengine.utils.discover_models", "madengine.tools.discover_models"):
        try:
            importlib.import_module(module_name)
            continue
        except ImportError:
            pass
        parts = module_name.split(".")
        for depth in range(1, len(parts) + 1):
            name = ".".join(parts[:depth])
            if name not in sys.modules:
                module = types.ModuleType(name)
                module.__path__ = []
                sys.modules[name] = module
        sys.modules[module_name].CustomModel = CustomModel  # type: ignore[attr-defined]


def _load_dynamic(path: str, scope: str) -> List[DiscoveredModel]:
    install_import_shims()
    # Registered under a per-scope name while it runs: dataclasses defined in it need their module.
    module_name = f"get_models_json_{scope}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise DiscoveryError(f"{path}: cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        with stdout_to_stderr():
            spec.loader.exec_module(module)
    except Exception as exc:  # a user script may raise anything
        del sys.modules[module_name]
        raise DiscoveryError(f"{path}: failed to execute: {type(exc).__name__}: {exc}") from None
    list_models = getattr(module, "list_models", None)
    if not callable(list_models):
        raise DiscoveryError(
            f"{path}: no list_models() function",
            hint=f"define list_models() returning CustomModel objects (see {EXAMPLE_DYNAMIC})",
        )
    try:
        with stdout_to_stderr():
            objects = list(list_models())
    except Exception as exc:
        raise DiscoveryError(f"{path}: list_models() failed: {type(exc).__name__}: {exc}") from None
    models = []
    for index, obj in enumerate(objects):
        if not isinstance(obj, CustomModel):
            raise DiscoveryError(
                f"{path}: list_models() item {index} is a {type(obj).__name__}",
                hint="use or subclass madengine.utils.discover_models.CustomModel",
            )
        if not isinstance(obj.name, str) or not obj.name:
            raise DiscoveryError(f"{path}: list_models() item {index} has no name")
        full_name = f"{scope}/{obj.name}"
        obj.name = full_name
        models.append(DiscoveredModel(full_name, {}, path, scope, custom=obj))
    return models


def _reject_duplicates(models: List[DiscoveredModel]) -> None:
    seen: Dict[str, str] = {}
    for model in models:
        if model.name in seen:
            raise DiscoveryError(
                f"model name '{model.name}' is defined twice ({seen[model.name]} and {model.source})",
                hint="model names must be unique: images, logs and perf rows are named after them",
            )
        seen[model.name] = model.source


class ModelCatalog:
    """Every model of a MAD package, in a stable order: root models, then scripts/<dir> sorted by name."""

    def __init__(self, models: List[DiscoveredModel], root: str) -> None:
        self.models = models
        self.root = root

    @property
    def names(self) -> List[str]:
        return [m.name for m in self.models]

    def source_of(self, name: str) -> str:
        """The file that defines model `name`, relative to the package root."""
        for model in self.models:
            if model.name == name:
                return os.path.relpath(model.source, self.root) if os.path.isabs(model.source) else model.source
        return "models.json"


def card_warnings(catalog: ModelCatalog, models: Sequence[Mapping[str, Any]]) -> List[str]:
    """One line per listed model that a build would reject for its card: no 'dockerfile' or 'scripts',
    or a Dockerfile prefix that matches no file. Cheap: one listing per Dockerfile directory."""
    index = DockerfileIndex(catalog.root)
    warnings = []
    for model in models:
        name = model.get("name", "?")
        where = f"{catalog.source_of(name)}: model card '{name}'"
        missing = [key for key in REQUIRED_SCOPED_KEYS if not model.get(key)]
        if missing:
            warnings.append(
                f"{where} lacks {' and '.join(repr(k) for k in missing)}; it cannot be built or run until "
                "the card names a Dockerfile prefix and a script"
            )
        prefix = str(model.get("dockerfile") or "")
        if prefix and not index.candidates(prefix):
            warnings.append(
                f"{where}: no Dockerfile matches {prefix}.*; add {prefix}.<os>.<vendor>.Dockerfile or fix 'dockerfile'"
            )
    return warnings


_CACHE: Dict[str, ModelCatalog] = {}


def discover(root: str = ".", use_cache: bool = True) -> ModelCatalog:
    """Discover the models under `root`; get_models_json.py scripts run once per process and root."""
    root = os.path.abspath(root)
    if use_cache and root in _CACHE:
        return _CACHE[root]
    models_json = os.path.join(root, "models.json")
    if not os.path.isfile(models_json):
        raise DiscoveryError(
            f"{models_json}: {'is not a file' if os.path.exists(models_json) else 'not found'}",
            hint="run madengine from the root of a MAD package (the directory holding models.json)",
        )
    models: List[DiscoveredModel] = []
    for index, card in enumerate(_read_json_array(models_json)):
        _check_card("models.json", index, card, ())
        models.append(DiscoveredModel(card["name"], dict(card), "models.json"))

    scripts_dir = os.path.join(root, "scripts")
    scopes = (
        sorted(entry for entry in os.listdir(scripts_dir) if os.path.isdir(os.path.join(scripts_dir, entry)))
        if os.path.isdir(scripts_dir)
        else []
    )
    for scope in scopes:
        static = os.path.join(scripts_dir, scope, "models.json")
        dynamic = os.path.join(scripts_dir, scope, "get_models_json.py")
        rel_static = os.path.relpath(static, root)
        if os.path.isfile(static) and os.path.isfile(dynamic):
            raise DiscoveryError(
                f"scripts/{scope}: has both models.json and get_models_json.py", hint="keep only one of them"
            )
        if os.path.isfile(static):
            for index, card in enumerate(_read_json_array(static)):
                _check_card(rel_static, index, card, REQUIRED_SCOPED_KEYS)
                card = dict(card)
                card["name"] = f"{scope}/{card['name']}"
                card["dockerfile"] = scoped_path(scope, card["dockerfile"])
                card["scripts"] = scoped_path(scope, card["scripts"])
                models.append(DiscoveredModel(card["name"], card, rel_static, scope))
        elif os.path.isfile(dynamic):
            models.extend(_load_dynamic(dynamic, scope))
    _reject_duplicates(models)
    catalog = ModelCatalog(models, root)
    if use_cache:
        _CACHE[root] = catalog
    return catalog


def clear_cache() -> None:
    _CACHE.clear()
