import pytest

from lorag_core.domain.training_types import (
    LegacyTrainingType,
    TrainingType,
    parse_training_type,
    resolve,
)


@pytest.mark.parametrize(
    ("legacy", "new"),
    [
        ("RAG", "EXTERNAL_RAG"),
        ("LORA", "LOCAL_LORA"),
        ("HYBRID", "EXTERNAL_HYBRID"),
        ("FINE_TUNING", "LOCAL_FINE_TUNING"),
    ],
)
def test_legacy_names_map_to_their_successors(legacy, new):
    resolved = resolve(parse_training_type(legacy.lower()))
    assert resolved.requested is LegacyTrainingType(legacy)
    assert resolved.effective is TrainingType(new)
    assert resolved.is_legacy and new in resolved.deprecation_notice


def test_new_names_resolve_to_themselves_without_notice():
    for t in TrainingType:
        resolved = resolve(parse_training_type(t.value))
        assert resolved.effective is t and resolved.deprecation_notice is None


def test_unknown_type_lists_the_valid_ones():
    with pytest.raises(ValueError, match="valid types: EXTERNAL_RAG"):
        parse_training_type("QUANTUM")


def test_five_types():
    assert len(TrainingType) == 5
    assert {t for t in TrainingType if t.runs_locally} == {
        TrainingType.LOCAL_LORA,
        TrainingType.LOCAL_FINE_TUNING,
        TrainingType.LOCAL_HYBRID,
    }
