"""GPU host facts: vendor, GPU count, architecture, product name, HIP/CUDA version, render minors.

Spec 9.3 (context detection), 9.4 (ROCm root), 6.5 (docker_gpus, gpu_renderDs), 6.13 (skip_gpu_arch names).

Detection runs only the vendor tools it needs, each with a timeout, and only when the tool is found
(``which()`` or one of the fixed install paths). A failing probe leaves its fact empty ("" / 0 / ()),
it never raises; the one error is a malformed ``docker_gpus`` override (ConfigError).

Every parser is a pure function of the tool's stdout so that it can be tested on recorded outputs
(tests/unit/data/hostinfo/). ``sysfs_root`` is the root under which every *file* is read: the KFD
topology, the fixed tool paths and the ROCm root candidates; tests point it at a temporary tree.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from .commands import CommandResult, Runner, run_command
from .errors import ConfigError

PROBE_TIMEOUT = 10.0
KFD_TOPOLOGY_NODES = "/sys/devices/virtual/kfd/kfd/topology/nodes"
KFD_TOPOLOGY_NODES_CLASS = "/sys/class/kfd/kfd/topology/nodes"
NVIDIA_SMI_FIXED = "/usr/bin/nvidia-smi"
NVCC_FIXED = "/usr/local/cuda/bin/nvcc"
AMD_SMI_FIXED_EXTRA = "/usr/local/bin/amd-smi"
DEFAULT_ROCM = "/opt/rocm"

Which = Callable[[str], Optional[str]]

VENDORS = ("AMD", "NVIDIA", "CPU")


@dataclass(frozen=True)
class HostInfo:
    gpu_vendor: str  # "AMD" | "NVIDIA" | "CPU"
    ngpus: int  # 0 on CPU hosts
    gpu_architecture: str  # AMD "gfx942"; NVIDIA "NVIDIA H100 80GB HBM3"; "" on CPU
    gpu_product_name: str  # AMD MARKET_NAME / rocm-smi card series; NVIDIA query-gpu name; ""
    hip_version: str  # AMD ROCm major.minor; NVIDIA CUDA major.minor; ""
    render_devices: tuple[int, ...]  # AMD render minor per GPU index; () otherwise
    rocm_path: str  # AMD host ROCm root or ""

    def docker_gpus(self) -> str:
        """The default ``docker_gpus`` value: ``0-<N-1>``, or "" without GPUs."""
        return f"0-{self.ngpus - 1}" if self.ngpus > 0 else ""

    def short_arch(self) -> str:
        """The architecture name ``skip_gpu_arch`` entries are compared with (spec 6.13)."""
        return short_arch_name(self.gpu_vendor, self.gpu_architecture)


CPU_HOST = HostInfo("CPU", 0, "", "", "", (), "")


def short_arch_name(vendor: str, architecture: str) -> str:
    """AMD: the raw ``gfx`` token; NVIDIA: text after ``NVIDIA `` up to the first ``-`` or space."""
    arch = (architecture or "").strip()
    if not arch or vendor == "CPU":
        return ""
    if vendor == "AMD":
        match = re.search(r"gfx[0-9a-z]+", arch)
        return match.group(0) if match else arch
    if vendor == "NVIDIA":
        if "NVIDIA " in arch:
            arch = arch.split("NVIDIA ", 1)[1]
        return re.split(r"[- ]", arch.strip(), maxsplit=1)[0]
    return arch


# --- docker_gpus -----------------------------------------------------------------------------------

_GPU_ITEM = re.compile(r"^(\d+)(?:\s*-\s*(\d+))?$")


def parse_gpu_list(spec: Any) -> list[int]:
    """``"0,2-4,5-5,7"`` -> ``[0, 2, 3, 4, 5, 7]``: sorted, de-duplicated, ranges inclusive.

    An empty value gives ``[]``; anything else malformed raises ConfigError naming docker_gpus.
    """
    if isinstance(spec, bool):
        raise _bad_gpus(spec, "expected a string such as 0,2-4")
    if isinstance(spec, int):
        spec = str(spec)
    elif isinstance(spec, (list, tuple)):
        spec = ",".join(str(item) for item in spec)
    if spec is None:
        return []
    if not isinstance(spec, str):
        raise _bad_gpus(spec, "expected a string such as 0,2-4")
    text = spec.strip()
    if not text:
        return []
    gpus: set[int] = set()
    for item in text.split(","):
        match = _GPU_ITEM.match(item.strip())
        if not match:
            raise _bad_gpus(spec, f"{item.strip()!r} is neither a GPU index nor a range a-b")
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) is not None else first
        if last < first:
            raise _bad_gpus(spec, f"range {item.strip()!r} runs backwards")
        gpus.update(range(first, last + 1))
    return sorted(gpus)


def _bad_gpus(spec: Any, why: str) -> ConfigError:
    return ConfigError(
        f"invalid docker_gpus value {spec!r}: {why}",
        hint="use GPU indices and inclusive ranges separated by commas, e.g. 0,2-4,7",
        key="docker_gpus",
    )


# --- NVIDIA parsers --------------------------------------------------------------------------------

_NVIDIA_L_LINE = re.compile(r"^GPU\s+\d+:\s*(.*?)\s*(?:\(UUID:[^)]*\))?\s*$")


def parse_nvidia_smi_list(text: str) -> list[str]:
    """``nvidia-smi -L`` -> the GPU names, one per ``GPU <n>:`` line (MIG device lines are skipped)."""
    names = []
    for line in (text or "").splitlines():
        match = _NVIDIA_L_LINE.match(line.strip())
        if match:
            names.append(match.group(1))
    return names


def parse_nvidia_smi_query_name(text: str) -> str:
    """``nvidia-smi --query-gpu=name --format=csv,noheader,nounits -i 0`` -> the first GPU's name.

    Only the first CSV field of the first line is kept (the output of a multi-field query starts the same).
    """
    for line in (text or "").splitlines():
        line = line.strip()
        if line:
            return line.split(",", 1)[0].strip()
    return ""


def parse_nvcc_version(text: str) -> str:
    """``nvcc --version`` -> the CUDA ``major.minor`` (``release 11.1, V11.1.105`` -> ``11.1``)."""
    match = re.search(r"release\s+(\d+\.\d+)", text or "")
    if not match:
        match = re.search(r"\bV(\d+\.\d+)", text or "")
    return match.group(1) if match else ""


def parse_nvidia_smi_cuda_version(text: str) -> str:
    """Plain ``nvidia-smi`` (or ``-q``) -> the driver's ``CUDA Version``, used when nvcc is absent."""
    match = re.search(r"CUDA Version\s*:\s*(\d+\.\d+)", text or "")
    return match.group(1) if match else ""


# --- AMD parsers -----------------------------------------------------------------------------------


def parse_amd_smi_list_csv(text: str) -> list[dict[str, str]]:
    """``amd-smi list --csv`` -> one dict per GPU row (keys from the header: gpu, gpu_bdf, ... node_id).

    Lines before the ``gpu,...`` header and rows whose ``gpu`` field is not an integer (blank lines,
    ``...``) are ignored.
    """
    lines = (text or "").splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip().lower().startswith("gpu,")), None)
    if start is None:
        header = ["gpu"]
        body = lines
    else:
        header = [field.strip().lower() for field in lines[start].split(",")]
        body = lines[start + 1 :]
    rows = []
    for record in csv.reader(io.StringIO("\n".join(body))):
        if not record or not record[0].strip().isdigit():
            continue
        rows.append({key: (record[i].strip() if i < len(record) else "") for i, key in enumerate(header)})
    return rows


def amd_smi_gpu_nodes(rows: Sequence[Mapping[str, str]]) -> dict[int, int]:
    """GPU index -> KFD node id from ``amd-smi list --csv`` rows (ROCm >= 6.4 lists ``node_id``)."""
    nodes = {}
    for row in rows:
        gpu, node = row.get("gpu", ""), row.get("node_id", "")
        if gpu.isdigit() and node.isdigit():
            nodes[int(gpu)] = int(node)
    return nodes


def _amd_smi_gpu_sections(text: str) -> list[tuple[int, str]]:
    """Split amd-smi plain text into ``(gpu index, section text)`` at each ``GPU: <n>`` line."""
    sections: list[tuple[int, str]] = []
    current: Optional[int] = None
    buf: list[str] = []
    for line in (text or "").splitlines():
        match = re.match(r"^GPU:\s*(\d+)\s*$", line.strip())
        if match and not line.startswith((" ", "\t")):
            if current is not None:
                sections.append((current, "\n".join(buf)))
            current, buf = int(match.group(1)), []
        elif current is not None:
            buf.append(line)
    if current is not None:
        sections.append((current, "\n".join(buf)))
    return sections


def parse_amd_smi_static_market_name(text: str) -> str:
    """``amd-smi static [--asic] -g 0`` -> the first ``MARKET_NAME`` (older builds: ``Market Name``)."""
    match = re.search(r"^\s*MARKET[_ ]NAME\s*:\s*(.*?)\s*$", text or "", re.IGNORECASE | re.MULTILINE)
    return match.group(1) if match else ""


def parse_amd_smi_static_target_gfx(text: str) -> str:
    """``amd-smi static --asic`` -> ``TARGET_GRAPHICS_VERSION`` (e.g. gfx950); "" on builds without it."""
    match = re.search(r"^\s*TARGET_GRAPHICS_VERSION\s*:\s*(gfx[0-9a-z]+)", text or "", re.MULTILINE)
    return match.group(1) if match else ""


def parse_amd_smi_list_json_render(text: str) -> list[int]:
    """``amd-smi list -e --json`` -> render minors sorted by GPU index (``renderD128`` -> 128).

    The plain-text form (``amd-smi list -e``: ``GPU: n`` ... ``RENDER: renderD128``) is accepted too.
    Entries whose render node is ``N/A`` are skipped.
    """
    pairs: list[tuple[int, int]] = []
    try:
        data = json.loads(text)
    except (TypeError, ValueError):
        data = None
    if isinstance(data, dict):
        data = data.get("gpu_data", data.get("gpus", [data]))
    if isinstance(data, list):
        for entry in data:
            if not isinstance(entry, dict):
                continue
            minor = _render_minor(entry.get("render"))
            gpu = entry.get("gpu")
            if minor is not None and isinstance(gpu, int) and not isinstance(gpu, bool):
                pairs.append((gpu, minor))
    else:
        for gpu, section in _amd_smi_gpu_sections(text):
            match = re.search(r"^\s*RENDER\s*:\s*(\S+)", section, re.MULTILINE)
            minor = _render_minor(match.group(1)) if match else None
            if minor is not None:
                pairs.append((gpu, minor))
    return [minor for _node, minor in sorted(pairs)]


def _render_minor(value: Any) -> Optional[int]:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = re.search(r"renderD(\d+)", str(value or ""))
    return int(match.group(1)) if match else None


def parse_rocm_smi_showid_csv(text: str) -> int:
    """``rocm-smi --showid --csv`` -> the GPU count (``card<n>`` rows).

    The plain ``rocm-smi --showid`` form is accepted too (distinct ``GPU[n]`` indices).
    """
    cards = set()
    indices = set()
    for line in (text or "").splitlines():
        line = line.strip()
        match = re.match(r"^card(\d+)\s*,", line)
        if match:
            cards.add(int(match.group(1)))
            continue
        match = re.match(r"^GPU\[(\d+)\]", line)
        if match:
            indices.add(int(match.group(1)))
    return len(cards) if cards else len(indices)


def parse_rocm_smi_product_name(text: str) -> str:
    """``rocm-smi --showproductname`` -> the first ``Card Series`` (``Card series`` on older builds)."""
    for line in (text or "").splitlines():
        match = re.search(r"Card series\s*:\s*(.*?)\s*$", line, re.IGNORECASE)
        if match and match.group(1):
            return match.group(1)
    return ""


_ROCMINFO_NAME = re.compile(r"^\s*Name:\s*(gfx[0-9a-f]+)\s*$", re.MULTILINE)


def parse_rocminfo_arch(text: str) -> str:
    """``rocminfo`` -> the first ``gfx...`` architecture (the first GPU agent's ``Name``)."""
    match = _ROCMINFO_NAME.search(text or "")
    if not match:
        match = re.search(r"\b(gfx[0-9a-f]+)", text or "")
    return match.group(1) if match else ""


def parse_hipconfig_version(text: str) -> str:
    """``hipconfig --version`` (``6.0.32830-d62f6a171``) -> the ROCm ``major.minor`` (``6.0``)."""
    match = re.search(r"(\d+)\.(\d+)", text or "")
    return f"{match.group(1)}.{match.group(2)}" if match else ""


def parse_kfd_properties(text: str) -> dict[str, int]:
    """A KFD topology node ``properties`` file (``key value`` lines) -> dict of the integer values."""
    props = {}
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            props[parts[0]] = int(parts[1])
    return props


def read_kfd_render_minors(sysfs_root: str = "/") -> list[tuple[int, int]]:
    """``(node id, drm_render_minor)`` of every KFD topology node with a render node, in node order.

    Read directly from ``<sysfs_root>/sys/devices/virtual/kfd/kfd/topology/nodes/*/properties``
    (``/sys/class/kfd/...`` as a fallback); CPU nodes (minor 0) are dropped.
    """
    for base in (KFD_TOPOLOGY_NODES, KFD_TOPOLOGY_NODES_CLASS):
        directory = _host_path(sysfs_root, base)
        try:
            entries = os.listdir(directory)
        except OSError:
            continue
        minors = []
        for node in sorted(int(name) for name in entries if name.isdigit()):
            text = _read_file(os.path.join(directory, str(node), "properties"))
            minor = parse_kfd_properties(text or "").get("drm_render_minor", 0)
            if minor > 0:
                minors.append((node, minor))
        return minors
    return []


# --- ROCm root (spec 9.4) --------------------------------------------------------------------------


def _qualifies_as_rocm(root: str, path: str) -> bool:
    def exists(rel: str) -> bool:
        return os.path.exists(_host_path(root, os.path.join(path, rel)))

    return exists("bin/rocminfo") or (exists("bin/amd-smi") and exists("bin/rocm-smi")) or exists(".info/version")


def _version_key(path: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", os.path.basename(path)))


def resolve_rocm_path(
    overrides: Optional[Mapping[str, Any]] = None,
    which: Which = shutil.which,
    sysfs_root: str = "/",
    environ: Optional[Mapping[str, str]] = None,
) -> str:
    """The host ROCm root: context ``MAD_ROCM_PATH``, else the first qualifying candidate, else
    ``$ROCM_PATH``, else ``/opt/rocm``.

    Candidates (unless ``MAD_AUTO_ROCM_PATH=0``): /opt/rocm, /opt/rocm-* (newest first), $ROCM_PATH /
    $ROCM_HOME / $HIP_PATH and up to 4 of their parents, /usr/local/rocm, ~/rocm, ~/therock, then the
    roots of rocminfo / amd-smi / rocm-smi found on PATH. A candidate qualifies when it has
    bin/rocminfo, or bin/amd-smi and bin/rocm-smi, or .info/version. ``rocm-sdk path --root`` is not run.
    """
    env = os.environ if environ is None else environ
    given = str((overrides or {}).get("MAD_ROCM_PATH") or "").strip()
    if given:
        return given
    if str(env.get("MAD_AUTO_ROCM_PATH", "")).strip() != "0":
        candidates: list[str] = [DEFAULT_ROCM]
        try:
            versioned = [
                os.path.join("/opt", name)
                for name in os.listdir(_host_path(sysfs_root, "/opt"))
                if name.startswith("rocm-")
            ]
        except OSError:
            versioned = []
        candidates += sorted(versioned, key=_version_key, reverse=True)
        for var in ("ROCM_PATH", "ROCM_HOME", "HIP_PATH"):
            value = str(env.get(var) or "").strip()
            path = value
            for _level in range(5):
                if not path or path == os.path.dirname(path):
                    break
                candidates.append(path)
                path = os.path.dirname(path.rstrip("/"))
        candidates += ["/usr/local/rocm", os.path.expanduser("~/rocm"), os.path.expanduser("~/therock")]
        for path in candidates:
            if os.path.isabs(path) and _qualifies_as_rocm(sysfs_root, path):
                return os.path.normpath(path)
        for tool in ("rocminfo", "amd-smi", "rocm-smi"):
            located = _safe_which(which, tool)
            if located:
                bin_dir = os.path.dirname(os.path.realpath(located) if sysfs_root == "/" else located)
                if os.path.basename(bin_dir) == "bin":
                    return os.path.dirname(bin_dir)
    return str(env.get("ROCM_PATH") or "").strip() or DEFAULT_ROCM


# --- detection -------------------------------------------------------------------------------------


def _host_path(root: str, path: str) -> str:
    if not root or root == "/":
        return path
    return os.path.join(root, path.lstrip("/"))


def _read_file(path: str) -> Optional[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return None


def _safe_which(which: Which, name: str) -> Optional[str]:
    try:
        return which(name)
    except Exception:  # noqa: BLE001 - a broken lookup only means "not found"
        return None


class _Prober:
    """Runs probes with a timeout and turns every failure into ``None``."""

    def __init__(self, run: Runner, which: Which, sysfs_root: str, timeout: float) -> None:
        self.run = run
        self.which = which
        self.root = sysfs_root
        self.timeout = timeout

    def locate(self, name: str, *fixed: str) -> Optional[str]:
        """The tool from PATH, else the first fixed path that exists (None when absent)."""
        found = _safe_which(self.which, name)
        if found:
            return found
        for path in fixed:
            if path and os.path.exists(_host_path(self.root, path)):
                return path
        return None

    def stdout(self, argv: Sequence[str]) -> Optional[str]:
        try:
            result = self.run(list(argv), timeout=self.timeout)
        except Exception:  # noqa: BLE001 - a probe never raises
            return None
        if not isinstance(result, CommandResult) or result.rc != 0:
            return None
        return result.stdout or ""


def _env_overrides(overrides: Mapping[str, Any]) -> Mapping[str, Any]:
    env = overrides.get("docker_env_vars")
    return env if isinstance(env, Mapping) else {}


def _given_str(env: Mapping[str, Any], key: str) -> Optional[str]:
    value = env.get(key)
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _given_int(env: Mapping[str, Any], key: str) -> Optional[int]:
    text = _given_str(env, key)
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        return None


def detect_host(
    run: Runner = run_command,
    which: Which = shutil.which,
    overrides: Optional[Mapping[str, Any]] = None,
    sysfs_root: str = "/",
) -> HostInfo:
    """Detect the GPU facts of this host (spec 9.3), NVIDIA first, then AMD, else CPU.

    ``overrides`` is the run context: ``gpu_vendor`` and ``docker_env_vars.MAD_SYSTEM_NGPUS`` /
    ``MAD_SYSTEM_GPU_ARCHITECTURE`` / ``MAD_SYSTEM_GPU_PRODUCT_NAME`` / ``MAD_SYSTEM_HIP_VERSION`` win
    over detection and skip the probes that would find them; ``MAD_ROCM_PATH`` sets the ROCm root;
    ``docker_gpus`` is validated (ConfigError when malformed).
    """
    ctx: Mapping[str, Any] = overrides if isinstance(overrides, Mapping) else {}
    if ctx.get("docker_gpus") not in (None, ""):
        parse_gpu_list(ctx.get("docker_gpus"))
    env = _env_overrides(ctx)
    vendor = str(ctx.get("gpu_vendor") or "").strip().upper()
    if vendor not in VENDORS:
        vendor = ""
    if vendor == "CPU":
        return CPU_HOST

    given = {
        "ngpus": _given_int(env, "MAD_SYSTEM_NGPUS"),
        "arch": _given_str(env, "MAD_SYSTEM_GPU_ARCHITECTURE"),
        "product": _given_str(env, "MAD_SYSTEM_GPU_PRODUCT_NAME"),
        "hip": _given_str(env, "MAD_SYSTEM_HIP_VERSION"),
    }
    probe = _Prober(run, which, sysfs_root, PROBE_TIMEOUT)

    if vendor in ("", "NVIDIA"):
        host = _detect_nvidia(probe, given, known=vendor == "NVIDIA")
        if host is not None:
            return host
    if vendor in ("", "AMD"):
        host = _detect_amd(probe, given, ctx, known=vendor == "AMD")
        if host is not None:
            return host
    return CPU_HOST


def _detect_nvidia(probe: _Prober, given: Dict[str, Any], known: bool) -> Optional[HostInfo]:
    smi = probe.locate("nvidia-smi", NVIDIA_SMI_FIXED)
    if smi is None and not known:
        return None
    names: List[str] = []
    if smi is not None and (not known or given["ngpus"] is None or given["arch"] is None):
        listing = probe.stdout([smi, "-L"])
        if listing is None and not known:
            return None
        names = parse_nvidia_smi_list(listing or "")
    ngpus = given["ngpus"] if given["ngpus"] is not None else len(names)
    arch = given["arch"] if given["arch"] is not None else (names[0] if names else "")
    product = given["product"]
    if product is None:
        product = ""
        if smi is not None:
            out = probe.stdout([smi, "--query-gpu=name", "--format=csv,noheader,nounits", "-i", "0"])
            product = parse_nvidia_smi_query_name(out or "")
    hip = given["hip"]
    if hip is None:
        hip = ""
        nvcc = probe.locate("nvcc", NVCC_FIXED)
        if nvcc is not None:
            hip = parse_nvcc_version(probe.stdout([nvcc, "--version"]) or "")
        if not hip and smi is not None:
            hip = parse_nvidia_smi_cuda_version(probe.stdout([smi]) or "")
    return HostInfo("NVIDIA", ngpus, arch, product, hip, (), "")


def _detect_amd(probe: _Prober, given: Dict[str, Any], ctx: Mapping[str, Any], known: bool) -> Optional[HostInfo]:
    rocm = resolve_rocm_path(ctx, probe.which, probe.root)
    amd_smi = probe.locate("amd-smi", os.path.join(rocm, "bin/amd-smi"), AMD_SMI_FIXED_EXTRA)
    rocm_smi = probe.locate("rocm-smi", os.path.join(rocm, "bin/rocm-smi"))
    if not known and amd_smi is None and rocm_smi is None:
        return None

    detected = known
    rows: Optional[List[Dict[str, str]]] = None
    count: Optional[int] = None
    if amd_smi is not None and (not known or given["ngpus"] is None):
        out = probe.stdout([amd_smi, "list", "--csv"])
        if out is not None:
            detected = True
            rows = parse_amd_smi_list_csv(out)
            count = len(rows)
    if rocm_smi is not None and (not detected or (given["ngpus"] is None and not count)):
        out = probe.stdout([rocm_smi, "--showid", "--csv"])
        if out is not None:
            detected = True
            count = parse_rocm_smi_showid_csv(out)
    if not detected:
        return None
    ngpus = given["ngpus"] if given["ngpus"] is not None else (count or 0)

    static_out: Optional[str] = None

    def amd_smi_static() -> str:
        nonlocal static_out
        if static_out is None:
            static_out = ""
            if amd_smi is not None:
                static_out = probe.stdout([amd_smi, "static", "--asic", "-g", "0"]) or ""
        return static_out

    arch = given["arch"]
    if arch is None:
        arch = ""
        rocminfo = probe.locate("rocminfo", os.path.join(rocm, "bin/rocminfo"))
        if rocminfo is not None:
            arch = parse_rocminfo_arch(probe.stdout([rocminfo]) or "")
        if not arch:
            arch = parse_amd_smi_static_target_gfx(amd_smi_static())

    product = given["product"]
    if product is None:
        product = parse_amd_smi_static_market_name(amd_smi_static())
        if not product and rocm_smi is not None:
            product = parse_rocm_smi_product_name(probe.stdout([rocm_smi, "--showproductname"]) or "")

    hip = given["hip"]
    if hip is None:
        hip = ""
        hipconfig = probe.locate("hipconfig", os.path.join(rocm, "bin/hipconfig"))
        if hipconfig is not None:
            hip = parse_hipconfig_version(probe.stdout([hipconfig, "--version"]) or "")

    render = _render_devices(probe, rows, amd_smi)
    return HostInfo("AMD", ngpus, arch, product, hip, render, rocm)


def _render_devices(
    probe: _Prober, rows: Optional[Sequence[Mapping[str, str]]], amd_smi: Optional[str]
) -> Tuple[int, ...]:
    """Render minor per GPU index: KFD topology (mapped through amd-smi's node ids when listed, else in
    node order); without a readable topology, the ``render`` field of ``amd-smi list -e --json``."""
    kfd = read_kfd_render_minors(probe.root)
    if kfd:
        by_node = dict(kfd)
        gpu_nodes = amd_smi_gpu_nodes(rows or [])
        if gpu_nodes and all(node in by_node for node in gpu_nodes.values()):
            return tuple(by_node[gpu_nodes[gpu]] for gpu in sorted(gpu_nodes))
        return tuple(minor for _node, minor in kfd)
    if amd_smi is not None:
        out = probe.stdout([amd_smi, "list", "-e", "--json"])
        if out is not None:
            return tuple(parse_amd_smi_list_json_render(out))
    return ()
