"""Which way is better for a metric (higher for throughputs, lower for times), the override file, tolerances."""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional

from .errors import ConfigError

HIGHER, LOWER = "higher", "lower"
DEFAULT_TOLERANCE = 5.0  # percent

# Words (split at anything not a letter or digit) that make a metric's numerator a time.
_TIME_WORDS = {
    "s",
    "sec",
    "secs",
    "second",
    "seconds",
    "ms",
    "msec",
    "millisecond",
    "milliseconds",
    "us",
    "usec",
    "microsecond",
    "microseconds",
    "ns",
    "nsec",
    "nanosecond",
    "nanoseconds",
    "min",
    "mins",
    "minute",
    "minutes",
    "h",
    "hr",
    "hrs",
    "hour",
    "hours",
    "time",
    "latency",
    "duration",
    "elapsed",
    "ttft",
    "tpot",
    "itl",
    "e2el",
    "runtime",
    "walltime",
}


def _words(text: str) -> list:
    return [w for w in re.split(r"[^a-z0-9]+", text.lower()) if w]


def default_direction(metric: str) -> str:
    """lower for a time or latency (ms, s, sec_per_batch, ms/iter, ttft, latency...), higher otherwise
    (samples/s, tokens_per_second, it/s, TFLOPS, GB/s...): a quantity is a time when its numerator (the part
    before '/' or '_per_') names a time; a rate is something per time."""
    text = metric.strip().lower()
    if not text:
        return HIGHER
    parts = re.split(r"/|_per_|\bper\b|-per-", text, maxsplit=1)
    numerator = _words(parts[0])
    if any(word in _TIME_WORDS for word in numerator):
        return LOWER
    return HIGHER


@dataclass
class Directions:
    """Direction overrides: per metric, and per model and metric (which wins)."""

    metrics: Dict[str, str] = field(default_factory=dict)
    models: Dict[str, Dict[str, str]] = field(default_factory=dict)
    source: str = ""

    def of(self, model: str, metric: str) -> str:
        per_model = self.models.get(model, {})
        if metric in per_model:
            return per_model[metric]
        if metric in self.metrics:
            return self.metrics[metric]
        return default_direction(metric)


def _direction_value(path: str, where: str, value: Any) -> str:
    text = str(value).strip().lower() if isinstance(value, str) else ""
    if text not in (HIGHER, LOWER):
        raise ConfigError(f"--directions {path}: {where}: {value!r} is not a direction", hint="use 'higher' or 'lower'")
    return text


def _mapping(path: str, where: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"--directions {path}: {where} must be a mapping", hint="see docs/results.md")
    return value


def directions_from_data(data: Any, path: str) -> Directions:
    """Directions from the parsed file: {"metrics": {metric: dir}, "models": {model: {metric: dir}}}."""
    top = _mapping(path, "the file", data if data is not None else {})
    unknown = [key for key in top if key not in ("metrics", "models")]
    if unknown:
        raise ConfigError(
            f"--directions {path}: unknown key {unknown[0]!r}", hint="the file holds only 'metrics' and 'models'"
        )
    result = Directions(source=path)
    for metric, value in _mapping(path, "metrics", top.get("metrics") or {}).items():
        result.metrics[str(metric)] = _direction_value(path, f"metrics.{metric}", value)
    for model, per_model in _mapping(path, "models", top.get("models") or {}).items():
        entries = _mapping(path, f"models.{model}", per_model)
        result.models[str(model)] = {
            str(metric): _direction_value(path, f"models.{model}.{metric}", value) for metric, value in entries.items()
        }
    return result


def load_directions(path: Optional[str]) -> Directions:
    """The override file (YAML or JSON; YAML when PyYAML can be imported, JSON otherwise); no path: none."""
    if not path:
        return Directions()
    if not os.path.isfile(path):
        raise ConfigError(f"--directions {path}: no such file", hint="give the path of a YAML or JSON file")
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    try:
        data = json.loads(text) if path.endswith(".json") else _yaml_or_json(text)
    except ValueError as exc:
        raise ConfigError(f"--directions {path}: cannot parse it: {str(exc).splitlines()[0]}") from None
    return directions_from_data(data, path)


def _yaml_or_json(text: str) -> Any:
    try:
        import yaml
    except ImportError:
        return json.loads(text)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(str(exc)) from None


def parse_tolerance(value: Any, option: str = "--tolerance") -> float:
    """A tolerance in percent: "5%", "5" and "0.05" all mean 5 % (a plain number below 1 is a fraction)."""
    text = str(value).strip()
    percent = text.endswith("%")
    try:
        number = float(text.rstrip("%").strip())
    except ValueError:
        raise ConfigError(f"{option} {value!r} is not a number", hint="use e.g. 5%, 5 or 0.05") from None
    if not math.isfinite(number):
        raise ConfigError(f"{option} {value!r} is not a number", hint="use e.g. 5%, 5 or 0.05")
    if number < 0:
        raise ConfigError(f"{option} {value!r}: must not be negative", hint="use e.g. 5%, 5 or 0.05")
    if not percent and number < 1:
        number *= 100
    return number
