"""Tag grammar and model selection.

Two spellings are accepted: the code's `dir/model[:k=v]` and the seeds' `dir:model[:k=v]`.
Where a tag can be read both ways and the readings select different models, selection fails
and shows both readings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Set, Tuple

from .discovery import DiscoveredModel, ModelCatalog
from .errors import ConfigError, DiscoveryError
from .suggest import did_you_mean


def split_tag_values(values: Iterable[str]) -> List[str]:
    """`--tags a --tags b,c` -> ['a', 'b', 'c']. A value that holds no tag (`--tags ''`) is a usage error."""
    tags: List[str] = []
    for value in values:
        pieces = [piece.strip() for piece in str(value).split(",") if piece.strip()]
        if not pieces:
            raise ConfigError(
                f"--tags {value!r}: empty tag",
                hint="give a model name or tag (e.g. --tags dummy, --tags all); 'madengine discover' lists them",
            )
        tags.extend(pieces)
    return tags


def extra_args(pieces: List[str]) -> str:
    """`['batch-size=32', 'fp16']` -> ' --batch-size 32 --fp16' (every '=' becomes a space)."""
    return "".join(" --" + piece.replace("=", " ") for piece in pieces)


@dataclass(frozen=True)
class Reading:
    description: str
    models: Tuple[DiscoveredModel, ...]
    args: str

    def key(self) -> Tuple[Tuple[str, ...], str]:
        return tuple(m.name for m in self.models), self.args


def _match_any(head: str, model: DiscoveredModel) -> bool:
    return head == "all" or head == model.name or head in model.tags


def _match_scoped(scope: str, wanted: str, model: DiscoveredModel) -> bool:
    if not model.name.startswith(scope + "/"):
        return False
    return wanted == "all" or wanted in model.tags or model.name == f"{scope}/{wanted}"


def _ordered(models: List[DiscoveredModel]) -> Tuple[DiscoveredModel, ...]:
    """Static cards first, then dynamic ones, each in catalog order."""
    return tuple([m for m in models if m.custom is None] + [m for m in models if m.custom is not None])


def readings(tag: str, catalog: ModelCatalog) -> List[Reading]:
    """Every non-empty way of reading `tag` against the catalog."""
    models = catalog.models
    if tag.count("/") == 1 and ":" not in tag:
        scope, wanted = (part.strip() for part in tag.split("/"))
        if scope and wanted:
            found = _ordered([m for m in models if _match_scoped(scope, wanted, m)])
            return [Reading(f"models in scripts/{scope} matching '{wanted}'", found, "")] if found else []
    pieces = [piece.strip() for piece in tag.split(":") if piece.strip()]
    if not pieces:
        return []
    head, rest = pieces[0], pieces[1:]
    result: List[Reading] = []
    code_form = _ordered([m for m in models if _match_any(head, m)])
    if code_form:
        result.append(Reading(f"'{head}' with extra args '{extra_args(rest).strip()}'", code_form, extra_args(rest)))
    elif head.count("/") == 1:
        scope, wanted = head.split("/")
        found = _ordered([m for m in models if _match_scoped(scope, wanted, m)])
        if found:
            result.append(Reading(f"models in scripts/{scope} matching '{wanted}'", found, extra_args(rest)))
    if "/" not in head and rest and "=" not in rest[0]:
        found = _ordered([m for m in models if _match_scoped(head, rest[0], m)])
        if found:
            result.append(Reading(f"'{head}/{rest[0]}' (dir:model form)", found, extra_args(rest[1:])))
    return result


def _describe(reading: Reading) -> str:
    names = ", ".join(m.name for m in reading.models)
    args = f" with args '{reading.args.strip()}'" if reading.args else ""
    return f"[{names}]{args}"


def _unknown_tag(tag: str, catalog: ModelCatalog) -> DiscoveryError:
    head = tag.split(":", 1)[0].strip()
    words = catalog.names + [t for m in catalog.models for t in m.tags]
    suggestion = did_you_mean(head, words, n=3, cutoff=0.6)
    listing = f"'madengine discover' lists the {len(catalog.models)} models and their tags"
    return DiscoveryError(f"tag '{tag}' selects no model", hint=f"{suggestion} {listing}" if suggestion else listing)


def select_models(tags: Iterable[str], catalog: ModelCatalog) -> List[Dict[str, Any]]:
    """Resolve tags to model dicts (extra args appended), in tag order.

    A model selected again with other args is another selection (a parameter sweep); a selection
    repeated exactly (same model, same args) is kept once, where it first appeared.
    """
    selected: List[Dict[str, Any]] = []
    seen: Set[Tuple[str, str]] = set()
    for tag in split_tag_values(tags):
        options = readings(tag, catalog)
        distinct = {r.key(): r for r in options}
        if not distinct:
            raise _unknown_tag(tag, catalog)
        if len(distinct) > 1:
            shown = " or ".join(f"{r.description} -> {_describe(r)}" for r in distinct.values())
            raise DiscoveryError(
                f"tag '{tag}' is ambiguous: it reads as {shown}",
                hint="write dir/model for a model of scripts/<dir>",
            )
        reading = next(iter(distinct.values()))
        for model in reading.models:
            card = model.resolve()
            card["args"] = str(card.get("args") or "") + reading.args
            if (model.name, card["args"]) in seen:
                continue
            seen.add((model.name, card["args"]))
            selected.append(card)
    return selected
