"""Reading the JSON files a user hands us, with one-line errors that name the file and the spot."""

from __future__ import annotations

import json
from typing import Any, Dict, Optional, Type

from .errors import ConfigError, MadengineError

_KINDS: Dict[type, str] = {dict: "a JSON object", list: "a JSON array"}


def load_json(
    path: str,
    label: str,
    expect: type,
    error: Type[MadengineError] = ConfigError,
    hint: Optional[str] = None,
    missing_hint: Optional[str] = None,
) -> Any:
    """The parsed content of `path`, which must be of type `expect`; `label` names the file in messages
    (e.g. '--manifest-file build_manifest.json'). `hint` follows content errors, `missing_hint` a missing file."""
    try:
        with open(path, encoding="utf-8-sig") as handle:
            value = json.load(handle)
    except FileNotFoundError:
        raise error(f"{label}: file not found", hint=missing_hint) from None
    except json.JSONDecodeError as exc:
        raise error(f"{label}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}", hint=hint) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{label}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    if not isinstance(value, expect):
        raise error(f"{label}: must hold {_KINDS.get(expect, expect.__name__)}, got {type(value).__name__}", hint=hint)
    return value
