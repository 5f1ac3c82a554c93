"""The old system's free-form job config, and how its keys become the new typed parameters.

Vocabulary of the legacy `config` JSON object (every key optional unless said):

- all types: `dataset_path` or `dataset_uri` (required, one of them: a path or an s3:// URI),
  `dataset_format` (jsonl, csv, …); `priority`, `tags`, `notes` were scheduling and labels in the
  old system, have no counterpart, and are dropped.
- RAG: `chunk_size`→chunk_tokens, `chunk_overlap`, `embedding_model`, `collection`→kb,
  `text_field`, `eval_file`.
- LORA: `base_model`, `lora_r`→r, `lora_alpha`→alpha, `lora_dropout`→dropout, `target_modules`,
  `epochs`, `learning_rate`→lr, `batch_size`, `max_steps`, `max_seq_length`→max_seq_len, `seed`,
  `adapter_name`→adapter.
- FINE_TUNING: `base_model`, `epochs`, `learning_rate`→lr, `batch_size`, `max_steps`,
  `max_seq_length`→max_seq_len, `seed`.
- HYBRID: the RAG and LORA keys, plus `minion_name`→minion and `llm_model`.

Any other key is refused rather than dropped: a job that silently ran differently from what its
owner configured would be worse than one listed as unconvertible. Values are checked by the
parameter models themselves (numbers stored as numeric strings, as the old UI did, are accepted).
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from lorag_core.contracts.base import Contract
from lorag_core.contracts.jobs import DatasetRef
from lorag_core.contracts.parameters import (
    FineTuningParameters,
    HybridParameters,
    LoraParameters,
    RagParameters,
)
from lorag_core.domain.training_types import LegacyTrainingType

DATASET_KEYS = ("dataset_path", "dataset_uri")
COMMON_KEYS = {*DATASET_KEYS, "dataset_format"}
DROPPED_KEYS = {"priority", "tags", "notes"}
RAG_KEYS = {
    "chunk_size": "chunk_tokens", "chunk_overlap": "chunk_overlap",
    "embedding_model": "embedding_model", "collection": "kb", "text_field": "text_field",
    "eval_file": "eval_file",
}  # fmt: skip
TRAINING_KEYS = {
    "base_model": "base_model", "epochs": "epochs", "learning_rate": "lr",
    "batch_size": "batch_size", "max_steps": "max_steps", "max_seq_length": "max_seq_len",
    "seed": "seed",
}  # fmt: skip
LORA_KEYS = {
    **TRAINING_KEYS, "lora_r": "r", "lora_alpha": "alpha", "lora_dropout": "dropout",
    "target_modules": "target_modules", "adapter_name": "adapter",
}  # fmt: skip
HYBRID_KEYS = {"minion_name": "minion", "llm_model": "llm_model"}
KNOWN_KEYS = {
    LegacyTrainingType.RAG: COMMON_KEYS | DROPPED_KEYS | RAG_KEYS.keys(),
    LegacyTrainingType.LORA: COMMON_KEYS | DROPPED_KEYS | LORA_KEYS.keys(),
    LegacyTrainingType.FINE_TUNING: COMMON_KEYS | DROPPED_KEYS | TRAINING_KEYS.keys(),
    LegacyTrainingType.HYBRID: COMMON_KEYS | DROPPED_KEYS | {*RAG_KEYS, *LORA_KEYS, *HYBRID_KEYS},
}


class ConfigError(ValueError):
    """Why a legacy config cannot become a job request; the message is the recorded reason."""


def dataset_of(config: dict[str, Any]) -> DatasetRef:
    """The one dataset a legacy job read."""
    given = [config[k] for k in DATASET_KEYS if config.get(k) not in (None, "")]
    if not given:
        raise ConfigError("missing dataset: config has neither dataset_path nor dataset_uri")
    if len(given) > 1 and given[0] != given[1]:
        raise ConfigError("ambiguous dataset: dataset_path and dataset_uri differ")
    return _validated(DatasetRef, {"uri": given[0], "format": config.get("dataset_format")})


def parameters_of(legacy: LegacyTrainingType, config: dict[str, Any]) -> Contract:
    """Typed parameters of the type the legacy type maps to."""
    unknown = sorted(set(config) - KNOWN_KEYS[legacy])
    if unknown:
        raise ConfigError(f"unknown config keys for {legacy.value}: {', '.join(unknown)}")
    if legacy is LegacyTrainingType.RAG:
        return _validated(RagParameters, _renamed(config, RAG_KEYS))
    if legacy is LegacyTrainingType.LORA:
        return _validated(LoraParameters, _renamed(config, LORA_KEYS))
    if legacy is LegacyTrainingType.FINE_TUNING:
        return _validated(FineTuningParameters, _renamed(config, TRAINING_KEYS))
    rag = _validated(RagParameters, _renamed(config, RAG_KEYS))
    lora = _validated(LoraParameters, _renamed(config, LORA_KEYS))
    return _validated(HybridParameters, {**_renamed(config, HYBRID_KEYS), "rag": rag, "lora": lora})


def _renamed(config: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    # A null in the old config meant "use the default", as an absent key does here.
    return {new: config[old] for old, new in names.items() if config.get(old) is not None}


def _validated(model: type[Contract], data: dict[str, Any]) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"invalid {model.__name__}: {summary(exc)}") from None


def summary(exc: ValidationError) -> str:
    """A validation error in one line: field, problem and the value given."""
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "value"
        parts.append(f"{where}: {err['msg']} (got {err.get('input')!r:.60})")
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")
