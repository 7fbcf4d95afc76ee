"""Dockerfile candidates, CONTEXT headers, image and log names (spec 4.1-4.3, 6.10, fixes 15.2.8/10)."""

from __future__ import annotations

import pytest

from ansible_collections.rocm.madengine.plugins.module_utils import dockerfiles
from ansible_collections.rocm.madengine.plugins.module_utils.errors import BuildError

AMD = "# CONTEXT {'gpu_vendor': 'AMD', 'guest_os': 'UBUNTU'}\nARG BASE_DOCKER=rocm/pytorch\nFROM $BASE_DOCKER\n"
NVIDIA = "# CONTEXT {'gpu_vendor': 'NVIDIA', 'guest_os': 'UBUNTU'}\nARG BASE_DOCKER=nvcr.io/x\nFROM $BASE_DOCKER\n"


def dockerfile(root, rel, text):
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return rel


@pytest.fixture
def pkg(tmp_path):
    dockerfile(tmp_path, "docker/dummy.ubuntu.amd.Dockerfile", AMD)
    dockerfile(tmp_path, "docker/dummy.ubuntu.nvidia.Dockerfile", NVIDIA)
    for variant, ctx in (("ctx1", "1"), ("ctx2a", "2"), ("ctx2b", "2")):
        dockerfile(
            tmp_path,
            f"docker/dummy_ctxtest.{variant}.ubuntu.amd.Dockerfile",
            f"# CONTEXT {{'gpu_vendor': 'AMD', 'ctx_test': '{ctx}'}}\nFROM rocm/pytorch\n",
        )
    dockerfile(tmp_path, "docker/dummy_noheader.ubuntu.amd.Dockerfile", "FROM ubuntu\n")
    return tmp_path


def match(**kw):
    base = {"gpu_vendor": "AMD", "guest_os": "UBUNTU", "ctx_test": "None"}
    base.update(kw)
    return base


# --- candidates --------------------------------------------------------------------------------------


def test_candidates_require_a_dot_after_the_prefix(pkg):
    assert dockerfiles.candidates(str(pkg), "docker/dummy") == [
        "docker/dummy.ubuntu.amd.Dockerfile",
        "docker/dummy.ubuntu.nvidia.Dockerfile",
    ]


def test_candidates_are_sorted_and_files_only(pkg):
    (pkg / "docker" / "dummy_ctxtest.dir").mkdir()
    assert dockerfiles.candidates(str(pkg), "docker/dummy_ctxtest") == [
        "docker/dummy_ctxtest.ctx1.ubuntu.amd.Dockerfile",
        "docker/dummy_ctxtest.ctx2a.ubuntu.amd.Dockerfile",
        "docker/dummy_ctxtest.ctx2b.ubuntu.amd.Dockerfile",
    ]


def test_candidates_none(pkg):
    assert dockerfiles.candidates(str(pkg), "docker/missing") == []


def test_candidates_escape_glob_characters(tmp_path):
    dockerfile(tmp_path, "docker/a[1].x.Dockerfile", AMD)
    dockerfile(tmp_path, "docker/a1.x.Dockerfile", AMD)
    assert dockerfiles.candidates(str(tmp_path), "docker/a[1]") == ["docker/a[1].x.Dockerfile"]


# --- CONTEXT header ----------------------------------------------------------------------------------


def test_header_parse(pkg):
    assert dockerfiles.read_context_header(str(pkg), "docker/dummy.ubuntu.amd.Dockerfile") == {
        "gpu_vendor": "AMD",
        "guest_os": "UBUNTU",
    }


def test_header_absent(pkg):
    assert dockerfiles.read_context_header(str(pkg), "docker/dummy_noheader.ubuntu.amd.Dockerfile") is None


def test_header_only_in_first_five_lines(tmp_path):
    dockerfile(tmp_path, "d5.Dockerfile", "\n" * 4 + "# CONTEXT {'a': '1'}\n")
    dockerfile(tmp_path, "d6.Dockerfile", "\n" * 5 + "# CONTEXT {'a': '1'}\n")
    assert dockerfiles.read_context_header(str(tmp_path), "d5.Dockerfile") == {"a": "1"}
    assert dockerfiles.read_context_header(str(tmp_path), "d6.Dockerfile") is None


def test_empty_header_dict(tmp_path):
    dockerfile(tmp_path, "d.Dockerfile", "# CONTEXT {}\n")
    assert dockerfiles.read_context_header(str(tmp_path), "d.Dockerfile") == {}


@pytest.mark.parametrize("header", ["# CONTEXT {'a': }", "# CONTEXT gpu_vendor=AMD", "# CONTEXT ['AMD']"])
def test_header_invalid(tmp_path, header):
    dockerfile(tmp_path, "docker/bad.x.Dockerfile", header + "\nFROM x\n")
    with pytest.raises(BuildError) as info:
        dockerfiles.read_context_header(str(tmp_path), "docker/bad.x.Dockerfile")
    assert "docker/bad.x.Dockerfile" in info.value.msg


# --- selection ---------------------------------------------------------------------------------------


def test_select_by_vendor(pkg):
    model = {"name": "dummy", "dockerfile": "docker/dummy"}
    assert dockerfiles.select_dockerfiles(str(pkg), model, match()) == ["docker/dummy.ubuntu.amd.Dockerfile"]
    assert dockerfiles.select_dockerfiles(str(pkg), model, match(gpu_vendor="NVIDIA")) == [
        "docker/dummy.ubuntu.nvidia.Dockerfile"
    ]


def test_keys_absent_from_the_context_are_ignored(pkg):
    model = {"name": "dummy", "dockerfile": "docker/dummy"}
    assert dockerfiles.select_dockerfiles(str(pkg), model, {}) == [
        "docker/dummy.ubuntu.amd.Dockerfile",
        "docker/dummy.ubuntu.nvidia.Dockerfile",
    ]


def test_ctx_test_two_selects_both_variants(pkg):
    model = {"name": "dummy_ctxtest", "dockerfile": "docker/dummy_ctxtest"}
    assert dockerfiles.select_dockerfiles(str(pkg), model, match(ctx_test="2")) == [
        "docker/dummy_ctxtest.ctx2a.ubuntu.amd.Dockerfile",
        "docker/dummy_ctxtest.ctx2b.ubuntu.amd.Dockerfile",
    ]
    assert dockerfiles.select_dockerfiles(str(pkg), model, match(ctx_test="1")) == [
        "docker/dummy_ctxtest.ctx1.ubuntu.amd.Dockerfile"
    ]


def test_header_values_are_compared_as_strings(tmp_path):
    dockerfile(tmp_path, "docker/n.x.Dockerfile", "# CONTEXT {'ctx_test': 2}\n")
    model = {"name": "n", "dockerfile": "docker/n"}
    assert dockerfiles.select_dockerfiles(str(tmp_path), model, {"ctx_test": "2"}) == ["docker/n.x.Dockerfile"]


def test_no_candidates_names_model_and_prefix(pkg):
    with pytest.raises(BuildError) as info:
        dockerfiles.select_dockerfiles(str(pkg), {"name": "ghost", "dockerfile": "docker/ghost"}, match())
    assert "'ghost'" in info.value.msg
    assert "docker/ghost.*" in info.value.msg


def test_no_dockerfile_key(pkg):
    with pytest.raises(BuildError) as info:
        dockerfiles.select_dockerfiles(str(pkg), {"name": "nodf"}, match())
    assert "'nodf'" in info.value.msg


def test_no_header_names_model_and_file(pkg):
    model = {"name": "dummy_noheader", "dockerfile": "docker/dummy_noheader"}
    with pytest.raises(BuildError) as info:
        dockerfiles.select_dockerfiles(str(pkg), model, match())
    assert "'dummy_noheader'" in info.value.msg
    assert "docker/dummy_noheader.ubuntu.amd.Dockerfile" in info.value.msg


def test_no_match_names_model_and_candidates(pkg):
    model = {"name": "dummy_ctxtest", "dockerfile": "docker/dummy_ctxtest"}
    with pytest.raises(BuildError) as info:
        dockerfiles.select_dockerfiles(str(pkg), model, match(ctx_test="3"))
    assert "'dummy_ctxtest'" in info.value.msg
    assert "docker/dummy_ctxtest.ctx1.ubuntu.amd.Dockerfile" in info.value.msg


# --- names -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "model,df,arch,expected",
    [
        ("dummy", "docker/dummy.ubuntu.amd.Dockerfile", None, "ci-dummy_dummy.ubuntu.amd"),
        ("dummy2/model1", "docker/dummy.ubuntu.amd.Dockerfile", None, "ci-dummy2_model1_dummy.ubuntu.amd"),
        ("dummy", "docker/dummy.ubuntu.amd.Dockerfile", "gfx942", "ci-dummy_dummy.ubuntu.amd_gfx942"),
        ("Big/Model", "docker/Dummy.Ubuntu.AMD.Dockerfile", None, "ci-big_model_Dummy.Ubuntu.AMD"),
        ("m", "docker/plain", None, "ci-m_plain"),
    ],
)
def test_image_name(model, df, arch, expected):
    assert dockerfiles.image_name(model, df, arch) == expected


def test_build_log_name():
    df = "docker/dummy.ubuntu.amd.Dockerfile"
    assert dockerfiles.build_log_name("dummy", df) == "dummy_dummy.ubuntu.amd.build.live.log"
    assert dockerfiles.build_log_name("Dummy2/Model1", df) == "Dummy2_Model1_dummy.ubuntu.amd.build.live.log"
    # one log per architecture (fix 15.2.10)
    assert dockerfiles.build_log_name("dummy", df, "gfx942") == "dummy_dummy.ubuntu.amd_gfx942.build.live.log"


@pytest.mark.parametrize(
    "model,image,expected",
    [
        ("dummy", "ci-dummy_dummy.ubuntu.amd", "dummy_dummy.ubuntu.amd"),
        ("dummy_ctxtest", "rocm/tensorflow:latest", "dummy_ctxtest_rocm_tensorflow_latest"),
        ("dummy2/model1", "ci-dummy2_model1_dummy.ubuntu.amd", "dummy2_model1_dummy.ubuntu.amd"),
        ("dummy", "localhost:5000/repo:ci-dummy_dummy.ubuntu.amd", "dummy_dummy.ubuntu.amd"),
        ("dummy", "ci-dummy_dummy.ubuntu.amd@sha256:abc", "dummy_dummy.ubuntu.amd"),
        ("dummy", "localhost:5000/ci-dummy_dummy.ubuntu.amd", "dummy_localhost_5000_dummy_dummy.ubuntu.amd"),
    ],
)
def test_run_log_base(model, image, expected):
    assert dockerfiles.run_log_base(model, image) == expected


def test_dockerfile_stem():
    assert dockerfiles.dockerfile_stem("docker/dummy.ubuntu.amd.Dockerfile") == "dummy.ubuntu.amd"
    assert dockerfiles.dockerfile_stem("docker/dummy.ubuntu.amd") == "dummy.ubuntu.amd"


def test_build_context_dir():
    assert dockerfiles.build_context_dir({"dockerfile": "docker/dummy"}) == "./docker"
    assert dockerfiles.build_context_dir({"dockerfile": "docker/dummy", "dockercontext": ""}) == "./docker"
    assert dockerfiles.build_context_dir({"dockerfile": "docker/Primus_x"}) == "."
    assert dockerfiles.build_context_dir({"dockerfile": "docker/primus", "dockercontext": "ctx"}) == "ctx"


# --- inferred metadata -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path,text,expected",
    [
        ("docker/dummy.ubuntu.amd.Dockerfile", "", "AMD"),
        ("docker/dummy.ubuntu.nvidia.Dockerfile", "FROM rocm/x", "NVIDIA"),
        ("docker/dummy.ubuntu.cpu.Dockerfile", "FROM rocm/x", "CPU"),
        ("docker/dummy.ubuntu.amd", "", "AMD"),
        ("docker/dummy.ubuntu.Dockerfile", "FROM rocm/pytorch:latest\n", "AMD"),
        ("docker/dummy.ubuntu.Dockerfile", "FROM nvcr.io/nvidia/pytorch\n", "NVIDIA"),
        ("docker/dummy.ubuntu.Dockerfile", "FROM docker.io/cuda:12\n", "NVIDIA"),
        ("docker/dummy.ubuntu.Dockerfile", "FROM ubuntu:22.04\n", ""),
        ("docker/dummy.ubuntu.Dockerfile", "rocm without a base", ""),
        ("docker/amdish.Dockerfile", "FROM ubuntu\n", ""),
    ],
)
def test_infer_gpu_vendor(path, text, expected):
    assert dockerfiles.infer_gpu_vendor(path, text) == expected


def test_base_docker():
    text = "ARG BASE_DOCKER=rocm/pytorch:latest\nFROM $BASE_DOCKER\n"
    assert dockerfiles.base_docker(text, {}) == "rocm/pytorch:latest"
    assert dockerfiles.base_docker(text, {"BASE_DOCKER": "mine:1"}) == "mine:1"
    assert dockerfiles.base_docker("FROM ubuntu\n", {}) == ""
    assert dockerfiles.base_docker("ARG BASE_DOCKER=a\nARG BASE_DOCKER=b\n", {}) == "a,b"


@pytest.mark.parametrize(
    "text,args,expected",
    [
        ("ARG MAD_SYSTEM_GPU_ARCHITECTURE=gfx942\nFROM x\n", {}, "gfx942"),
        ('ENV MAD_SYSTEM_GPU_ARCHITECTURE="gfx90a"\n', {}, "gfx90a"),
        ("arg mad_system_gpu_architecture='gfx908'\n", {}, "gfx908"),
        ("  ENV MAD_SYSTEM_GPU_ARCHITECTURE gfx1100\n", {}, "gfx1100"),
        ("ARG MAD_SYSTEM_GPU_ARCHITECTURE=gfx942\n", {"MAD_SYSTEM_GPU_ARCHITECTURE": "gfx90a"}, "gfx90a"),
        ("FROM x\n", {}, ""),
    ],
)
def test_gpu_architecture(text, args, expected):
    assert dockerfiles.gpu_architecture(text, args) == expected


@pytest.mark.parametrize(
    "text",
    [
        "ARG MAD_SYSTEM_GPU_ARCHITECTURE\nFROM rocm/pytorch\n",
        "ARG MAD_SYSTEM_GPU_ARCHITECTURE=\nFROM rocm/pytorch\n",
    ],
)
def test_gpu_architecture_without_a_default_is_absent(text):
    assert dockerfiles.gpu_architecture(text, {}) == ""


@pytest.mark.parametrize(
    ("text", "args", "expected"),
    [
        ("ARG MAD_SYSTEM_GPU_ARCHITECTURE\nFROM x\n", {}, True),
        ("ARG MAD_SYSTEM_GPU_ARCHITECTURE=\nFROM x\n", {}, True),
        ('ARG MAD_SYSTEM_GPU_ARCHITECTURE=""\nFROM x\n', {}, True),
        ("ARG MAD_SYSTEM_GPU_ARCHITECTURE=gfx942\nFROM x\n", {}, False),
        ("ARG MAD_SYSTEM_GPU_ARCHITECTURE\nFROM x\n", {"MAD_SYSTEM_GPU_ARCHITECTURE": "gfx90a"}, False),
        ("FROM x\n", {}, False),
    ],
)
def test_needs_gpu_architecture(text, args, expected):
    assert dockerfiles.needs_gpu_architecture(text, args) is expected
