"""Set-based conversion: plainly valid legacy rows become jobs inside Postgres, in one statement.

Decisions: the mapping of `domain/legacy.py` and `domain/legacy_config.py` is restated here in
SQL, but only for rows that are plainly valid: exact type and status names, known keys, values of
the JSON type the parameter wants (or the numeric strings the old UI stored) within the models'
bounds. Every other row is "doubtful" and goes through the Python/pydantic conversion, which stays
the one judge of what is invalid and why; so SQL never refuses a row, it only declines to decide.
The defaults, names, state and type mappings are read from the Python models when this module
loads, so the two paths cannot drift on those; tests compare the two on every kind of row.
"""

from __future__ import annotations

import json
from typing import Any

from lorag_core.contracts.parameters import (
    FineTuningParameters,
    HybridParameters,
    LoraParameters,
    RagParameters,
)
from lorag_core.domain.training_types import LegacyTrainingType, resolve
from lorag_migration.domain.legacy import (
    EVENT_NAMESPACE,
    JOB_ID_PREFIX,
    MAX_ERROR_MESSAGE,
    STATES,
    _error,
)
from lorag_migration.domain.legacy_config import (
    HYBRID_KEYS,
    KNOWN_KEYS,
    LORA_KEYS,
    RAG_KEYS,
    TRAINING_KEYS,
)

# Bounded repeats ({0,63}) make Postgres' regex engine slow: the pattern says the shape,
# length() the size.
NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
NAME_MAX = 64
BIG = 999_999_999  # unbounded ints: larger ones are left to Python (they are not plainly valid)
# Bounds per new parameter name: (kind, low, low inclusive, high, high inclusive).
SPECS: dict[str, tuple[str, float, bool, float, bool]] = {
    "chunk_tokens": ("int", 16, True, 4096, True),
    "chunk_overlap": ("int", 0, True, 1024, True),
    "r": ("int", 1, True, 256, True),
    "batch_size": ("int", 1, True, 1024, True),
    "max_steps": ("int", 1, True, BIG, True),
    "max_seq_len": ("int", 8, True, 32768, True),
    "seed": ("int", 0, True, BIG, True),
    "alpha": ("float", 0, False, 1e15, True),
    "dropout": ("float", 0, True, 1, False),
    "epochs": ("float", 0, False, 100, True),
    "lr": ("float", 0, False, 1, False),
    "kb": ("name", 0, True, 0, True),
    "adapter": ("name", 0, True, 0, True),
    "minion": ("name", 0, True, 0, True),
    "target_modules": ("strings", 0, True, 0, True),
    "embedding_model": ("str", 0, True, 0, True),
    "text_field": ("str", 0, True, 0, True),
    "eval_file": ("str", 0, True, 0, True),
    "base_model": ("str", 0, True, 0, True),
    "llm_model": ("str", 0, True, 0, True),
}
INT_NUMBER = r"^[0-9]+(\.0+)?$"  # jsonb prints numbers canonically: no exponent, no sign
INT_STRING = r"^(0|[1-9][0-9]*)$"
FLOAT_NUMBER = r"^[0-9]+(\.[0-9]+)?$"
FLOAT_STRING = r"^(0|[1-9][0-9]*)(\.[0-9]+)?$"
NUMBER_MAX = {"int": 9, "float": 30}  # characters: longer numbers are left to Python


def _lit(value: Any) -> str:
    """A Python value as a jsonb literal."""
    return "'" + json.dumps(value).replace("'", "''") + "'::jsonb"


def _text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _value(old: str, new: str) -> tuple[str, str]:
    """(SQL that the legacy key's value is acceptable, SQL of its jsonb value or NULL)."""
    raw, text = f'k."{old}"', f"""(k."{old}" #>> '{{}}')"""
    absent = f"coalesce(jsonb_typeof({raw}), 'null') = 'null'"
    kind, low, low_in, high, high_in = SPECS[new]
    typ = f"jsonb_typeof({raw})"
    if kind in ("int", "float"):
        num, string = (INT_NUMBER, INT_STRING) if kind == "int" else (FLOAT_NUMBER, FLOAT_STRING)
        cast = "numeric" if kind == "int" else "float8"
        shape = (f"length({text}) <= {NUMBER_MAX[kind]}"
                 f" AND (({typ} = 'number' AND {text} ~ '{num}')"
                 f" OR ({typ} = 'string' AND {text} ~ '{string}'))")  # fmt: skip
        above, below = (">=" if low_in else ">"), ("<=" if high_in else "<")
        bounds = f"{text}::{cast} {above} {low} AND {text}::{cast} {below} {high}"
        ok = f"({absent} OR CASE WHEN {shape} THEN {bounds} ELSE false END)"
        number = f"{text}::{cast}" + ("::int" if kind == "int" else "")
        value = f"CASE WHEN NOT {absent} THEN to_jsonb({number}) END"
        return ok, value
    if kind == "name":
        named = f"length({text}) <= {NAME_MAX} AND {text} ~ '{NAME}'"
        ok = f"({absent} OR ({typ} = 'string' AND {named}))"
    elif kind == "str":
        ok = f"({absent} OR {typ} = 'string')"
    else:  # a list of strings
        ok = (f"({absent} OR ({typ} = 'array' AND NOT jsonb_path_exists({raw},"
              f" 'strict $[*] ? (@.type() != \"string\")')))")  # fmt: skip
    return ok, f"CASE WHEN NOT {absent} THEN {raw} END"


def _checks(names: dict[str, str]) -> str:
    """SQL that every legacy key named is absent, null or plainly valid."""
    return " AND ".join(_value(old, new)[0] for old, new in names.items())


def _params(model: type, names: dict[str, str], nested: dict[str, str] | None = None) -> str:
    """SQL of the model's whole parameters object: given values over its defaults, built once."""
    given = {new: _value(old, new)[1] for old, new in names.items()}
    pairs = []
    for field, default in model().model_dump(mode="json").items():
        if nested and field in nested:
            pairs.append(f"{_text(field)}, {nested[field]}")
        elif field in given:
            pairs.append(f"{_text(field)}, coalesce({given[field]}, {_lit(default)})")
        else:
            pairs.append(f"{_text(field)}, {_lit(default)}")
    return f"jsonb_build_object({', '.join(pairs)})"


def _overlap_ok() -> str:
    """chunk_overlap < chunk_tokens, defaults included (only evaluated once the values passed)."""
    tokens = f"""coalesce((k."chunk_size" #>> '{{}}')::numeric, {RagParameters().chunk_tokens})"""
    overlap = (
        f"""coalesce((k."chunk_overlap" #>> '{{}}')::numeric, {RagParameters().chunk_overlap})"""
    )
    return f"({overlap} < {tokens})"


def _per_type() -> dict[str, tuple[str, str]]:
    """Per legacy type: (SQL that its config is plainly valid, SQL of its parameters)."""
    rag_ok, lora_ok = _checks(RAG_KEYS), _checks(LORA_KEYS)
    rag, lora = _params(RagParameters, RAG_KEYS), _params(LoraParameters, LORA_KEYS)
    hybrid = _params(HybridParameters, HYBRID_KEYS, {"rag": rag, "lora": lora})
    return {
        "RAG": (f"CASE WHEN {rag_ok} THEN {_overlap_ok()} ELSE false END", rag),
        "LORA": (lora_ok, lora),
        "FINE_TUNING": (_checks(TRAINING_KEYS), _params(FineTuningParameters, TRAINING_KEYS)),
        "HYBRID": (
            f"CASE WHEN {rag_ok} AND {lora_ok} AND {_checks(HYBRID_KEYS)}"
            f" THEN {_overlap_ok()} ELSE false END",
            hybrid,
        ),
    }


def _dataset() -> tuple[str, str]:
    """(SQL that the dataset keys of `l.config` are plainly valid, SQL of the one DatasetRef)."""

    def value(key: str) -> str:
        return f"(l.config -> '{key}')"

    def given(key: str) -> str:
        return (f"CASE WHEN jsonb_typeof({value(key)}) = 'string' AND {value(key)} <> '\"\"'"
                f" THEN l.config ->> '{key}' END")  # fmt: skip

    def plain(key: str) -> str:  # absent, null, "" or a string: anything else is doubtful
        return f"coalesce(jsonb_typeof({value(key)}), 'null') IN ('null', 'string')"

    path, uri = given("dataset_path"), given("dataset_uri")
    chosen = f"coalesce({path}, {uri})"
    ok = (f"{plain('dataset_path')} AND {plain('dataset_uri')} AND {plain('dataset_format')}"
          f" AND length({chosen}) <= 2048"
          f" AND ({path} IS NULL OR {uri} IS NULL OR {path} = {uri})")  # fmt: skip
    # an absent format is null in the ref, as config.get gives None
    fmt = f"coalesce({value('dataset_format')}, 'null'::jsonb)"
    return ok, f"jsonb_build_object('uri', {chosen}, 'format', {fmt}, 'sha256', NULL)"


def _case(per_type: dict[str, str], fallback: str = "NULL") -> str:
    whens = " ".join(f"WHEN {_text(t)} THEN {sql}" for t, sql in per_type.items())
    return f"CASE l.type {whens} ELSE {fallback} END"


def _state_sql() -> str:
    whens = " ".join(f"WHEN {_text(s)} THEN {_text(state.value)}" for s, state in STATES.items())
    return f"CASE l.status {whens} END"


def _error_sql() -> str:
    """The JobError per status, from the Python function itself; a failure keeps its message."""
    marker = "<legacy message>"
    whens = []
    for status in STATES:
        error = _error(status, marker)
        if error is None:
            continue
        shown = _lit(error.model_dump(mode="json"))
        if error.message == marker:
            default = _error(status, None).message  # type: ignore[union-attr]
            given = f"coalesce(nullif(l.error_message, ''), {_text(default)})"
            shown += f" || jsonb_build_object('message', left({given}, {MAX_ERROR_MESSAGE}))"
        whens.append(f"WHEN {_text(status)} THEN {shown}")
    return f"CASE l.status {' '.join(whens)} END"


def _terminal_states() -> str:
    return ", ".join(sorted({_text(s.value) for s in STATES.values() if s.is_terminal}))


def _event_id() -> str:
    """uuid3(EVENT_NAMESPACE, id), as Python's uuid.uuid3 computes it (RFC 4122, MD5)."""
    # md5 twice is cheaper than a per-row subquery that computes it once
    digest = f"md5(decode('{EVENT_NAMESPACE.hex}', 'hex') || convert_to(l.id, 'UTF8'))"
    variant = f"substr('89ab', (('x' || substr({digest}, 17, 1))::bit(4)::int & 3) + 1, 1)"
    return f"overlay(overlay({digest} PLACING '3' FROM 13 FOR 1) PLACING {variant} FROM 17 FOR 1)"


def _types() -> tuple[str, str]:
    requested = {t.value: _text(resolve(t).requested.value) for t in LegacyTrainingType}
    effective = {t.value: _text(resolve(t).effective.value) for t in LegacyTrainingType}
    return _case(requested), _case(effective)


def _row_ok() -> str:
    """SQL that a row `l` is plainly valid apart from its parameters (type, status, ids, data)."""
    data_ok, _ = _dataset()
    # JobId is ^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$ and the prefix starts with a letter
    id_ok = f"length(l.id) <= {128 - len(JOB_ID_PREFIX)} AND l.id ~ '^[A-Za-z0-9._:-]+$'"
    return (f"coalesce(l.type IN ({', '.join(_text(t.value) for t in LegacyTrainingType)})"
            f" AND l.status IN ({', '.join(_text(s) for s in STATES)})"
            f" AND jsonb_typeof(l.config) = 'object' AND {id_ok}"
            f" AND (l.minion_id IS NULL OR length(l.minion_id) <= {MINION_MAX})"
            f" AND CASE WHEN jsonb_typeof(l.config) = 'object' THEN {data_ok} ELSE false END,"
            f" false)")  # fmt: skip


def _params_ok() -> str:
    """SQL that the parameter keys of `l.config` (with its keys `k`) are plainly valid."""
    keys = {t.value: "ARRAY[" + ", ".join(_text(k) for k in sorted(KNOWN_KEYS[t])) + "]"
            for t in LegacyTrainingType}  # fmt: skip
    known = _case({t: f"(l.config - {k}) = '{{}}'::jsonb" for t, k in keys.items()}, "false")
    per_type = _case({t: ok for t, (ok, _) in _per_type().items()}, "false")
    return f"coalesce(CASE WHEN {known} THEN {per_type} ELSE false END, false)"


def _job_select() -> str:
    """The jobs columns of a plainly valid row `l` whose parameters object is `p.params`."""
    _, ref = _dataset()
    # ISO 8601 with the session's offset: the contract reads it as the same instant
    occurred = "to_jsonb(l.created_at)"
    request = (f"jsonb_build_object('schema_version', 1, 'event_id', {_event_id()},"
               f" 'occurred_at', {occurred}, 'job_id', {_text(JOB_ID_PREFIX)} || l.id,"
               f" 'training_type', l.type, 'owner', 'default', 'minion_id', l.minion_id,"
               f" 'datasets', jsonb_build_array({ref}), 'parameters', p.params,"
               f" 'parent_job_id', NULL, 'stage', NULL)")  # fmt: skip
    requested, effective = _types()
    state = _state_sql()
    message = "'converted from legacy job ' || l.id || ' (status ' || l.status || ')'"
    finished = f"CASE WHEN {state} IN ({_terminal_states()}) THEN l.updated_at END"
    return (f"{_text(JOB_ID_PREFIX)} || l.id AS job_id, {requested} AS requested_type,"
            f" {effective} AS effective_type, 'default' AS owner, l.minion_id,"
            f" {request} AS request, {state} AS state, {message} AS message,"
            f" {_error_sql()} AS error, l.created_at AS requested_at, l.created_at,"
            f" {finished} AS finished_at")  # fmt: skip


def _record() -> str:
    """Every key a legacy config may hold, taken apart once per row (a lookup each is slower)."""
    keys = sorted(set().union(*KNOWN_KEYS.values()))
    columns = ", ".join(f'"{key}" jsonb' for key in keys)
    config = "CASE WHEN jsonb_typeof(l.config) = 'object' THEN l.config ELSE '{}' END"
    return f"CROSS JOIN LATERAL jsonb_to_record({config}) AS k({columns})"


MINION_MAX = 128
# Expressions name the row `l` and its config's keys `k`: FROM legacy_training_jobs l {KEYS}
KEYS = _record()
ROW_OK = _row_ok()
PARAMS_OK = _params_ok()
PARAMS = _case({t: p for t, (_, p) in _per_type().items()})
FAST = f"({ROW_OK} AND {PARAMS_OK})"
JOB_SELECT = _job_select()
STATE = _state_sql()  # the new state of a row `l`, as JOB_SELECT names it
# The keys that are not parameters: a batch's rows are validated and mapped once per distinct
# (type, config without these) pair, which legacy jobs share far more often than whole configs.
ROW_KEYS = "ARRAY['dataset_path', 'dataset_uri', 'dataset_format']"
