"""GPU host facts (spec 9.3, 9.4, 6.5, 6.13) on recorded outputs of the real tools.

The recordings under data/hostinfo/ come from different machines (see data/hostinfo/SOURCES.md), so a
simulated host mixes e.g. an 8-GPU listing with a 4-GPU topology: the detect_host tests check that each
fact comes from the right probe, not that the recordings agree with each other.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path
from typing import Dict, Optional, Tuple, Union

import pytest

from ansible_collections.rocm.madengine.plugins.module_utils import hostinfo
from ansible_collections.rocm.madengine.plugins.module_utils.commands import CommandResult
from ansible_collections.rocm.madengine.plugins.module_utils.errors import ConfigError
from ansible_collections.rocm.madengine.plugins.module_utils.hostinfo import (
    CPU_HOST,
    PROBE_TIMEOUT,
    HostInfo,
    amd_smi_gpu_nodes,
    detect_host,
    parse_amd_smi_list_csv,
    parse_amd_smi_list_json_render,
    parse_amd_smi_static_market_name,
    parse_amd_smi_static_target_gfx,
    parse_gpu_list,
    parse_hipconfig_version,
    parse_kfd_properties,
    parse_nvcc_version,
    parse_nvidia_smi_cuda_version,
    parse_nvidia_smi_list,
    parse_nvidia_smi_query_name,
    parse_rocm_smi_product_name,
    parse_rocm_smi_showid_csv,
    parse_rocminfo_arch,
    read_kfd_render_minors,
    resolve_rocm_path,
    short_arch_name,
)

DATA = Path(__file__).parent / "data" / "hostinfo"
KFD_NODES = "sys/devices/virtual/kfd/kfd/topology/nodes"


def data(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


Output = Union[str, Tuple[int, str], BaseException]


class FakeRunner:
    """Replays recorded stdout keyed by argv; an argv with no recording exits 127 like a missing tool."""

    def __init__(self, outputs: Optional[Dict[Tuple[str, ...], Output]] = None) -> None:
        self.outputs = dict(outputs or {})
        self.calls: list[tuple[tuple[str, ...], Optional[float]]] = []

    def __call__(self, argv, timeout=None, env=None, input_text=None):
        key = tuple(argv)
        self.calls.append((key, timeout))
        out = self.outputs.get(key)
        if out is None:
            return CommandResult(key, 127, "", f"{key[0]}: not found")
        if isinstance(out, BaseException):
            raise out
        rc, text = out if isinstance(out, tuple) else (0, out)
        return CommandResult(key, rc, text, "")

    @property
    def argvs(self) -> list[tuple[str, ...]]:
        return [argv for argv, _ in self.calls]


def fake_which(tools: Dict[str, str]):
    return lambda name: tools.get(name)


def kfd_tree(root: Path, nodes: Dict[int, str], base: str = KFD_NODES) -> Path:
    """A sysfs tree under root whose topology nodes have the given properties text."""
    for node, text in nodes.items():
        directory = root / base / str(node)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "properties").write_text(text, encoding="utf-8")
    return root


def mi210_nodes() -> Dict[int, str]:
    """The recorded 8 x MI210 topology (2 CPU nodes, 8 GPU nodes)."""
    return {n: data(f"kfd-topology.mi210x8/nodes/{n}/properties") for n in range(10)}


def mi300a_nodes() -> Dict[int, str]:
    """The recorded MI300A `cat nodes/*/properties` dump split back into nodes 0..7."""
    chunks = [c.strip() + "\n" for c in data("kfd-properties-cat.mi300a.txt").split("-" * 46) if c.strip()]
    return dict(enumerate(chunks))


def csv_from_list_e(text: str) -> str:
    """The recorded `amd-smi list -e` text in the `amd-smi list --csv` layout of ROCm >= 6.4 (header as
    in the amd-smi CLI source: gpu,gpu_bdf,gpu_uuid,kfd_id,node_id,partition_id). Derived, not recorded:
    no public `--csv` recording with node ids was found (SOURCES.md)."""
    lines = ["gpu,gpu_bdf,gpu_uuid,kfd_id,node_id,partition_id"]
    for gpu, section in hostinfo._amd_smi_gpu_sections(text):
        field = dict(re.findall(r"^\s*([A-Z_]+):\s*(.*?)\s*$", section, re.MULTILINE))
        lines.append(",".join([str(gpu)] + [field[k] for k in ("BDF", "UUID", "KFD_ID", "NODE_ID", "PARTITION_ID")]))
    return "\n".join(lines) + "\n"


def json_from_list_e(text: str) -> str:
    """The recorded `amd-smi list -e` text as `amd-smi list -e --json` (keys as in the amd-smi CLI
    source: gpu, bdf, uuid, kfd_id, node_id, partition_id, render, card, hsa_id, hip_id, hip_uuid).
    Derived, not recorded: no public JSON recording was found (SOURCES.md)."""
    entries = []
    for gpu, section in hostinfo._amd_smi_gpu_sections(text):
        entry: Dict[str, object] = {"gpu": gpu}
        for key, value in re.findall(r"^\s*([A-Z_]+):\s*(.*?)\s*$", section, re.MULTILINE):
            entry[key.lower()] = int(value) if value.isdigit() else value
        entries.append(entry)
    return json.dumps(entries, indent=4)


@pytest.fixture(autouse=True)
def _clean_rocm_env(monkeypatch):
    for var in ("ROCM_PATH", "ROCM_HOME", "HIP_PATH", "MAD_AUTO_ROCM_PATH"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", "/nonexistent-home-for-tests")


# --- NVIDIA parsers --------------------------------------------------------------------------------


def test_nvidia_smi_list_h100x8():
    names = parse_nvidia_smi_list(data("nvidia-smi-L.h100x8.txt"))
    assert names == ["NVIDIA H100 80GB HBM3"] * 8


def test_nvidia_smi_list_quadro():
    assert parse_nvidia_smi_list(data("nvidia-smi-L.quadro-rtx4000x2.txt")) == ["Quadro RTX 4000"] * 2


def test_nvidia_smi_list_ignores_other_output():
    assert parse_nvidia_smi_list(data("nvidia-smi.h100x8.txt")) == []
    assert parse_nvidia_smi_list("") == []


def test_nvidia_smi_query_name_keeps_first_field():
    assert parse_nvidia_smi_query_name(data("nvidia-smi-query-name.h100nvl.txt")) == "NVIDIA H100 NVL"
    assert parse_nvidia_smi_query_name("\n") == ""


@pytest.mark.parametrize(
    "name, version", [("nvcc-version.cuda11.1.txt", "11.1"), ("nvcc-version.cuda10.1.txt", "10.1")]
)
def test_nvcc_version(name, version):
    assert parse_nvcc_version(data(name)) == version


def test_nvcc_version_garbage():
    assert parse_nvcc_version("bash: nvcc: command not found") == ""


def test_nvidia_smi_cuda_version_from_header():
    assert parse_nvidia_smi_cuda_version(data("nvidia-smi.h100x8.txt")) == "12.7"
    assert parse_nvidia_smi_cuda_version(data("nvidia-smi-L.h100x8.txt")) == ""


# --- AMD parsers -----------------------------------------------------------------------------------


def test_amd_smi_list_csv_mi300x_cpx():
    rows = parse_amd_smi_list_csv(data("amd-smi-list-csv.mi300x-cpx.txt"))
    # the recording is the documented excerpt: partitions 0-7 and 56-63, the "..." line is skipped
    assert [int(r["gpu"]) for r in rows] == list(range(8)) + list(range(56, 64))
    assert rows[0]["gpu_bdf"] == "0000:0c:00.0"
    assert rows[-1]["gpu_uuid"] == "bbff74a1-0000-1000-80b0-9363b4d6f06e"
    assert amd_smi_gpu_nodes(rows) == {}  # this amd-smi version prints no node_id column


def test_amd_smi_list_csv_with_node_ids():
    rows = parse_amd_smi_list_csv(csv_from_list_e(data("amd-smi-list-e.mi300x-cpx.txt")))
    assert len(rows) == 2
    assert amd_smi_gpu_nodes(rows) == {0: 2, 1: 3}


def test_amd_smi_list_csv_tolerates_noise():
    text = "WARNING: something\n" + data("amd-smi-list-csv.mi300x-cpx.txt") + "\n\n"
    assert len(parse_amd_smi_list_csv(text)) == 16
    assert parse_amd_smi_list_csv("") == []


@pytest.mark.parametrize(
    "name, market",
    [
        ("amd-smi-static.mi300x.txt", "MI300X-O"),
        ("amd-smi-static.mi350x.txt", "AMD Instinct MI350X"),
        ("amd-smi-static.mi210.txt", "AMD Instinct MI210"),
    ],
)
def test_amd_smi_static_market_name(name, market):
    assert parse_amd_smi_static_market_name(data(name)) == market


def test_amd_smi_static_target_gfx():
    assert parse_amd_smi_static_target_gfx(data("amd-smi-static.mi350x.txt")) == "gfx950"
    assert parse_amd_smi_static_target_gfx(data("amd-smi-static.mi300x.txt")) == ""  # older amd-smi


def test_amd_smi_list_render_from_text():
    assert parse_amd_smi_list_json_render(data("amd-smi-list-e.mi300x-cpx.txt")) == [128, 129]
    assert parse_amd_smi_list_json_render(data("amd-smi-list-e.rocm640.txt")) == [128]
    # before the ROCm 6.4.1 fix partitions reported RENDER: N/A; such entries are skipped
    assert parse_amd_smi_list_json_render(data("amd-smi-list-e.mi300x-cpx-before-fix.txt")) == [128]


def test_amd_smi_list_render_from_json_sorted_by_gpu():
    doc = json.loads(json_from_list_e(data("amd-smi-list-e.mi300x-cpx.txt")))
    assert parse_amd_smi_list_json_render(json.dumps(doc)) == [128, 129]
    assert parse_amd_smi_list_json_render(json.dumps(list(reversed(doc)))) == [128, 129]
    assert parse_amd_smi_list_json_render("") == []
    assert parse_amd_smi_list_json_render("not json") == []


def test_rocm_smi_showid():
    assert parse_rocm_smi_showid_csv(data("rocm-smi-showid-csv.mi300x.txt")) == 2
    assert parse_rocm_smi_showid_csv(data("rocm-smi-showid.mi300a.txt")) == 4
    assert parse_rocm_smi_showid_csv(data("rocm-smi-showid.mi210x3.txt")) == 3
    assert parse_rocm_smi_showid_csv("") == 0


def test_rocm_smi_product_name():
    assert parse_rocm_smi_product_name(data("rocm-smi-showproduct.mi300a.txt")) == "Aqua Vanjaram [Instinct MI300A]"
    assert parse_rocm_smi_product_name(data("rocm-smi-showid.mi300a.txt")) == ""


def test_rocminfo_arch():
    assert parse_rocminfo_arch(data("rocminfo.mi300x.txt")) == "gfx942"
    assert parse_rocminfo_arch("ROCk module is loaded\n") == ""


@pytest.mark.parametrize(
    "name, version", [("hipconfig-version.rocm6.0.txt", "6.0"), ("hipconfig-version.rocm7.2.txt", "7.2")]
)
def test_hipconfig_version(name, version):
    assert parse_hipconfig_version(data(name)) == version


def test_kfd_properties():
    gpu = parse_kfd_properties(data("kfd-topology.mi210x8/nodes/2/properties"))
    assert gpu["drm_render_minor"] == 128
    assert gpu["gfx_target_version"] == 90010
    assert gpu["unique_id"] == 1801979520617338022
    cpu = parse_kfd_properties(data("kfd-topology.mi210x8/nodes/0/properties"))
    assert cpu["drm_render_minor"] == 0 and cpu["cpu_cores_count"] == 64


def test_kfd_render_minors_mi210x8(tmp_path):
    kfd_tree(tmp_path, mi210_nodes())
    assert read_kfd_render_minors(str(tmp_path)) == [(n, 126 + n) for n in range(2, 10)]


def test_kfd_render_minors_mi300a_strided(tmp_path):
    kfd_tree(tmp_path, mi300a_nodes())
    assert read_kfd_render_minors(str(tmp_path)) == [(4, 128), (5, 136), (6, 144), (7, 152)]


def test_kfd_render_minors_numeric_node_order(tmp_path):
    nodes = mi210_nodes()
    kfd_tree(tmp_path, {0: nodes[0], 2: nodes[2], 10: nodes[9], 11: "garbage\n"})
    (tmp_path / KFD_NODES / "generation_id").mkdir()  # non-numeric entries are ignored
    assert read_kfd_render_minors(str(tmp_path)) == [(2, 128), (10, 135)]


def test_kfd_render_minors_class_path_and_missing(tmp_path):
    assert read_kfd_render_minors(str(tmp_path)) == []
    kfd_tree(tmp_path, {3: mi210_nodes()[3]}, base="sys/class/kfd/kfd/topology/nodes")
    assert read_kfd_render_minors(str(tmp_path)) == [(3, 129)]


# --- docker_gpus, short_arch -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec, gpus",
    [
        ("0,2-4,5-5,7", [0, 2, 3, 4, 5, 7]),
        ("3,1,1,2-3", [1, 2, 3]),
        (" 0 - 3 ", [0, 1, 2, 3]),
        ("0-7", list(range(8))),
        ("", []),
        ("  ", []),
        (None, []),
        (5, [5]),
        ([0, "2-3"], [0, 2, 3]),
    ],
)
def test_parse_gpu_list(spec, gpus):
    assert parse_gpu_list(spec) == gpus


@pytest.mark.parametrize("spec", ["a", "1-", "-1", "4-2", "0,,1", "1.5", "0;1", "0,", True, {"a": 1}])
def test_parse_gpu_list_errors(spec):
    with pytest.raises(ConfigError) as err:
        parse_gpu_list(spec)
    assert "docker_gpus" in str(err.value)
    assert err.value.exit_code == 4


def test_docker_gpus_default():
    assert HostInfo("AMD", 8, "gfx942", "", "", (), "").docker_gpus() == "0-7"
    assert HostInfo("NVIDIA", 1, "", "", "", (), "").docker_gpus() == "0-0"
    assert HostInfo("AMD", 0, "", "", "", (), "").docker_gpus() == ""
    assert CPU_HOST.docker_gpus() == ""


@pytest.mark.parametrize(
    "vendor, arch, short",
    [
        ("NVIDIA", "NVIDIA A100-SXM4-40GB", "A100"),
        ("NVIDIA", "NVIDIA H100 PCIe", "H100"),
        ("NVIDIA", "NVIDIA H100 80GB HBM3", "H100"),
        ("NVIDIA", "NVIDIA H100 NVL", "H100"),
        ("NVIDIA", "Quadro RTX 4000", "Quadro"),
        ("AMD", "gfx942", "gfx942"),
        ("AMD", "gfx90a:sramecc+:xnack-", "gfx90a"),
        ("AMD", "", ""),
        ("CPU", "", ""),
    ],
)
def test_short_arch(vendor, arch, short):
    assert HostInfo(vendor, 1, arch, "", "", (), "").short_arch() == short
    assert short_arch_name(vendor, arch) == short


# --- ROCm root -------------------------------------------------------------------------------------


def touch(root: Path, rel: str) -> None:
    path = root / rel.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("", encoding="utf-8")


def test_rocm_path_versioned_newest_first(tmp_path):
    touch(tmp_path, "/opt/rocm-6.3.1/bin/rocminfo")
    touch(tmp_path, "/opt/rocm-6.10.0/.info/version")
    touch(tmp_path, "/opt/rocm-6.4.1/bin/amd-smi")  # amd-smi alone does not qualify
    assert resolve_rocm_path({}, fake_which({}), str(tmp_path), environ={}) == "/opt/rocm-6.10.0"


def test_rocm_path_opt_rocm_first(tmp_path):
    touch(tmp_path, "/opt/rocm/bin/amd-smi")
    touch(tmp_path, "/opt/rocm/bin/rocm-smi")
    touch(tmp_path, "/opt/rocm-6.4.1/bin/rocminfo")
    assert resolve_rocm_path({}, fake_which({}), str(tmp_path), environ={}) == "/opt/rocm"


def test_rocm_path_context_wins(tmp_path):
    touch(tmp_path, "/opt/rocm/bin/rocminfo")
    assert resolve_rocm_path({"MAD_ROCM_PATH": "/my/rocm"}, fake_which({}), str(tmp_path), environ={}) == "/my/rocm"


def test_rocm_path_from_env_parent(tmp_path):
    touch(tmp_path, "/srv/rocm/bin/rocminfo")
    env = {"HIP_PATH": "/srv/rocm/lib/llvm"}
    assert resolve_rocm_path({}, fake_which({}), str(tmp_path), environ=env) == "/srv/rocm"


def test_rocm_path_from_tool_on_path(tmp_path):
    which = fake_which({"amd-smi": "/usr/local/rocm-7/bin/amd-smi"})
    assert resolve_rocm_path({}, which, str(tmp_path), environ={}) == "/usr/local/rocm-7"


def test_rocm_path_fallbacks(tmp_path):
    touch(tmp_path, "/opt/rocm/bin/rocminfo")
    env = {"MAD_AUTO_ROCM_PATH": "0", "ROCM_PATH": "/env/rocm"}
    assert resolve_rocm_path({}, fake_which({}), str(tmp_path), environ=env) == "/env/rocm"
    assert resolve_rocm_path({}, fake_which({}), str(tmp_path / "empty"), environ={}) == "/opt/rocm"


# --- detect_host: NVIDIA ---------------------------------------------------------------------------

NV_SMI = "/usr/bin/nvidia-smi"
NV_QUERY = (NV_SMI, "--query-gpu=name", "--format=csv,noheader,nounits", "-i", "0")
NVCC = "/usr/local/cuda/bin/nvcc"


def nvidia_runner(**extra: Output) -> FakeRunner:
    outputs: Dict[Tuple[str, ...], Output] = {
        (NV_SMI, "-L"): data("nvidia-smi-L.h100x8.txt"),
        NV_QUERY: data("nvidia-smi-query-name.h100nvl.txt"),
        (NVCC, "--version"): data("nvcc-version.cuda11.1.txt"),
        (NV_SMI,): data("nvidia-smi.h100x8.txt"),
    }
    outputs.update({tuple(k.split("|")): v for k, v in extra.items()})
    return FakeRunner(outputs)


def test_detect_nvidia_host(tmp_path):
    run = nvidia_runner()
    host = detect_host(run, fake_which({"nvidia-smi": NV_SMI, "nvcc": NVCC}), {}, str(tmp_path))
    assert host == HostInfo("NVIDIA", 8, "NVIDIA H100 80GB HBM3", "NVIDIA H100 NVL", "11.1", (), "")
    assert host.docker_gpus() == "0-7"
    assert host.short_arch() == "H100"
    assert run.argvs == [(NV_SMI, "-L"), NV_QUERY, (NVCC, "--version")]
    assert all(timeout == PROBE_TIMEOUT for _, timeout in run.calls)


def test_detect_nvidia_fixed_path_and_driver_cuda_version(tmp_path):
    touch(tmp_path, NV_SMI)  # found at /usr/bin/nvidia-smi, not on PATH; no nvcc anywhere
    run = nvidia_runner()
    host = detect_host(run, fake_which({}), {}, str(tmp_path))
    assert host.gpu_vendor == "NVIDIA" and host.ngpus == 8
    assert host.hip_version == "12.7"  # CUDA version from the nvidia-smi header
    assert run.argvs == [(NV_SMI, "-L"), NV_QUERY, (NV_SMI,)]


def test_detect_nvidia_smi_failing_is_not_nvidia(tmp_path):
    run = FakeRunner({(NV_SMI, "-L"): (9, "NVIDIA-SMI has failed because it couldn't communicate with the driver")})
    host = detect_host(run, fake_which({"nvidia-smi": NV_SMI}), {}, str(tmp_path))
    assert host == CPU_HOST
    assert run.argvs == [(NV_SMI, "-L")]


# --- detect_host: AMD ------------------------------------------------------------------------------

AMD_SMI = "/opt/rocm/bin/amd-smi"
ROCM_SMI = "/opt/rocm/bin/rocm-smi"
ROCMINFO = "/opt/rocm/bin/rocminfo"
HIPCONFIG = "/opt/rocm/bin/hipconfig"
AMD_TOOLS = {"amd-smi": AMD_SMI, "rocm-smi": ROCM_SMI, "rocminfo": ROCMINFO, "hipconfig": HIPCONFIG}


def test_detect_amd_host_with_amd_smi(tmp_path):
    kfd_tree(tmp_path, mi210_nodes())
    run = FakeRunner(
        {
            (AMD_SMI, "list", "--csv"): data("amd-smi-list-csv.mi300x-cpx.txt"),
            (ROCMINFO,): data("rocminfo.mi300x.txt"),
            (AMD_SMI, "static", "--asic", "-g", "0"): data("amd-smi-static.mi300x.txt"),
            (HIPCONFIG, "--version"): data("hipconfig-version.rocm6.0.txt"),
        }
    )
    host = detect_host(run, fake_which(AMD_TOOLS), {}, str(tmp_path))
    assert host == HostInfo("AMD", 16, "gfx942", "MI300X-O", "6.0", tuple(range(128, 136)), "/opt/rocm")
    assert host.docker_gpus() == "0-15"
    assert host.short_arch() == "gfx942"
    assert run.argvs == [
        (AMD_SMI, "list", "--csv"),
        (ROCMINFO,),
        (AMD_SMI, "static", "--asic", "-g", "0"),
        (HIPCONFIG, "--version"),
    ]
    assert all(timeout == PROBE_TIMEOUT for _, timeout in run.calls)


def test_detect_amd_render_minors_follow_amd_smi_node_ids(tmp_path):
    nodes = mi210_nodes()
    # KFD node 2 -> renderD130 and node 3 -> renderD128: the GPU order follows amd-smi's node_id
    kfd_tree(tmp_path, {0: nodes[0], 2: nodes[4], 3: nodes[2], 4: nodes[3]})
    run = FakeRunner({(AMD_SMI, "list", "--csv"): csv_from_list_e(data("amd-smi-list-e.mi300x-cpx.txt"))})
    host = detect_host(run, fake_which({"amd-smi": AMD_SMI}), {}, str(tmp_path))
    assert host.ngpus == 2
    assert host.render_devices == (130, 128)


def test_detect_amd_host_with_rocm_smi_only(tmp_path):
    kfd_tree(tmp_path, mi300a_nodes())
    run = FakeRunner(
        {
            (ROCM_SMI, "--showid", "--csv"): data("rocm-smi-showid-csv.mi300x.txt"),
            (ROCMINFO,): data("rocminfo.mi300x.txt"),
            (ROCM_SMI, "--showproductname"): data("rocm-smi-showproduct.mi300a.txt"),
        }
    )
    tools = {"rocm-smi": ROCM_SMI, "rocminfo": ROCMINFO}
    host = detect_host(run, fake_which(tools), {}, str(tmp_path))
    assert host == HostInfo(
        "AMD", 2, "gfx942", "Aqua Vanjaram [Instinct MI300A]", "", (128, 136, 144, 152), "/opt/rocm"
    )
    assert run.argvs == [(ROCM_SMI, "--showid", "--csv"), (ROCMINFO,), (ROCM_SMI, "--showproductname")]


def test_detect_amd_falls_back_to_rocm_smi_when_amd_smi_fails(tmp_path):
    run = FakeRunner(
        {
            (AMD_SMI, "list", "--csv"): (1, ""),
            (ROCM_SMI, "--showid", "--csv"): data("rocm-smi-showid.mi300a.txt"),
        }
    )
    host = detect_host(run, fake_which({"amd-smi": AMD_SMI, "rocm-smi": ROCM_SMI}), {}, str(tmp_path))
    assert host.gpu_vendor == "AMD" and host.ngpus == 4
    assert run.argvs[:2] == [(AMD_SMI, "list", "--csv"), (ROCM_SMI, "--showid", "--csv")]


def test_detect_amd_render_from_amd_smi_json_without_topology(tmp_path):
    run = FakeRunner(
        {
            (AMD_SMI, "list", "--csv"): csv_from_list_e(data("amd-smi-list-e.mi300x-cpx.txt")),
            (AMD_SMI, "list", "-e", "--json"): json_from_list_e(data("amd-smi-list-e.mi300x-cpx.txt")),
        }
    )
    host = detect_host(run, fake_which({"amd-smi": AMD_SMI}), {}, str(tmp_path))
    assert host.render_devices == (128, 129)
    assert (AMD_SMI, "list", "-e", "--json") in run.argvs


def test_detect_amd_failing_probes_degrade(tmp_path):
    run = FakeRunner(
        {
            (AMD_SMI, "list", "--csv"): data("amd-smi-list-csv.mi300x-cpx.txt"),
            (ROCMINFO,): (124, ""),  # timed out: the arch comes from amd-smi static instead
            (AMD_SMI, "static", "--asic", "-g", "0"): data("amd-smi-static.mi350x.txt"),
            (HIPCONFIG, "--version"): OSError("exec format error"),
            (AMD_SMI, "list", "-e", "--json"): (2, ""),
        }
    )
    host = detect_host(run, fake_which(AMD_TOOLS), {}, str(tmp_path))
    assert host == HostInfo("AMD", 16, "gfx950", "AMD Instinct MI350X", "", (), "/opt/rocm")


# --- detect_host: CPU and overrides ----------------------------------------------------------------


def test_detect_cpu_host_runs_nothing(tmp_path):
    run = FakeRunner()
    start = time.monotonic()
    host = detect_host(run, fake_which({}), {}, str(tmp_path))
    assert host == HostInfo("CPU", 0, "", "", "", (), "")
    assert run.calls == []
    assert time.monotonic() - start < 1.0
    assert host.docker_gpus() == "" and host.short_arch() == ""


def test_gpu_vendor_cpu_override_runs_nothing(tmp_path):
    run = nvidia_runner()
    host = detect_host(run, fake_which({"nvidia-smi": NV_SMI, **AMD_TOOLS}), {"gpu_vendor": "CPU"}, str(tmp_path))
    assert host == CPU_HOST
    assert run.calls == []


def test_nvidia_overrides_skip_probes(tmp_path):
    run = nvidia_runner()
    ctx = {
        "gpu_vendor": "NVIDIA",
        "docker_env_vars": {"MAD_SYSTEM_NGPUS": "4", "MAD_SYSTEM_GPU_ARCHITECTURE": "NVIDIA A100-SXM4-40GB"},
    }
    host = detect_host(run, fake_which({"nvidia-smi": NV_SMI, "nvcc": NVCC}), ctx, str(tmp_path))
    assert host == HostInfo("NVIDIA", 4, "NVIDIA A100-SXM4-40GB", "NVIDIA H100 NVL", "11.1", (), "")
    assert host.short_arch() == "A100"
    assert (NV_SMI, "-L") not in run.argvs
    assert run.argvs == [NV_QUERY, (NVCC, "--version")]


def test_nvidia_all_overrides_run_nothing(tmp_path):
    run = nvidia_runner()
    env = {
        "MAD_SYSTEM_NGPUS": 2,
        "MAD_SYSTEM_GPU_ARCHITECTURE": "NVIDIA H100 PCIe",
        "MAD_SYSTEM_GPU_PRODUCT_NAME": "NVIDIA H100 PCIe",
        "MAD_SYSTEM_HIP_VERSION": "12.4",
    }
    host = detect_host(run, fake_which({"nvidia-smi": NV_SMI}), {"gpu_vendor": "NVIDIA", "docker_env_vars": env}, "/")
    assert host == HostInfo("NVIDIA", 2, "NVIDIA H100 PCIe", "NVIDIA H100 PCIe", "12.4", (), "")
    assert run.calls == []


def test_amd_all_overrides_only_read_sysfs(tmp_path):
    kfd_tree(tmp_path, mi210_nodes())
    run = FakeRunner()
    env = {
        "MAD_SYSTEM_NGPUS": "8",
        "MAD_SYSTEM_GPU_ARCHITECTURE": "gfx90a",
        "MAD_SYSTEM_GPU_PRODUCT_NAME": "AMD Instinct MI210",
        "MAD_SYSTEM_HIP_VERSION": "6.2",
    }
    ctx = {"gpu_vendor": "amd", "docker_env_vars": env, "MAD_ROCM_PATH": "/opt/rocm-6.2.0"}
    host = detect_host(run, fake_which(AMD_TOOLS), ctx, str(tmp_path))
    assert host == HostInfo("AMD", 8, "gfx90a", "AMD Instinct MI210", "6.2", tuple(range(128, 136)), "/opt/rocm-6.2.0")
    assert run.calls == []


def test_amd_ngpus_override_skips_list(tmp_path):
    run = FakeRunner(
        {
            (ROCMINFO,): data("rocminfo.mi300x.txt"),
            (AMD_SMI, "static", "--asic", "-g", "0"): data("amd-smi-static.mi210.txt"),
            (HIPCONFIG, "--version"): data("hipconfig-version.rocm7.2.txt"),
        }
    )
    ctx = {"gpu_vendor": "AMD", "docker_env_vars": {"MAD_SYSTEM_NGPUS": "8"}}
    host = detect_host(run, fake_which(AMD_TOOLS), ctx, str(tmp_path))
    assert (host.ngpus, host.gpu_architecture, host.gpu_product_name, host.hip_version) == (
        8,
        "gfx942",
        "AMD Instinct MI210",
        "7.2",
    )
    assert (AMD_SMI, "list", "--csv") not in run.argvs
    assert (ROCM_SMI, "--showid", "--csv") not in run.argvs


def test_bad_ngpus_override_is_ignored(tmp_path):
    run = nvidia_runner()
    ctx = {"docker_env_vars": {"MAD_SYSTEM_NGPUS": "eight"}}
    host = detect_host(run, fake_which({"nvidia-smi": NV_SMI, "nvcc": NVCC}), ctx, str(tmp_path))
    assert host.ngpus == 8


def test_docker_gpus_override_validated(tmp_path):
    with pytest.raises(ConfigError, match="docker_gpus"):
        detect_host(FakeRunner(), fake_which({}), {"gpu_vendor": "CPU", "docker_gpus": "0-x"}, str(tmp_path))
    host = detect_host(FakeRunner(), fake_which({}), {"gpu_vendor": "CPU", "docker_gpus": "0,2-3"}, str(tmp_path))
    assert host == CPU_HOST


def test_which_raising_is_not_found(tmp_path):
    def which(name):
        raise OSError("PATH unreadable")

    assert detect_host(FakeRunner(), which, {}, str(tmp_path)) == CPU_HOST


def test_recordings_listed_in_sources():
    sources = data("SOURCES.md")
    for path in sorted(DATA.rglob("*")):
        if path.is_file() and path.name != "SOURCES.md":
            rel = path.relative_to(DATA).as_posix()
            top = rel.split("/", 1)[0]
            assert top in sources, f"{rel} is not described in SOURCES.md"


def test_default_which_is_shutil():
    assert detect_host.__defaults__[1] is shutil.which
