"""Dockerfile candidates, CONTEXT headers, image and log names."""

from __future__ import annotations

import ast
import os
import re
from typing import Any, Dict, List, Mapping, Optional

from .errors import BuildError

CONTEXT_MARK = "# CONTEXT "
HEADER_LINES = 5
SUFFIX = ".Dockerfile"
_ARCH_LINE = re.compile(
    r"^[ \t]*(?:ARG|ENV)[ \t]+MAD_SYSTEM_GPU_ARCHITECTURE[= \t][ \t]*[\"']?([^\"'\s]*)", re.I | re.M
)
_BASE_LINE = re.compile(r"^ARG BASE_DOCKER=(\S+)", re.M)


class DockerfileIndex:
    """Dockerfile candidates of a package, listing each directory once."""

    def __init__(self, root: str) -> None:
        self.root = root
        self._files: Dict[str, List[str]] = {}

    def _listing(self, directory: str) -> List[str]:
        if directory not in self._files:
            try:
                with os.scandir(directory) as entries:
                    self._files[directory] = [entry.name for entry in entries if entry.is_file()]
            except OSError:
                self._files[directory] = []
        return self._files[directory]

    def candidates(self, prefix: str) -> List[str]:
        """Paths (relative to root) of the files named `<prefix>.*`, sorted."""
        directory, base = os.path.split(os.path.join(self.root, prefix))
        found = [os.path.join(directory, name) for name in self._listing(directory) if name.startswith(base + ".")]
        return sorted(os.path.relpath(path, self.root) for path in found)


def candidates(root: str, prefix: str) -> List[str]:
    """Paths (relative to root) of the files named `<prefix>.*`, sorted."""
    return DockerfileIndex(root).candidates(prefix)


def read_context_header(root: str, dockerfile: str) -> Optional[Dict[str, Any]]:
    """The `# CONTEXT {...}` dict of the first 5 lines; None when there is no such line."""
    with open(os.path.join(root, dockerfile), encoding="utf-8", errors="replace") as handle:
        for _line_number in range(HEADER_LINES):
            line = handle.readline()
            if not line:
                break
            if CONTEXT_MARK in line:
                text = line.split(CONTEXT_MARK, 1)[1].strip()
                try:
                    value = ast.literal_eval(text)
                except (ValueError, SyntaxError):
                    raise BuildError(f"{dockerfile}: the CONTEXT header is not a Python dict literal: {text}") from None
                if not isinstance(value, dict):
                    raise BuildError(f"{dockerfile}: the CONTEXT header must be a dict, got {text}")
                return value
    return None


def select_dockerfiles(root: str, model: Mapping[str, Any], match: Mapping[str, str]) -> List[str]:
    """Every candidate whose CONTEXT agrees with `match` on the keys both have. Raises when none does."""
    name = model.get("name", "?")
    prefix = model.get("dockerfile") or ""
    if not prefix:
        raise BuildError(f"model '{name}': no 'dockerfile' in its model card")
    found = candidates(root, prefix)
    if not found:
        raise BuildError(
            f"model '{name}': no Dockerfile matches {prefix}.*", hint="add <prefix>.<os>.<vendor>.Dockerfile"
        )
    selected = []
    offered = []
    for path in found:
        header = read_context_header(root, path)
        if header is None:
            raise BuildError(
                f"model '{name}': {path} has no '# CONTEXT {{...}}' line in its first {HEADER_LINES} lines",
                hint="add e.g. # CONTEXT {'gpu_vendor': 'AMD', 'guest_os': 'UBUNTU'}",
            )
        offered.append(f"{path} {header}")
        if all(str(value) == match[key] for key, value in header.items() if key in match):
            selected.append(path)
    if not selected:
        wanted = {k: match[k] for k in ("gpu_vendor", "guest_os") if k in match}
        raise BuildError(
            f"model '{name}': no Dockerfile's CONTEXT matches {wanted} (candidates: {'; '.join(offered)})",
            hint='pass the matching values with -c, e.g. -c \'{"gpu_vendor": "AMD"}\'',
        )
    return selected


def dockerfile_stem(dockerfile: str) -> str:
    base = os.path.basename(dockerfile)
    return base[: -len(SUFFIX)] if base.endswith(SUFFIX) else base


def image_name(model_name: str, dockerfile: str, arch: Optional[str] = None) -> str:
    name = "ci-" + model_name.replace("/", "_").lower() + "_" + dockerfile_stem(dockerfile)
    return f"{name}_{arch}" if arch else name


def build_log_name(model_name: str, dockerfile: str, arch: Optional[str] = None) -> str:
    stem = model_name.replace("/", "_") + "_" + dockerfile_stem(dockerfile)
    return f"{stem}_{arch}.build.live.log" if arch else f"{stem}.build.live.log"


def run_log_base(model_name: str, image: str) -> str:
    """`<model>_<dockerfile part>` as the original derives it from the image reference."""
    ref = image.split("@", 1)[0]
    last = ref.rsplit("/", 1)[-1]
    if ":" in last and last.split(":", 1)[1].startswith("ci-"):
        part = last.split(":", 1)[1]
    else:
        part = re.sub(r"[/:@]", "_", ref)
    part = part.replace("ci-", "")
    prefix = model_name.replace("/", "_").lower() + "_"
    if part.startswith(prefix):
        part = part[len(prefix) :]
    return model_name.replace("/", "_") + "_" + part


def build_context_dir(model: Mapping[str, Any]) -> str:
    if model.get("dockercontext"):
        return str(model["dockercontext"])
    return "." if "primus" in str(model.get("dockerfile", "")).lower() else "./docker"


def infer_gpu_vendor(dockerfile: str, text: str) -> str:
    lowered = os.path.basename(dockerfile).lower()
    for token, vendor in ((".amd", "AMD"), (".nvidia", "NVIDIA"), (".cpu", "CPU")):
        if token + "." in lowered or lowered.endswith(token):
            return vendor
    content = text.lower()
    if "from" in content:
        if "rocm" in content or "amd" in content:
            return "AMD"
        if "nvidia" in content or "cuda" in content:
            return "NVIDIA"
    return ""


def base_docker(text: str, build_args: Mapping[str, str]) -> str:
    if build_args.get("BASE_DOCKER"):
        return build_args["BASE_DOCKER"]
    return ",".join(_BASE_LINE.findall(text))


_ARCH_WITHOUT_DEFAULT = re.compile(
    r"^[ \t]*ARG[ \t]+MAD_SYSTEM_GPU_ARCHITECTURE[ \t]*(?:=[ \t]*[\"']{0,2})?[ \t]*$", re.M
)


ARCH_ALIASES = {
    "mi100": "gfx908",
    "mi200": "gfx90a",
    "mi210": "gfx90a",
    "mi250": "gfx90a",
    "mi250x": "gfx90a",
    "mi300": "gfx940",
    "mi300a": "gfx940",
    "mi300x": "gfx942",
    "mi325x": "gfx942",
    "mi350x": "gfx950",
    "mi355x": "gfx950",
}


def normalise_arch(name: str) -> str:
    """`MI300X` -> `gfx942`; gfx names and anything unknown are kept (lower-cased gfx)."""
    key = name.strip().lower()
    if key.startswith("gfx"):
        return key
    return ARCH_ALIASES.get(key, name.strip())


def needs_gpu_architecture(text: str, build_args: Mapping[str, str]) -> bool:
    """The Dockerfile declares MAD_SYSTEM_GPU_ARCHITECTURE without a default and no value is given."""
    return not build_args.get("MAD_SYSTEM_GPU_ARCHITECTURE") and bool(_ARCH_WITHOUT_DEFAULT.search(text))


def gpu_architecture(text: str, build_args: Mapping[str, str]) -> str:
    if build_args.get("MAD_SYSTEM_GPU_ARCHITECTURE"):
        return build_args["MAD_SYSTEM_GPU_ARCHITECTURE"]
    match = _ARCH_LINE.search(text)
    return match.group(1) if match else ""
