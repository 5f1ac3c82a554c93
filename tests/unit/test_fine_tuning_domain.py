"""The fine-tuning API's pure parts: chat JSONL checks, hyperparameters, events from progress."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from lorag_lora.domain.chat_jsonl import BadLine, chat_lines, check
from lorag_lora.finetune_models import CreateJob, events_of, job_object
from lorag_lora.serving.errors import OpenAIError

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_chat_lines_round_trip_through_the_check():
    data = chat_lines([("Who?", "Ada"), ("Where?", "Here")], system="Be brief.")
    assert check(data) == 2
    assert json.loads(data.splitlines()[0])["messages"][0] == {
        "role": "system", "content": "Be brief.",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("data", "line"),
    [(b'{"messages": [{"role": "assistant", "content": "x"}]}\n[1]\n', 2),
     (b"\n\n{oops\n", 3), (b'{"messages": []}', 1), (b"\xff\xfe", 1)],
)  # fmt: skip
def test_the_first_bad_line_is_named(data, line):
    with pytest.raises(BadLine) as bad:
        check(data)
    assert bad.value.line == line and str(bad.value).startswith(f"line {line}:")


def test_hyperparameters_settle_auto_and_refuse_out_of_range():
    job = CreateJob(model="base", training_file="file-1")
    assert job.settled_hyperparameters() == {
        "n_epochs": 1, "batch_size": 8, "learning_rate_multiplier": 1.0,
    }  # fmt: skip
    given = CreateJob.model_validate({"model": "base", "training_file": "f", "method": {
        "type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 3}}}})  # fmt: skip
    assert given.settled_hyperparameters()["n_epochs"] == 3
    with pytest.raises(OpenAIError) as refused:
        CreateJob.model_validate(
            {"model": "base", "training_file": "f", "hyperparameters": {"batch_size": 0}}
        ).settled_hyperparameters()
    assert refused.value.status == 400 and refused.value.param == "hyperparameters.batch_size"


def test_progress_becomes_status_and_metrics_events_newest_first():
    row = {"ftjob_id": "ftjob-abc", "created_at": NOW, "job_id": "job-ftjob-abc", "owner": "o",
           "model": "base", "state": "SUCCEEDED", "job_updated_at": NOW, "error": None,
           "hyperparameters": {}, "training_file": "file-1", "validation_file": None,
           "seed": 1, "suffix": None,
           "result": {"summary": {"adapter": "ft-model-abc", "version": 1, "step": 4}}}  # fmt: skip
    progress = [
        {"seq": 1, "state": "VALIDATING", "occurred_at": NOW, "metrics": {}},
        {"seq": 2, "state": "RUNNING", "occurred_at": NOW, "metrics": {}},
        {"seq": 3, "state": "RUNNING", "occurred_at": NOW, "metrics": {"step": 2, "loss": 1.5}},
        {"seq": 4, "state": "SUCCEEDED", "occurred_at": NOW, "metrics": {}},
    ]
    events = events_of(row, progress)
    assert [e["message"] for e in events] == [
        "Status: succeeded", "Step 2: training loss=1.5000", "Status: running",
        "Status: validating_files", "Created fine-tuning job: ftjob-abc",
    ]  # fmt: skip
    assert events[1]["data"] == {"step": 2, "train_loss": 1.5}
    job = job_object(row)
    assert job["status"] == "succeeded" and job["fine_tuned_model"] == "ft-model-abc:1"
