import pytest

from lorag_cli.submit import parse_params


def test_values_are_json_when_they_parse_and_text_otherwise():
    assert parse_params(["r=16", "lr=0.001", "adapter=support", "flag=true"]) == {
        "r": 16,
        "lr": 0.001,
        "adapter": "support",
        "flag": True,
    }


def test_dotted_keys_nest():
    assert parse_params(["rag.kb=docs", "lora.r=4", "minion=ada"]) == {
        "rag": {"kb": "docs"},
        "lora": {"r": 4},
        "minion": "ada",
    }


def test_a_pair_without_equals_is_an_error():
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_params(["r16"])
