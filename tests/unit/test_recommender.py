"""The recommender's choices on the datasets the issue names, and its estimates' arithmetic."""

import json

import pytest

from lorag_core.domain.training_types import TrainingType as T
from lorag_hybrid.recommend import estimate, models
from lorag_hybrid.recommend.profile import Shape, profile
from lorag_hybrid.recommend.rank import Goal, rank
from lorag_hybrid.recommend.resources import Resources

MACHINE = Resources(cpu_cores=2, memory_bytes=24 * 2**30)


def jsonl(rows):
    return "\n".join(json.dumps(r) for r in rows).encode()


FACTS = [
    (
        "faq.jsonl",
        jsonl(
            {"question": f"What is the part number of widget {i}?", "answer": f"It is W-{i:05d}."}
            for i in range(5000)
        ),
    )
]
STYLE = [
    (
        "style.jsonl",
        jsonl(
            {
                "instruction": f"Rewrite politely: give me report {i}",
                "response": f"Could you kindly share report {i}? Thank you!",
            }
            for i in range(3000)
        ),
    )
]
BOTH = FACTS[:1] + STYLE[:1]


def best(ranked):
    return next(r for r in ranked if not r.refused).training_type


def test_profile_tells_shapes_apart():
    facts, style = profile(FACTS), profile(STYLE)
    assert facts.shape is Shape.QA_PAIRS and facts.records == 5000 and facts.language == "en"
    assert style.shape is Shape.INSTRUCTIONS and style.tokens > 10_000
    dupes = profile([("d.txt", b"same paragraph\n\nsame paragraph\n\nother")])
    assert dupes.records == 3 and dupes.duplicate_ratio == pytest.approx(1 / 3)


def test_rag_for_a_large_factual_corpus_with_an_external_target():
    ranked = rank(profile(FACTS), Goal(target="external"), models.TINY, MACHINE)
    assert best(ranked) is T.EXTERNAL_RAG
    assert any("facts" in reason for reason in ranked[0].reasons)


def test_lora_for_a_style_dataset_with_a_local_target():
    assert best(rank(profile(STYLE), Goal(target="local"), models.TINY, MACHINE)) is T.LOCAL_LORA


def test_a_hybrid_where_both_help():
    assert best(rank(profile(BOTH), Goal(target="local"), models.TINY, MACHINE)) is T.LOCAL_HYBRID
    assert (
        best(rank(profile(BOTH), Goal(target="external"), models.TINY, MACHINE))
        is T.EXTERNAL_HYBRID
    )


def test_lora_is_refused_with_a_reason_when_memory_is_short():
    small = Resources(cpu_cores=2, memory_bytes=4 * 2**30)
    mistral = models.KNOWN["mistralai/Mistral-7B-v0.1"]
    ranked = {
        r.training_type: r for r in rank(profile(STYLE), Goal(target="local"), mistral, small)
    }
    assert ranked[T.LOCAL_LORA].refused and "GB" in ranked[T.LOCAL_LORA].refused
    assert "smaller base model" in ranked[T.LOCAL_LORA].refused
    assert ranked[T.EXTERNAL_RAG].refused is None  # RAG still fits


def test_private_data_refuses_external_types():
    ranked = rank(profile(FACTS), Goal(target="external", private=True), models.TINY, MACHINE)
    refused = {r.training_type for r in ranked if r.refused}
    assert refused == {T.EXTERNAL_RAG, T.EXTERNAL_HYBRID}


def test_fine_tuning_is_refused_above_the_size_limit():
    big = Resources(cpu_cores=64, memory_bytes=2048 * 2**30)
    mistral = models.KNOWN["mistralai/Mistral-7B-v0.1"]
    ranked = {r.training_type: r for r in rank(profile(STYLE), Goal(target="local"), mistral, big)}
    assert "limit for full fine-tuning" in ranked[T.LOCAL_FINE_TUNING].refused


def test_estimates_grow_with_the_work():
    prices = estimate.Prices()

    def lora(tokens, batch):
        return estimate.training(
            models.TINY,
            tokens,
            r=8,
            batch=batch,
            seq=256,
            full=False,
            resources=MACHINE,
            prices=prices,
        )

    small, twice, wider = lora(10_240, 8), lora(20_480, 8), lora(10_240, 16)
    assert twice.seconds == pytest.approx(2 * small.seconds)  # same steps' cost, twice the steps
    assert wider.peak_memory_bytes > small.peak_memory_bytes  # a bigger batch holds more
    full = estimate.training(
        models.TINY, 10_240, r=8, batch=8, seq=256, full=True, resources=MACHINE, prices=prices
    )
    assert full.seconds > small.seconds and full.peak_memory_bytes > small.peak_memory_bytes


def test_model_size_from_a_config_folder(tmp_path):
    (tmp_path / "config.json").write_text(
        json.dumps(
            {
                "hidden_size": 128,
                "num_hidden_layers": 4,
                "vocab_size": 718,
                "intermediate_size": 384,
            }
        )
    )
    spec = models.resolve(str(tmp_path))
    assert spec.params == models.TINY.params == 1_035_776
    with pytest.raises(ValueError, match="unknown base model"):
        models.resolve("no/such-model")


async def test_a_hybrid_the_machine_cannot_train_is_refused_before_any_sub_job():
    from lorag_core.contracts import DatasetRef, HybridParameters, JobRequested, LoraParameters
    from lorag_core.service.worker import JobFailed
    from lorag_hybrid.saga.validation import validate

    class Objects:
        def list_keys(self, bucket, prefix):
            return iter(["data.jsonl"])

    request = JobRequested(
        job_id="job-h",
        training_type="LOCAL_HYBRID",
        datasets=(DatasetRef(uri="s3://lorag-datasets/x/"),),
        parameters=HybridParameters(lora=LoraParameters(batch_size=64, max_seq_len=2048)),
    )
    tiny_machine = Resources(cpu_cores=2, memory_bytes=1 * 2**30)
    with pytest.raises(JobFailed) as refused:
        await validate(request, Objects(), tiny_machine)
    assert refused.value.code == "TARGET_UNMEETABLE" and "GB" in refused.value.message
    await validate(
        request.model_copy(update={"parameters": HybridParameters()}), Objects(), MACHINE
    )
