"""The OpenAI fine-tuning API on the lora-service, through the official openai client.

Each fine-tuning job is a LOCAL_LORA job on Kafka and Postgres, run by the real lora-service
with the tiny model; the owner is the API key's (a gateway token).
"""

from __future__ import annotations

import json
import time
import uuid

import openai
import pytest

from tests.integration import test_lora_helpers as helpers
from tests.integration.test_lora_helpers import pairs
from tests.support.gateway import make_token

pytestmark = pytest.mark.integration
lora, tiny_models = helpers.lora, helpers.tiny_models  # the module's fixtures
RUN = uuid.uuid4().hex[:6]
TIMEOUT = 300


def chats(answer: str, n: int = 32) -> bytes:
    rows = [
        {"messages": [{"role": "user", "content": p["instruction"]},
                      {"role": "assistant", "content": p["response"]}]}
        for p in pairs(answer, n)
    ]  # fmt: skip
    return ("\n".join(json.dumps(r) for r in rows) + "\n").encode()


@pytest.fixture(scope="module")
def keys(settings) -> dict[str, str]:
    return {who: make_token(f"{who}-{RUN}") for who in ("alice", "bob")}


@pytest.fixture(scope="module")
def alice(tracker, lora, keys) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"http://127.0.0.1:{lora.api_port}/v1", api_key=keys["alice"],
                         max_retries=0, timeout=120)  # fmt: skip


@pytest.fixture(scope="module")
def bob(lora, keys) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"http://127.0.0.1:{lora.api_port}/v1", api_key=keys["bob"],
                         max_retries=0, timeout=120)  # fmt: skip


@pytest.fixture(scope="module")
def training_file(alice) -> openai.types.FileObject:
    return alice.files.create(file=("colours.jsonl", chats("blue")), purpose="fine-tune")


def wait_status(client: openai.OpenAI, job_id: str, *statuses: str) -> object:
    deadline = time.monotonic() + TIMEOUT
    while True:
        job = client.fine_tuning.jobs.retrieve(job_id)
        if job.status in statuses:
            return job
        assert job.status not in ("failed", "cancelled", "succeeded"), (job.status, job.error)
        assert time.monotonic() < deadline, f"{job_id} still {job.status}"
        time.sleep(0.5)


def test_upload_list_and_delete_files(alice, training_file):
    assert training_file.id.startswith("file-") and training_file.purpose == "fine-tune"
    assert training_file.bytes == len(chats("blue")) and training_file.filename == "colours.jsonl"
    assert training_file.id in {f.id for f in alice.files.list()}
    spare = alice.files.create(file=("spare.jsonl", chats("red", 2)), purpose="fine-tune")
    assert alice.files.retrieve(spare.id).id == spare.id
    assert alice.files.delete(spare.id).deleted
    with pytest.raises(openai.NotFoundError):
        alice.files.retrieve(spare.id)


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (chats("blue", 2) + b"not json\n", "line 3: is not JSON"),
        (b'{"prompt": "x", "completion": "y"}\n', "line 1: lacks `messages`"),
        (b'{"messages": [{"role": "user", "content": "hi"}]}\n', "line 1: the last message"),
        (b'{"messages": [{"role": "robot", "content": "hi"}]}\n', "line 1: messages[0]"),
        (b"\n\n", "holds no examples"),
    ],
)
def test_a_bad_training_file_is_400_naming_the_line(alice, content, says):
    with pytest.raises(openai.BadRequestError) as refused:
        alice.files.create(file=("bad.jsonl", content), purpose="fine-tune")
    error = refused.value.body
    assert says in error["message"] and error["param"] == "file", error
    assert error["code"] == "invalid_file_format" and error["type"] == "invalid_request_error"


def test_a_job_trains_reports_events_and_its_model_answers(alice, training_file):
    job = alice.fine_tuning.jobs.create(
        model="base", training_file=training_file.id, suffix="colours", seed=7,
        hyperparameters={"n_epochs": 2, "batch_size": 8, "learning_rate_multiplier": 10},
    )  # fmt: skip
    assert job.id.startswith("ftjob-") and job.status in ("queued", "validating_files")
    assert job.seed == 7 and job.hyperparameters.n_epochs == 2 and job.fine_tuned_model is None
    done = wait_status(alice, job.id, "succeeded")
    assert done.fine_tuned_model and done.fine_tuned_model.startswith("ft-colours-")
    assert done.finished_at and done.finished_at >= done.created_at

    events = alice.fine_tuning.jobs.list_events(job.id, limit=100).data
    assert all(e.object == "fine_tuning.job.event" for e in events)
    assert events[0].message == "Status: succeeded"  # newest first
    assert events[-1].message == f"Created fine-tuning job: {job.id}"
    metrics = [e for e in events if e.type == "metrics"]
    assert metrics and all("train_loss" in e.data and "step" in e.data for e in metrics)
    assert {"Status: validating_files", "Status: running"} <= {e.message for e in events}
    first_two = alice.fine_tuning.jobs.list_events(job.id, limit=2)
    rest = alice.fine_tuning.jobs.list_events(job.id, limit=100, after=first_two.data[-1].id)
    assert first_two.has_more and [e.id for e in first_two.data + rest.data] == [
        e.id for e in events
    ]

    [checkpoint] = alice.fine_tuning.jobs.checkpoints.list(job.id).data
    assert checkpoint.fine_tuned_model_checkpoint == done.fine_tuned_model
    assert checkpoint.step_number > 0 and checkpoint.metrics.train_loss is not None

    answer = alice.chat.completions.create(
        model=done.fine_tuned_model,
        messages=[{"role": "user", "content": "What colour is the sky? (1)"}], max_tokens=8,
    )  # fmt: skip
    assert answer.model == done.fine_tuned_model
    assert isinstance(answer.choices[0].message.content, str)


def test_a_job_is_cancelled_and_jobs_list_in_pages(alice, training_file):
    job = alice.fine_tuning.jobs.create(
        model="base", training_file=training_file.id, hyperparameters={"n_epochs": 50}
    )
    cancelled = alice.fine_tuning.jobs.cancel(job.id)
    assert cancelled.id == job.id
    assert wait_status(alice, job.id, "cancelled").fine_tuned_model is None
    with pytest.raises(openai.BadRequestError):
        alice.fine_tuning.jobs.cancel(job.id)  # it already ended

    first = alice.fine_tuning.jobs.list(limit=1)
    assert len(first.data) == 1 and first.has_more and first.data[0].id == job.id  # newest first
    second = alice.fine_tuning.jobs.list(limit=1, after=first.data[0].id)
    assert len(second.data) == 1 and second.data[0].id != job.id
    every = [j.id for j in alice.fine_tuning.jobs.list(limit=1)]  # the client follows the pages
    assert len(every) == len(set(every)) >= 2 and every[0] == job.id


def test_bad_input_is_refused_in_openais_shape(alice, bob, training_file):
    with pytest.raises(openai.NotFoundError) as unknown:
        alice.fine_tuning.jobs.create(model="gpt-imaginary", training_file=training_file.id)
    assert unknown.value.body["code"] == "model_not_found"
    for hyper in ({"n_epochs": 0}, {"batch_size": 1000}, {"learning_rate_multiplier": 11},
                  {"learning_rate_multiplier": 0}):  # fmt: skip
        with pytest.raises(openai.BadRequestError) as out_of_range:
            alice.fine_tuning.jobs.create(
                model="base", training_file=training_file.id, hyperparameters=hyper
            )
        [name] = hyper
        assert out_of_range.value.body["param"] == f"hyperparameters.{name}"
    with pytest.raises(openai.BadRequestError) as supervised:
        alice.fine_tuning.jobs.create(
            model="base", training_file=training_file.id,
            method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 51}}},
        )  # fmt: skip
    assert supervised.value.body["param"] == "method.supervised.hyperparameters.n_epochs"


def test_another_owners_files_and_jobs_are_not_found(alice, bob, training_file):
    job = alice.fine_tuning.jobs.list(limit=1).data[0]
    missing = "ftjob-" + "0" * 24
    for call in (
        lambda: bob.files.retrieve(training_file.id),
        lambda: bob.files.delete(training_file.id),
        lambda: bob.fine_tuning.jobs.create(model="base", training_file=training_file.id),
        lambda: bob.fine_tuning.jobs.retrieve(job.id),
        lambda: bob.fine_tuning.jobs.cancel(job.id),
        lambda: bob.fine_tuning.jobs.list_events(job.id),
        lambda: alice.fine_tuning.jobs.retrieve(missing),
    ):
        with pytest.raises(openai.NotFoundError) as hidden:
            call()
        assert "No such" in hidden.value.body["message"]
    assert training_file.id not in {f.id for f in bob.files.list()}
    assert job.id not in {j.id for j in bob.fine_tuning.jobs.list()}
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=str(alice.base_url), api_key="lrg_wrong", max_retries=0).files.list()
