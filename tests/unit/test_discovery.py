"""Discovery of a MAD package: root, scoped and dynamic models (spec sections 1-2, fixes 15.1)."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import textwrap

import pytest

from ansible_collections.rocm.madengine.plugins.module_utils import custom_model, discovery, tags
from ansible_collections.rocm.madengine.plugins.module_utils.errors import DiscoveryError


@pytest.fixture(autouse=True)
def _fresh_cache():
    discovery.clear_cache()
    yield
    discovery.clear_cache()


def write_json(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")


def make_package(root, root_models=None, scoped=None, dynamic=None, scripts_dir=True):
    """A small MAD package: scoped = {dir: [cards]}, dynamic = {dir: python source}."""
    write_json(root / "models.json", root_models if root_models is not None else [])
    if scripts_dir:
        (root / "scripts").mkdir(exist_ok=True)
    for scope, cards in (scoped or {}).items():
        write_json(root / "scripts" / scope / "models.json", cards)
    for scope, source in (dynamic or {}).items():
        path = root / "scripts" / scope / "get_models_json.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source), encoding="utf-8")
    return root


ROOT_DUMMY = {
    "name": "dummy",
    "dockerfile": "docker/dummy",
    "scripts": "scripts/dummy/run.sh",
    "args": "",
    "tags": ["dummies"],
}
SCOPED_MODEL1 = {
    "name": "model1",
    "dockerfile": "../../docker/dummy",
    "scripts": "run.sh",
    "args": "",
    "tags": ["dummies", "group2"],
}

DYNAMIC_SOURCE = """
    from madengine.utils.discover_models import CustomModel


    class LazyModel(CustomModel):
        def update_model(self):
            self.dockerfile = "../../docker/dummy"
            self.scripts = "run.sh"
            self.n_gpus = "1"
            self.owner = "lazy@example.com"


    def list_models():
        return [
            CustomModel(name="model3", dockerfile="../../docker/dummy", scripts="run.sh", tags=["dummies"]),
            LazyModel(name="model4", tags=["dummies", "lazy"]),
        ]
"""


# --- root and scoped models -------------------------------------------------------------------------


def test_root_models_keep_their_names_and_paths(tmp_path):
    make_package(tmp_path, [ROOT_DUMMY, {"name": "other", "dockerfile": "docker/o", "scripts": "x.sh"}])
    catalog = discovery.discover(str(tmp_path))
    assert catalog.names == ["dummy", "other"]
    first = catalog.models[0]
    assert first.scope == ""
    assert first.custom is None
    assert first.card["dockerfile"] == "docker/dummy"
    assert first.card["scripts"] == "scripts/dummy/run.sh"
    assert first.source == "models.json"


def test_scoped_models_get_prefixed_names_and_normalised_paths(tmp_path):
    make_package(tmp_path, [ROOT_DUMMY], scoped={"dummy2": [SCOPED_MODEL1]})
    catalog = discovery.discover(str(tmp_path))
    assert catalog.names == ["dummy", "dummy2/model1"]
    model = catalog.models[1]
    assert model.scope == "dummy2"
    assert model.card["name"] == "dummy2/model1"
    assert model.card["dockerfile"] == "docker/dummy"
    assert model.card["scripts"] == "scripts/dummy2/run.sh"
    # tags are not modified
    assert model.card["tags"] == ["dummies", "group2"]
    assert model.tags == ["dummies", "group2"]


def test_scoped_path_rewriting():
    assert discovery.scoped_path("dummy2", "../../docker/dummy") == "docker/dummy"
    assert discovery.scoped_path("dummy2", "run.sh") == "scripts/dummy2/run.sh"
    assert discovery.scoped_path("d", "sub/../bin/run.py") == "scripts/d/bin/run.py"


def test_scopes_are_read_in_sorted_order_root_first(tmp_path):
    card = dict(SCOPED_MODEL1, name="m")
    make_package(tmp_path, [ROOT_DUMMY], scoped={"zeta": [card], "alpha": [card], "Mid": [card]})
    (tmp_path / "scripts" / "not_a_dir.txt").write_text("ignored")
    (tmp_path / "scripts" / "empty").mkdir()
    catalog = discovery.discover(str(tmp_path))
    assert catalog.names == ["dummy", "Mid/m", "alpha/m", "zeta/m"]


def test_scripts_directory_is_optional(tmp_path):
    make_package(tmp_path, [ROOT_DUMMY], scripts_dir=False)
    assert discovery.discover(str(tmp_path)).names == ["dummy"]


def test_missing_root_models_json(tmp_path):
    with pytest.raises(DiscoveryError) as info:
        discovery.discover(str(tmp_path))
    assert "models.json" in info.value.msg
    assert "not found" in info.value.msg


def test_comma_separated_tag_string_is_split(tmp_path):
    make_package(tmp_path, [dict(ROOT_DUMMY, tags=" a, b ,,c ")])
    assert discovery.discover(str(tmp_path)).models[0].tags == ["a", "b", "c"]


def test_card_tags_of_other_types_match_nothing():
    assert discovery.card_tags({"tags": 5}) == []
    assert discovery.card_tags({}) == []
    assert discovery.card_tags({"tags": ["x", 1]}) == ["x", "1"]


# --- errors ------------------------------------------------------------------------------------------


def test_both_models_json_and_get_models_json_is_an_error_naming_the_dir(tmp_path):
    make_package(tmp_path, [ROOT_DUMMY], scoped={"dummy2": [SCOPED_MODEL1]}, dynamic={"dummy2": DYNAMIC_SOURCE})
    with pytest.raises(DiscoveryError) as info:
        discovery.discover(str(tmp_path))
    assert "scripts/dummy2" in info.value.msg
    assert "models.json" in info.value.msg and "get_models_json.py" in info.value.msg


def test_malformed_root_json_names_file_and_line(tmp_path):
    (tmp_path / "models.json").write_text('[\n  {"name": "a"},\n  {"name": "b",}\n]\n')
    with pytest.raises(DiscoveryError) as info:
        discovery.discover(str(tmp_path))
    assert str(tmp_path / "models.json") in info.value.msg
    assert "line 3" in info.value.msg


def test_malformed_scoped_json_names_file_and_line(tmp_path):
    make_package(tmp_path, [ROOT_DUMMY])
    bad = tmp_path / "scripts" / "broken" / "models.json"
    bad.parent.mkdir(parents=True)
    bad.write_text("[\n{\n\n  name: 1\n}]")
    with pytest.raises(DiscoveryError) as info:
        discovery.discover(str(tmp_path))
    assert "scripts/broken/models.json" in info.value.msg
    assert "line 4" in info.value.msg


def test_top_level_must_be_an_array(tmp_path):
    write_json(tmp_path / "models.json", {"name": "dummy"})
    with pytest.raises(DiscoveryError) as info:
        discovery.discover(str(tmp_path))
    assert "array" in info.value.msg
    assert "dict" in info.value.msg


def test_root_card_without_name_names_file_and_card(tmp_path):
    make_package(tmp_path, [ROOT_DUMMY, {"dockerfile": "docker/x", "scripts": "x.sh"}])
    with pytest.raises(DiscoveryError) as info:
        discovery.discover(str(tmp_path))
    assert "models.json" in info.value.msg
    assert "entry 1" in info.value.msg
    assert "name" in info.value.msg


def test_card_that_is_not_an_object(tmp_path):
    make_package(tmp_path, [ROOT_DUMMY, "dummy2"])
    with pytest.raises(DiscoveryError) as info:
        discovery.discover(str(tmp_path))
    assert "entry 1" in info.value.msg
    assert "str" in info.value.msg


@pytest.mark.parametrize("missing", ["dockerfile", "scripts"])
def test_scoped_card_missing_required_key_names_file_and_card(tmp_path, missing):
    card = {k: v for k, v in SCOPED_MODEL1.items() if k != missing}
    make_package(tmp_path, [ROOT_DUMMY], scoped={"dummy2": [card]})
    with pytest.raises(DiscoveryError) as info:
        discovery.discover(str(tmp_path))
    assert "scripts/dummy2/models.json" in info.value.msg
    assert "'model1'" in info.value.msg
    assert repr(missing) in info.value.msg


def test_root_card_may_lack_dockerfile_and_scripts(tmp_path):
    make_package(tmp_path, [{"name": "bare"}])
    assert discovery.discover(str(tmp_path)).names == ["bare"]


@pytest.mark.parametrize(
    "field,value",
    [("tags", 5), ("args", 3), ("timeout", "soon"), ("timeout", True), ("multiple_results", ["a"])],
)
def test_card_field_type_errors_name_the_card(tmp_path, field, value):
    make_package(tmp_path, [dict(ROOT_DUMMY, **{field: value})])
    with pytest.raises(DiscoveryError) as info:
        discovery.discover(str(tmp_path))
    assert "'dummy'" in info.value.msg
    assert field in info.value.msg


def test_timeout_given_as_numeric_string_is_accepted(tmp_path):
    make_package(tmp_path, [dict(ROOT_DUMMY, timeout="360"), dict(ROOT_DUMMY, name="b", timeout=-1)])
    assert discovery.discover(str(tmp_path)).names == ["dummy", "b"]


# --- dynamic models ----------------------------------------------------------------------------------


def test_dynamic_models_are_named_by_scope(tmp_path):
    make_package(tmp_path, [ROOT_DUMMY], dynamic={"dummy3": DYNAMIC_SOURCE})
    catalog = discovery.discover(str(tmp_path))
    assert catalog.names == ["dummy", "dummy3/model3", "dummy3/model4"]
    model3 = catalog.models[1]
    assert model3.custom is not None
    assert model3.custom.name == "dummy3/model3"  # the object itself is renamed at discovery
    assert model3.scope == "dummy3"
    assert model3.tags == ["dummies"]
    assert catalog.models[2].tags == ["dummies", "lazy"]


def test_update_model_is_called_at_selection_not_discovery(tmp_path):
    make_package(tmp_path, [ROOT_DUMMY], dynamic={"dummy3": DYNAMIC_SOURCE})
    catalog = discovery.discover(str(tmp_path))
    lazy = catalog.models[2]
    assert lazy.custom.dockerfile == ""  # not filled yet
    (card,) = tags.select_models(["dummy3/model4"], catalog)
    assert card["name"] == "dummy3/model4"
    assert card["dockerfile"] == "docker/dummy"
    assert card["scripts"] == "scripts/dummy3/run.sh"
    assert card["n_gpus"] == "1"
    assert card["owner"] == "lazy@example.com"
    # the discovered object is left as it was: a second selection resolves the same way
    assert lazy.custom.dockerfile == ""
    (again,) = tags.select_models(["dummy3/model4"], catalog)
    assert again["dockerfile"] == "docker/dummy"
    assert again["scripts"] == "scripts/dummy3/run.sh"


def test_dynamic_model_resolve_rewrites_paths_and_keeps_custom_defaults(tmp_path):
    make_package(tmp_path, [], dynamic={"dummy3": DYNAMIC_SOURCE})
    catalog = discovery.discover(str(tmp_path))
    data = catalog.models[0].resolve()
    assert data["name"] == "dummy3/model3"
    assert data["dockerfile"] == "docker/dummy"
    assert data["scripts"] == "scripts/dummy3/run.sh"
    assert data["timeout"] == 7200
    assert data["n_gpus"] == "-1"
    assert data["args"] == ""


def test_subclass_extra_fields_are_serialised(tmp_path):
    source = """
        from dataclasses import dataclass
        from madengine.utils.discover_models import CustomModel


        @dataclass
        class Extra(CustomModel):
            batch: int = 4


        def list_models():
            return [Extra(name="e", dockerfile="d", scripts="run.sh")]
    """
    make_package(tmp_path, [], dynamic={"dx": source})
    data = discovery.discover(str(tmp_path)).models[0].resolve()
    assert data["batch"] == 4
    assert data["name"] == "dx/e"


def test_dataclass_subclass_with_postponed_annotations(tmp_path):
    source = """
        from __future__ import annotations

        from dataclasses import dataclass

        from madengine.utils.discover_models import CustomModel


        @dataclass
        class Extra(CustomModel):
            batch: int = 4


        def list_models():
            return [Extra(name="e", dockerfile="d", scripts="run.sh")]
    """
    make_package(tmp_path, [], dynamic={"dx": source})
    data = discovery.discover(str(tmp_path)).models[0].resolve()
    assert data["batch"] == 4


def test_two_dynamic_scopes_do_not_share_module_state(tmp_path):
    template = """
        from madengine.utils.discover_models import CustomModel

        NAME = {name!r}


        def list_models():
            return [CustomModel(name=NAME, dockerfile="d", scripts="run.sh")]
    """
    make_package(tmp_path, [], dynamic={"one": template.format(name="first"), "two": template.format(name="second")})
    assert discovery.discover(str(tmp_path)).names == ["one/first", "two/second"]


def test_get_models_json_runs_once_per_process_and_root(tmp_path):
    counter = tmp_path / "executions.txt"
    source = f"""
        from madengine.utils.discover_models import CustomModel

        with open({str(counter)!r}, "a") as handle:
            handle.write("x")


        def list_models():
            return [CustomModel(name="m", dockerfile="d", scripts="run.sh")]
    """
    make_package(tmp_path, [], dynamic={"dyn": source})
    first = discovery.discover(str(tmp_path))
    second = discovery.discover(str(tmp_path))
    third = discovery.discover(str(tmp_path / "scripts" / ".."))  # same root, other spelling
    assert counter.read_text() == "x"
    assert first is second is third
    discovery.discover(str(tmp_path), use_cache=False)
    assert counter.read_text() == "xx"


def test_missing_list_models_is_a_clear_error(tmp_path):
    make_package(tmp_path, [], dynamic={"dyn": "MODELS = []\n"})
    with pytest.raises(DiscoveryError) as info:
        discovery.discover(str(tmp_path))
    assert "scripts/dyn/get_models_json.py" in info.value.msg
    assert "list_models" in info.value.msg
    assert "get_models_json.py" in (info.value.hint or "")


def test_list_models_returning_a_foreign_object_is_a_clear_error(tmp_path):
    source = """
        from dataclasses import dataclass


        @dataclass
        class CustomModel:
            name: str


        def list_models():
            return [CustomModel(name="fake")]
    """
    make_package(tmp_path, [], dynamic={"dyn": source})
    with pytest.raises(DiscoveryError) as info:
        discovery.discover(str(tmp_path))
    assert "item 0" in info.value.msg
    assert "madengine.utils.discover_models.CustomModel" in (info.value.hint or "")


def test_list_models_returning_a_dict_is_an_error(tmp_path):
    make_package(tmp_path, [], dynamic={"dyn": "def list_models():\n    return [{'name': 'x'}]\n"})
    with pytest.raises(DiscoveryError) as info:
        discovery.discover(str(tmp_path))
    assert "dict" in info.value.msg


def test_get_models_json_raising_is_reported_with_the_file(tmp_path):
    make_package(tmp_path, [], dynamic={"dyn": "raise RuntimeError('boom')\n"})
    with pytest.raises(DiscoveryError) as info:
        discovery.discover(str(tmp_path))
    assert "get_models_json.py" in info.value.msg
    assert "boom" in info.value.msg


def test_list_models_raising_is_reported(tmp_path):
    make_package(tmp_path, [], dynamic={"dyn": "def list_models():\n    raise KeyError('nope')\n"})
    with pytest.raises(DiscoveryError) as info:
        discovery.discover(str(tmp_path))
    assert "list_models() failed" in info.value.msg
    assert "nope" in info.value.msg


def test_both_import_paths_are_the_same_class():
    from madengine.tools.discover_models import CustomModel as V1
    from madengine.utils.discover_models import CustomModel as V2

    assert V1 is V2 is custom_model.CustomModel


def test_v1_import_path_works_in_get_models_json(tmp_path):
    source = """
        from madengine.tools.discover_models import CustomModel


        def list_models():
            return [CustomModel(name="old", dockerfile="../../docker/dummy", scripts="run.sh")]
    """
    make_package(tmp_path, [], dynamic={"legacy": source})
    assert discovery.discover(str(tmp_path)).names == ["legacy/old"]


# --- CustomModel -------------------------------------------------------------------------------------


def test_custom_model_fields_and_defaults_match_the_contract():
    fields = dataclasses.fields(custom_model.CustomModel)
    assert [f.name for f in fields] == [
        "name", "dockerfile", "dockercontext", "scripts", "url", "cred", "owner", "data", "n_gpus",
        "timeout", "training_precision", "tags", "args", "multiple_results", "skip_gpu_arch",
    ]  # fmt: skip
    model = custom_model.CustomModel(name="x")
    assert model.to_dict() == {
        "name": "x", "dockerfile": "", "dockercontext": "", "scripts": "", "url": "", "cred": "",
        "owner": "", "data": "", "n_gpus": "-1", "timeout": 7200, "training_precision": "", "tags": [],
        "args": "", "multiple_results": "", "skip_gpu_arch": "",
    }  # fmt: skip
    assert model.update_model() is None
    assert model.to_dict() == custom_model.CustomModel(name="x").to_dict()


def test_custom_model_tags_default_is_not_shared():
    a = custom_model.CustomModel(name="a")
    b = custom_model.CustomModel(name="b")
    a.tags.append("t")
    assert b.tags == []


# --- a getter's output never reaches stdout -------------------------------------------------------------

PRINTING_SOURCE = """
    import os
    import subprocess
    import sys

    from madengine.utils.discover_models import CustomModel

    print("import-print")
    os.write(1, b"import-fd1\\n")


    class Loud(CustomModel):
        def update_model(self):
            print("update-print")
            sys.__stdout__.write("update-dunder\\n")
            subprocess.run([sys.executable, "-c", "print('update-child')"], check=True)
            self.dockerfile = "../../docker/dummy"
            self.scripts = "run.sh"


    def list_models():
        print("list-print")
        os.write(1, b"list-fd1\\n")
        return [Loud(name="loud")]
"""
PRINTED = ("import-print", "import-fd1", "list-print", "list-fd1", "update-print", "update-dunder", "update-child")


def test_a_printing_getter_writes_to_stderr_only(tmp_path, capfd):
    make_package(tmp_path, [], dynamic={"loud": PRINTING_SOURCE})
    print("before")
    (card,) = tags.select_models(["loud/loud"], discovery.discover(str(tmp_path)))
    print("after")
    out, err = capfd.readouterr()
    assert out.split() == ["before", "after"]
    for text in PRINTED:
        assert text in err
    assert card["scripts"] == "scripts/loud/run.sh"


def test_stdout_is_restored_when_the_getter_raises(tmp_path, capfd):
    source = "import os\nprint('p')\nos.write(1, b'fd\\n')\nraise RuntimeError('boom')\n"
    make_package(tmp_path, [], dynamic={"bad": source})
    stdout = sys.stdout
    with pytest.raises(DiscoveryError):
        discovery.discover(str(tmp_path))
    assert sys.stdout is stdout
    print("after")
    out, err = capfd.readouterr()
    assert out == "after\n"
    assert "p\nfd\n" in err


# --- warnings about cards a build would reject -----------------------------------------------------------


def test_card_warnings_name_the_file_the_card_and_what_is_wrong(tmp_path):
    make_package(
        tmp_path,
        [
            ROOT_DUMMY,
            {"name": "bare"},
            {"name": "noscript", "dockerfile": "docker/dummy"},
            dict(ROOT_DUMMY, name="typo", dockerfile="docker/dumy"),
            dict(ROOT_DUMMY, name="nodir", dockerfile="nowhere/x"),
            dict(ROOT_DUMMY, name="fullname", dockerfile="docker/dummy.ubuntu.cpu.Dockerfile"),
        ],
        scoped={"dummy2": [SCOPED_MODEL1, dict(SCOPED_MODEL1, name="gone", dockerfile="../../docker/gone")]},
        dynamic={"dyn": DYNAMIC_SOURCE.replace('"../../docker/dummy"', '"docker/none"')},
    )
    (tmp_path / "docker").mkdir()
    (tmp_path / "docker" / "dummy.ubuntu.cpu.Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "docker" / "dummy_other.ubuntu.cpu.Dockerfile").write_text("FROM scratch\n")
    catalog = discovery.discover(str(tmp_path))
    models = [m.resolve() for m in catalog.models]
    assert discovery.card_warnings(catalog, models) == [
        "models.json: model card 'bare' lacks 'dockerfile' and 'scripts'; it cannot be built or run until the card "
        "names a Dockerfile prefix and a script",
        "models.json: model card 'noscript' lacks 'scripts'; it cannot be built or run until the card names a "
        "Dockerfile prefix and a script",
        "models.json: model card 'typo': no Dockerfile matches docker/dumy.*; add docker/dumy.<os>.<vendor>.Dockerfile "
        "or fix 'dockerfile'",
        "models.json: model card 'nodir': no Dockerfile matches nowhere/x.*; add nowhere/x.<os>.<vendor>.Dockerfile "
        "or fix 'dockerfile'",
        "models.json: model card 'fullname': no Dockerfile matches docker/dummy.ubuntu.cpu.Dockerfile.*; add "
        "docker/dummy.ubuntu.cpu.Dockerfile.<os>.<vendor>.Dockerfile or fix 'dockerfile'",
        "scripts/dummy2/models.json: model card 'dummy2/gone': no Dockerfile matches docker/gone.*; add "
        "docker/gone.<os>.<vendor>.Dockerfile or fix 'dockerfile'",
        "scripts/dyn/get_models_json.py: model card 'dyn/model3': no Dockerfile matches scripts/dyn/docker/none.*; "
        "add scripts/dyn/docker/none.<os>.<vendor>.Dockerfile or fix 'dockerfile'",
        "scripts/dyn/get_models_json.py: model card 'dyn/model4': no Dockerfile matches scripts/dyn/docker/none.*; "
        "add scripts/dyn/docker/none.<os>.<vendor>.Dockerfile or fix 'dockerfile'",
    ]
    selected = tags.select_models(["dummy", "dummy2/model1"], catalog)
    assert discovery.card_warnings(catalog, selected) == []


def test_card_warnings_list_each_dockerfile_directory_once(tmp_path, monkeypatch):
    cards = [dict(ROOT_DUMMY, name=f"m{i}", dockerfile=f"docker/m{i}") for i in range(20)]
    make_package(tmp_path, cards)
    (tmp_path / "docker").mkdir()
    for i in range(0, 20, 2):
        (tmp_path / "docker" / f"m{i}.ubuntu.cpu.Dockerfile").write_text("FROM scratch\n")
    listed = []
    real_scandir = os.scandir
    monkeypatch.setattr(os, "scandir", lambda path: listed.append(path) or real_scandir(path))
    catalog = discovery.discover(str(tmp_path))
    warnings = discovery.card_warnings(catalog, [m.resolve() for m in catalog.models])
    assert [w.split("'")[1] for w in warnings] == [f"m{i}" for i in range(1, 20, 2)]
    assert listed == [str(tmp_path / "docker")]
