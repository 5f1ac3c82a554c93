"""The fine-tuning API's objects in OpenAI's shapes, and how lorag's job records map onto them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from lorag_lora.serving.errors import OpenAIError

STATUS = {  # lorag job state -> OpenAI fine-tuning status
    None: "queued", "QUEUED": "queued", "VALIDATING": "validating_files", "RUNNING": "running",
    "SUCCEEDED": "succeeded", "FAILED": "failed", "CANCELLED": "cancelled",
}  # fmt: skip
AUTO_EPOCHS, AUTO_BATCH, AUTO_LR_MULTIPLIER = 1, 8, 1.0
LIMITS = {"n_epochs": (1, 50), "batch_size": (1, 256), "learning_rate_multiplier": (0.0, 10.0)}
METRIC_NAMES = {"loss": "train_loss", "eval_loss": "valid_loss", "step": "step",
                "perplexity": "perplexity", "tokens_per_s": "tokens_per_s"}  # fmt: skip


Auto = Literal["auto"]


class Hyperparameters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n_epochs: int | Auto | None = Field(None, description="1 to 50, or auto (1).")
    batch_size: int | Auto | None = Field(None, description="1 to 256, or auto (8).")
    learning_rate_multiplier: float | Auto | None = Field(
        None, description="Above 0, at most 10, or auto (1): times lorag's LoRA learning rate."
    )


class Supervised(BaseModel):
    hyperparameters: Hyperparameters = Field(default_factory=Hyperparameters)


class Method(BaseModel):
    type: Literal["supervised"] = "supervised"
    supervised: Supervised = Field(default_factory=Supervised)


class CreateJob(BaseModel):
    """OpenAI's job request; a LoRA adapter on the local model is what gets trained."""

    model: str = Field(description="The base model: base (the local model), or its name.")
    training_file: str = Field(description="A file id from POST /v1/files.")
    validation_file: str | None = None
    suffix: str | None = Field(
        None, max_length=40, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        description="Part of the fine-tuned model's name.",
    )  # fmt: skip
    seed: int | None = Field(None, ge=0, le=2**31 - 1)
    hyperparameters: Hyperparameters | None = None
    method: Method | None = None

    def settled_hyperparameters(self) -> dict[str, Any]:
        """n_epochs, batch_size, learning_rate_multiplier with auto settled; 400 out of range."""
        given = self.hyperparameters or (self.method.supervised.hyperparameters if self.method
                                         else Hyperparameters())  # fmt: skip
        where = "hyperparameters" if self.hyperparameters else "method.supervised.hyperparameters"
        auto = {"n_epochs": AUTO_EPOCHS, "batch_size": AUTO_BATCH,
                "learning_rate_multiplier": AUTO_LR_MULTIPLIER}  # fmt: skip
        settled: dict[str, Any] = {}
        for name, default in auto.items():
            value = getattr(given, name)
            value = default if value in (None, "auto") else value
            low, high = LIMITS[name]
            too_low = value <= low if name == "learning_rate_multiplier" else value < low
            if too_low or value > high:
                raise OpenAIError(400, f"{where}.{name} must be within {low} to {high}, got "
                                  f"{value}", param=f"{where}.{name}",
                                  code="invalid_hyperparameters")  # fmt: skip
            settled[name] = value
        return settled


class FileObject(BaseModel):
    id: str
    object: Literal["file"] = "file"
    bytes: int
    created_at: int
    filename: str
    purpose: str
    status: str = "processed"


class FilesPage(BaseModel):
    object: Literal["list"] = "list"
    data: list[FileObject]
    has_more: bool = False


class Deleted(BaseModel):
    id: str
    object: Literal["file"] = "file"
    deleted: bool


class JobObject(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    object: Literal["fine_tuning.job"] = "fine_tuning.job"
    created_at: int
    finished_at: int | None = None
    model: str
    fine_tuned_model: str | None = None
    organization_id: str
    status: str
    hyperparameters: dict[str, Any]
    training_file: str
    validation_file: str | None = None
    result_files: list[str] = Field(default_factory=list)
    trained_tokens: int | None = None
    error: dict[str, Any] | None = None
    seed: int
    suffix: str | None = None
    method: dict[str, Any]


class JobsPage(BaseModel):
    object: Literal["list"] = "list"
    data: list[JobObject]
    has_more: bool


class JobEvent(BaseModel):
    id: str
    object: Literal["fine_tuning.job.event"] = "fine_tuning.job.event"
    created_at: int
    level: Literal["info", "warn", "error"]
    message: str
    type: Literal["message", "metrics"]
    data: dict[str, Any] = Field(default_factory=dict)


class JobEvents(BaseModel):
    object: Literal["list"] = "list"
    data: list[JobEvent]
    has_more: bool


class Checkpoint(BaseModel):
    id: str
    object: Literal["fine_tuning.job.checkpoint"] = "fine_tuning.job.checkpoint"
    created_at: int
    fine_tuned_model_checkpoint: str
    fine_tuning_job_id: str
    step_number: int
    metrics: dict[str, float]


class JobCheckpoints(BaseModel):
    object: Literal["list"] = "list"
    data: list[Checkpoint]
    has_more: bool
    first_id: str | None = None
    last_id: str | None = None


def _epoch(value: Any) -> int:
    return int(value.timestamp())


def file_object(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["file_id"], "object": "file", "bytes": row["bytes"],
            "created_at": _epoch(row["created_at"]), "filename": row["filename"],
            "purpose": row["purpose"], "status": "processed"}  # fmt: skip


def fine_tuned_model(row: dict[str, Any]) -> str | None:
    """ADAPTER:VERSION once the job succeeded: a model name chat completions take."""
    summary = ((row.get("result") or {}).get("summary")) or {}
    if row.get("state") != "SUCCEEDED" or "version" not in summary:
        return None
    return f"{summary['adapter']}:{summary['version']}"


def job_object(row: dict[str, Any]) -> dict[str, Any]:
    state = row.get("state")
    error = row.get("error")
    ended = state in ("SUCCEEDED", "FAILED", "CANCELLED")
    return {
        "id": row["ftjob_id"], "object": "fine_tuning.job",
        "created_at": _epoch(row["created_at"]),
        "finished_at": _epoch(row["job_updated_at"]) if ended and row.get("job_updated_at")
        else None,
        "model": row["model"], "fine_tuned_model": fine_tuned_model(row),
        "organization_id": row["owner"], "status": STATUS.get(state, "queued"),
        "hyperparameters": row["hyperparameters"], "training_file": row["training_file"],
        "validation_file": row["validation_file"], "result_files": [],
        "trained_tokens": None, "seed": row["seed"], "suffix": row["suffix"],
        "error": {"code": error.get("code"), "message": error.get("message"), "param": None}
        if state == "FAILED" and error else None,
        "method": {"type": "supervised",
                   "supervised": {"hyperparameters": row["hyperparameters"]}},
        "lorag_job_id": row["job_id"],
    }  # fmt: skip


def events_of(row: dict[str, Any], progress: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The job's tracker progress as fine_tuning.job.event objects, newest first: a status
    change is a message, a report with a training step is a metrics event."""
    events = [{
        "id": f"ftevent-{row['ftjob_id'][6:]}-0", "object": "fine_tuning.job.event",
        "created_at": _epoch(row["created_at"]), "level": "info", "type": "message",
        "message": f"Created fine-tuning job: {row['ftjob_id']}", "data": {},
    }]  # fmt: skip
    last_state = None
    for p in progress:
        created, ident = _epoch(p["occurred_at"]), f"ftevent-{row['ftjob_id'][6:]}-{p['seq']}"
        metrics = p.get("metrics") or {}
        if p["state"] != last_state:
            last_state = p["state"]
            message = f"Status: {STATUS.get(p['state'], p['state'])}"
            if p["state"] == "FAILED" and p.get("error"):
                message += f": {p['error'].get('message')}"
            level = "error" if p["state"] == "FAILED" else "info"
            events.append({"id": ident, "object": "fine_tuning.job.event", "created_at": created,
                           "level": level, "type": "message", "message": message,
                           "data": {"stage": p.get("stage")}})  # fmt: skip
        elif "step" in metrics and "loss" in metrics:
            data = {METRIC_NAMES[k]: v for k, v in metrics.items() if k in METRIC_NAMES}
            events.append({"id": ident, "object": "fine_tuning.job.event", "created_at": created,
                           "level": "info", "type": "metrics",
                           "message": f"Step {int(metrics['step'])}: training loss="
                           f"{metrics['loss']:.4f}", "data": data})  # fmt: skip
    return events[::-1]


def checkpoints_of(row: dict[str, Any]) -> list[dict[str, Any]]:
    """The final adapter version of a succeeded job (lorag keeps no intermediate ones after)."""
    model = fine_tuned_model(row)
    if model is None:
        return []
    summary = row["result"]["summary"]
    metrics = {METRIC_NAMES[k]: float(v) for k, v in summary.items()
               if k in METRIC_NAMES and isinstance(v, int | float)}  # fmt: skip
    return [{"id": f"ftckpt-{row['ftjob_id'][6:]}", "object": "fine_tuning.job.checkpoint",
             "created_at": _epoch(row["job_updated_at"]), "fine_tuned_model_checkpoint": model,
             "fine_tuning_job_id": row["ftjob_id"], "step_number": int(summary.get("step", 0)),
             "metrics": metrics}]  # fmt: skip
