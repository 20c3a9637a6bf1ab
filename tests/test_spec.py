"""Bad specifications fail before estimation, naming the field, the value and the nearest valid names."""

import pytest

from eqexp.spec import SpecError, check_variables, load_spec

COLUMNS = ["firm_id", "year", "province", "quality", "market", "scale", "age", "roa", "rdebt", "fic", "soe", "region"]


def base() -> dict:
    return {"model": {"outcome": "quality", "treatment": "market", "controls": ["scale", "age"]}}


def test_valid_spec_is_typed():
    spec = load_spec({**base(), "report": {"digits": "3"}})
    assert spec.report.digits == 3 and spec.model.controls == ["scale", "age"]


def test_unknown_key_suggests_nearest():
    with pytest.raises(SpecError, match=r"Unknown key 'model.contrls'.*Did you mean 'controls'"):
        load_spec({"model": {"contrls": ["scale"]}})


def test_unknown_top_level_key():
    with pytest.raises(SpecError, match=r"Unknown key 'hetro'.*'hetero'"):
        load_spec({"hetro": {}})


def test_unknown_key_inside_list_of_columns():
    with pytest.raises(SpecError, match=r"model.columns\[1\].lable.*'label'"):
        load_spec({"model": {"columns": [{}, {"lable": "x"}]}})


def test_wrong_type_names_the_field():
    with pytest.raises(SpecError, match=r"report.digits"):
        load_spec({"report": {"digits": "four"}})


def test_bad_choice_lists_the_valid_ones():
    with pytest.raises(SpecError, match=r"'vcov.type' is 'CRV9'.*CRV1, CRV3.*Did you mean .*'CRV1'"):
        load_spec({"vcov": {"type": "CRV9"}})


def test_missing_variable_suggests_column():
    spec = load_spec({"model": {"controls": ["scale", "roaa"]}})
    with pytest.raises(SpecError, match=r"'model.controls' names the variable 'roaa'.*Did you mean 'roa'"):
        check_variables(spec, COLUMNS)


def test_fixed_effect_not_a_column():
    spec = load_spec({"model": {"controls": [], "fixed_effects": ["firm", "year"]}})
    with pytest.raises(SpecError, match=r"'model.fixed_effects' names the variable 'firm'.*'firm_id'"):
        check_variables(spec, COLUMNS)


def test_group_query_with_unknown_column():
    spec = load_spec({"model": {"controls": []}, "hetero": {"groups": {"SOE": "soee == 1"}}})
    with pytest.raises(SpecError, match=r"hetero.groups.SOE.*soee.*Did you mean 'soe'"):
        check_variables(spec, COLUMNS)


def test_cluster_variable_checked():
    spec = load_spec({"model": {"controls": []}, "vcov": {"cluster": ["provnce"]}})
    with pytest.raises(SpecError, match=r"vcov.cluster.*'provnce'.*'province'"):
        check_variables(spec, COLUMNS)


def test_a_loaded_spec_is_read_only_and_replace_builds_another():
    import dataclasses

    spec = load_spec({})
    for change in (lambda: setattr(spec, "force", True), lambda: setattr(spec.vcov, "label", "x"),
                   lambda: setattr(spec.model.columns[0], "label", "x")):
        with pytest.raises(dataclasses.FrozenInstanceError, match="read-only"):
            change()
    other = dataclasses.replace(spec, force=True)
    assert other.force and not spec.force
