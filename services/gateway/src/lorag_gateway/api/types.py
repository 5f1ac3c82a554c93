"""/api/training-types: each type's parameters as JSON Schema, so forms fill in the defaults."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from lorag_core.contracts.jobs import PARAMETERS_BY_TYPE

router = APIRouter(prefix="/api/training-types", tags=["jobs"])


@router.get("", summary="Training types and the JSON Schema of their parameters")
async def training_types() -> dict[str, Any]:
    return {t.value: model.model_json_schema() for t, model in PARAMETERS_BY_TYPE.items()}
