"""Tag grammar and selection (spec section 3, fixes 15.1.1-15.1.3)."""

from __future__ import annotations

import json
import textwrap

import pytest

from ansible_collections.rocm.madengine.plugins.module_utils import discovery, tags
from ansible_collections.rocm.madengine.plugins.module_utils.errors import (
    EXIT_INVALID_ARGS,
    ConfigError,
    DiscoveryError,
)


@pytest.fixture(autouse=True)
def _fresh_cache():
    discovery.clear_cache()
    yield
    discovery.clear_cache()


def write_json(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")


def card(name, tag_list=(), **extra):
    data = {"name": name, "dockerfile": "docker/dummy", "scripts": f"scripts/{name}/run.sh", "args": ""}
    data["tags"] = tag_list if isinstance(tag_list, str) else list(tag_list)
    data.update(extra)
    return data


def scoped(name, tag_list=(), **extra):
    data = {"name": name, "dockerfile": "../../docker/dummy", "scripts": "run.sh", "args": ""}
    data["tags"] = list(tag_list)
    data.update(extra)
    return data


DYNAMIC = """
    from madengine.utils.discover_models import CustomModel


    def list_models():
        return [
            CustomModel(name="model3", dockerfile="../../docker/dummy", scripts="run.sh",
                        tags=["dummies", "dynamic"]),
            CustomModel(name="model4", dockerfile="../../docker/dummy", scripts="run.sh",
                        tags=["dummies"], args="--x 1"),
        ]
"""


@pytest.fixture
def catalog(tmp_path):
    """Root: dummy, dummy_perf, noargs; scripts/aaa (dynamic), scripts/dummy2 (static)."""
    write_json(
        tmp_path / "models.json",
        [
            card("dummy", ["dummies", "inference"]),
            card("dummy_perf", "dummies,perf"),
            {"name": "noargs", "dockerfile": "docker/dummy", "scripts": "scripts/n/run.sh", "tags": ["bare"]},
        ],
    )
    write_json(
        tmp_path / "scripts" / "dummy2" / "models.json",
        [scoped("model1", ["dummies", "group2"]), scoped("model2", ["group2", "inference"], args="--base 1")],
    )
    dyn = tmp_path / "scripts" / "aaa" / "get_models_json.py"
    dyn.parent.mkdir(parents=True)
    dyn.write_text(textwrap.dedent(DYNAMIC))
    return discovery.discover(str(tmp_path))


def names(models):
    return [m["name"] for m in models]


# --- helpers -----------------------------------------------------------------------------------------


def test_split_tag_values():
    assert tags.split_tag_values(["a", "b,c"]) == ["a", "b", "c"]
    assert tags.split_tag_values([" a , ,b "]) == ["a", "b"]
    assert tags.split_tag_values([]) == []


@pytest.mark.parametrize("value", ["", "   ", ",", " , ,"])
def test_empty_tag_value_is_a_usage_error(catalog, value):
    with pytest.raises(ConfigError) as info:
        tags.select_models(["dummy", value], catalog)
    assert info.value.exit_code == EXIT_INVALID_ARGS
    line = info.value.one_line()
    assert line.startswith(f"--tags {value!r}: empty tag")
    assert "give a model name or tag" in line and "\n" not in line


@pytest.mark.parametrize(
    "pieces,expected",
    [
        (["batch-size=32", "fp16"], " --batch-size 32 --fp16"),
        (["k=v=w"], " --k v w"),
        ([], ""),
        (["x"], " --x"),
    ],
)
def test_extra_args(pieces, expected):
    assert tags.extra_args(pieces) == expected


# --- matching ----------------------------------------------------------------------------------------


def test_catalog_order(catalog):
    assert catalog.names == [
        "dummy",
        "dummy_perf",
        "noargs",
        "aaa/model3",
        "aaa/model4",
        "dummy2/model1",
        "dummy2/model2",
    ]


def test_all_selects_everything_static_first(catalog):
    assert names(tags.select_models(["all"], catalog)) == [
        "dummy", "dummy_perf", "noargs", "dummy2/model1", "dummy2/model2", "aaa/model3", "aaa/model4",
    ]  # fmt: skip


def test_tag_field_matching_is_scope_agnostic_and_static_before_dynamic(catalog):
    assert names(tags.select_models(["dummies"], catalog)) == [
        "dummy", "dummy_perf", "dummy2/model1", "aaa/model3", "aaa/model4",
    ]  # fmt: skip
    assert names(tags.select_models(["inference"], catalog)) == ["dummy", "dummy2/model2"]


def test_string_tags_field_is_split(catalog):
    assert names(tags.select_models(["perf"], catalog)) == ["dummy_perf"]


def test_name_match_is_exact(catalog):
    assert names(tags.select_models(["dummy"], catalog)) == ["dummy"]
    with pytest.raises(DiscoveryError):
        tags.select_models(["model1"], catalog)


def test_scoped_model_by_full_name(catalog):
    (model,) = tags.select_models(["dummy2/model1"], catalog)
    assert model["name"] == "dummy2/model1"
    assert model["dockerfile"] == "docker/dummy"
    assert model["scripts"] == "scripts/dummy2/run.sh"
    assert model["args"] == ""


def test_scoped_all(catalog):
    assert names(tags.select_models(["dummy2/all"], catalog)) == ["dummy2/model1", "dummy2/model2"]
    assert names(tags.select_models(["aaa/all"], catalog)) == ["aaa/model3", "aaa/model4"]


def test_scoped_tag_filter(catalog):
    assert names(tags.select_models(["dummy2/inference"], catalog)) == ["dummy2/model2"]
    assert names(tags.select_models(["dummy2/dummies"], catalog)) == ["dummy2/model1"]
    assert names(tags.select_models(["aaa/dynamic"], catalog)) == ["aaa/model3"]


def test_scoped_name_with_extra_args(catalog):
    (model,) = tags.select_models(["dummy2/model2:batch-size=32"], catalog)
    assert model["name"] == "dummy2/model2"
    assert model["args"] == "--base 1 --batch-size 32"


def test_extra_args_appended_without_separator(catalog):
    (model,) = tags.select_models(["dummy:batch-size=32:fp16"], catalog)
    assert model["args"] == " --batch-size 32 --fp16"
    (dynamic,) = tags.select_models(["aaa/model4:k=v=w"], catalog)
    assert dynamic["args"] == "--x 1 --k v w"


def test_static_card_without_args_works(catalog):
    (model,) = tags.select_models(["noargs"], catalog)
    assert model["args"] == ""
    (model,) = tags.select_models(["noargs:fp16"], catalog)
    assert model["args"] == " --fp16"


def test_empty_pieces_are_dropped(catalog):
    (model,) = tags.select_models([" dummy :: fp16 : "], catalog)
    assert model["name"] == "dummy"
    assert model["args"] == " --fp16"


def test_seeds_form_dir_colon_model(catalog):
    (model,) = tags.select_models(["dummy2:model1"], catalog)
    assert model["name"] == "dummy2/model1"
    assert model["args"] == ""


def test_seeds_form_with_args(catalog):
    (model,) = tags.select_models(["dummy2:model2:batch-size=32"], catalog)
    assert model["name"] == "dummy2/model2"
    assert model["args"] == "--base 1 --batch-size 32"


def test_seeds_form_selecting_a_dynamic_model(catalog):
    (model,) = tags.select_models(["aaa:model3"], catalog)
    assert model["name"] == "aaa/model3"
    assert model["scripts"] == "scripts/aaa/run.sh"


def test_ambiguous_tag_shows_both_readings(tmp_path):
    write_json(tmp_path / "models.json", [card("dummy2")])
    write_json(tmp_path / "scripts" / "dummy2" / "models.json", [scoped("model1")])
    catalog = discovery.discover(str(tmp_path))
    with pytest.raises(DiscoveryError) as info:
        tags.select_models(["dummy2:model1"], catalog)
    msg = info.value.msg
    assert "ambiguous" in msg
    assert "[dummy2] with args '--model1'" in msg
    assert "[dummy2/model1]" in msg
    # the unambiguous spellings still work
    assert tags.select_models(["dummy2/model1"], catalog)[0]["name"] == "dummy2/model1"
    (root,) = tags.select_models(["dummy2:batch-size=1"], catalog)
    assert (root["name"], root["args"]) == ("dummy2", " --batch-size 1")


def test_unknown_tag_is_an_error(catalog):
    with pytest.raises(DiscoveryError) as info:
        tags.select_models(["dummy", "nosuchthing"], catalog)
    assert "nosuchthing" in info.value.msg
    with pytest.raises(DiscoveryError):
        tags.select_models(["dummy2/nosuch"], catalog)
    with pytest.raises(DiscoveryError):
        tags.select_models(["nosuch/all"], catalog)


def test_duplicates_are_removed_keeping_first_order(catalog):
    selected = tags.select_models(["dummy2/model1", "dummies", "dummy", "dummy2/all"], catalog)
    assert names(selected) == ["dummy2/model1", "dummy", "dummy_perf", "aaa/model3", "aaa/model4", "dummy2/model2"]


def test_dynamic_model_selected_twice_is_prefixed_once(catalog):
    selected = tags.select_models(["dummies", "aaa/model3"], catalog)
    (model3,) = [m for m in selected if m["name"] == "aaa/model3"]
    assert model3["dockerfile"] == "docker/dummy"
    assert model3["scripts"] == "scripts/aaa/run.sh"


def test_same_model_with_different_args_is_one_selection_per_args(catalog):
    selected = tags.select_models(["dummy:a=1", "dummy:a=2", "dummy:a=1", "dummies", "aaa/model4:k=1"], catalog)
    assert [(m["name"], m["args"]) for m in selected] == [
        ("dummy", " --a 1"),
        ("dummy", " --a 2"),
        ("dummy", ""),
        ("dummy_perf", ""),
        ("dummy2/model1", ""),
        ("aaa/model3", ""),
        ("aaa/model4", "--x 1"),
        ("aaa/model4", "--x 1 --k 1"),
    ]
    assert selected[0] is not selected[1]


def test_same_model_with_same_args_twice_is_fine(catalog):
    assert names(tags.select_models(["dummy:a=1", "dummy:a=1"], catalog)) == ["dummy"]
    assert names(tags.select_models(["dummy2/model2:b=2", "dummy2:model2:b=2"], catalog)) == ["dummy2/model2"]


@pytest.mark.parametrize(
    ("tag", "suggested"),
    [
        ("dumy", "'dummy'"),
        ("dummy2/modle1", "'dummy2/model1'"),
        ("inferense:batch-size=2", "'inference'"),
        ("dumies", "'dummies'"),
    ],
)
def test_unknown_tag_suggests_close_names_and_tags(catalog, tag, suggested):
    with pytest.raises(DiscoveryError) as info:
        tags.select_models([tag], catalog)
    line = info.value.one_line()
    assert line.startswith(f"tag '{tag}' selects no model. did you mean ")
    assert suggested in line.split("?")[0]
    assert line.endswith("? 'madengine discover' lists the 7 models and their tags")


def test_unknown_tag_without_anything_close_has_no_suggestion(catalog):
    with pytest.raises(DiscoveryError) as info:
        tags.select_models(["zzzzqqq"], catalog)
    assert (
        info.value.one_line()
        == "tag 'zzzzqqq' selects no model. 'madengine discover' lists the 7 models and their tags"
    )


def test_selection_does_not_mutate_the_catalog(catalog):
    tags.select_models(["dummy:fp16"], catalog)
    (model,) = tags.select_models(["dummy"], catalog)
    assert model["args"] == ""
    assert catalog.models[0].card["args"] == ""


def test_comma_separated_values_are_processed_in_order(catalog):
    assert names(tags.select_models(["perf,dummy2/model1", "dummy"], catalog)) == [
        "dummy_perf", "dummy2/model1", "dummy",
    ]  # fmt: skip
