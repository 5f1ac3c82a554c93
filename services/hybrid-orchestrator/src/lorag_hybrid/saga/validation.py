"""What a hybrid must pass before any sub-job starts: parameters, datasets, resources."""

from __future__ import annotations

import asyncio

from lorag_core.contracts import JobRequested
from lorag_core.domain.training_types import TrainingType
from lorag_core.service.worker import JobFailed
from lorag_core.storage import ObjectStore, parse_s3_uri
from lorag_hybrid.recommend import estimate, models
from lorag_hybrid.recommend.resources import Resources
from lorag_hybrid.saga.plan import conflicts, parameters


async def validate(request: JobRequested, objects: ObjectStore, machine: Resources) -> None:
    """Raise JobFailed with the first problem found; return when the hybrid can start."""
    if problems := conflicts(request):
        raise JobFailed("HYBRID_PARAMETERS_CONFLICT", "; ".join(problems))
    for ref in request.datasets:
        if not ref.uri.startswith("s3://"):
            raise JobFailed("DATASET_SCHEME_NOT_ALLOWED", f"{ref.uri}: hybrids read s3:// datasets")
        bucket, prefix = parse_s3_uri(ref.uri)
        if not await asyncio.to_thread(_any_object, objects, bucket, prefix):
            raise JobFailed("DATASET_NOT_FOUND", f"{ref.uri} holds no files; upload it first")
    lora = parameters(request).lora
    try:
        model = models.resolve(lora.base_model)
    except ValueError as exc:
        if request.resolved.effective is TrainingType.LOCAL_HYBRID:
            raise JobFailed("BASE_MODEL_NOT_FOUND", str(exc)) from None
        return  # a hub model we cannot size: the lora-service checks it when it loads it
    needed = estimate.train_memory(
        model,
        estimate.lora_params(model, lora.r),
        lora.batch_size,
        lora.max_seq_len,
        machine.has_gpu,
    )
    available = machine.gpu_memory_bytes if machine.has_gpu else machine.memory_bytes
    if needed > available:
        raise JobFailed(
            "TARGET_UNMEETABLE",
            f"the LoRA stage needs ~{needed / 2**30:.1f} GB with {model.name}, batch "
            f"{lora.batch_size} x {lora.max_seq_len}; {available / 2**30:.1f} GB is available. "
            "Use a smaller base model, batch or sequence length.",
        )


def _any_object(objects: ObjectStore, bucket: str, prefix: str) -> bool:
    try:
        return next(objects.list_keys(bucket, prefix), None) is not None
    except Exception:  # a missing bucket is as empty as an empty prefix
        return False
