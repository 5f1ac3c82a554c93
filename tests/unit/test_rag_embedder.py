"""The embedding model's weights dtype (what `auto` picks, and that bfloat16 vectors stand in for
float32 ones) and the ONNX Runtime question encoder (the packaged MiniLM, on this CPU)."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from lorag_rag.adapters.embedder import EmbedderCache, question_encoder, weights_dtype
from lorag_rag.adapters.onnx_encoder import UnsupportedModel, supports
from lorag_rag.config import RagSettings

QUESTIONS = [
    "How do I open a file for appending in binary mode?",
    "What does functools.partial return?",
    "Return the number of items in a container.",
]


@pytest.fixture(scope="module")
def embedders():
    return {
        dtype: EmbedderCache(dtype=dtype).get("all-MiniLM-L6-v2")
        for dtype in ("float32", "bfloat16")
    }


@pytest.mark.parametrize(("amx", "avx512_bf16", "expected"), [
    (True, False, "bfloat16"), (False, True, "bfloat16"), (False, False, "float32"),
])  # fmt: skip
def test_auto_is_bfloat16_only_on_a_cpu_with_bfloat16_instructions(
    monkeypatch, amx, avx512_bf16, expected
):
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    assert weights_dtype("auto") == expected
    assert weights_dtype("auto", "cuda") == "float32"
    assert weights_dtype("float32") == "float32"
    assert weights_dtype("bfloat16", "cuda") == "bfloat16"


@pytest.mark.parametrize(("setting", "value", "choices"), [
    ("embed_dtype", "float16", "'auto', 'float32' or 'bfloat16'"),
    ("query_runtime", "tensorrt", "'auto', 'onnx' or 'torch'"),
])  # fmt: skip
def test_an_unknown_choice_is_refused_with_the_choices(monkeypatch, setting, value, choices):
    monkeypatch.setenv(f"LORAG_RAG_{setting.upper()}", value)
    with pytest.raises(ValidationError) as caught:
        RagSettings()
    assert setting in str(caught.value) and choices in str(caught.value)


def test_the_weights_are_in_the_dtype_asked_for(embedders):
    for dtype, embedder in embedders.items():
        assert embedder.dtype == dtype
        assert {str(p.dtype) for p in embedder.model.parameters()} == {f"torch.{dtype}"}


def test_bfloat16_vectors_are_unit_length_float32_and_match_float32_ones(embedders):
    exact, fast = (embedders[d].encode(QUESTIONS) for d in ("float32", "bfloat16"))
    assert fast.dtype == np.float32 and fast.shape == exact.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-6)
    cosines = (exact * fast).sum(axis=1)
    assert cosines.min() > 0.9999, cosines
    # each question is still nearest to its own float32 vector, far from the others
    assert (np.argmax(fast @ exact.T, axis=1) == np.arange(3)).all()


def test_one_question_gets_the_vector_a_batch_gives_it(embedders):
    for embedder in embedders.values():
        one = embedder.encode_one(QUESTIONS[0])
        assert one.dtype == np.float32 and one.shape == (1, 384)
        assert float(one[0] @ embedder.encode(QUESTIONS)[0]) > 0.9999


@pytest.fixture(scope="module")
def torch_only():
    return EmbedderCache(dtype="float32", query_runtime="torch").get("all-MiniLM-L6-v2")


def test_questions_go_through_onnx_runtime_with_the_float32_models_vectors(embedders, torch_only):
    """Exported from the float32 weights before the cast: the bfloat16 embedder's questions get
    float32 vectors, the same as torch's float32 encode, a truncated long text included."""
    long = " ".join(["The interpreter reads a module once and caches it."] * 60)
    assert torch_only.query_runtime == "torch" and torch_only.question_encoder is None
    for embedder in embedders.values():
        assert embedder.query_runtime == "onnx"
        for text in [*QUESTIONS, "hi", long]:
            fast, exact = embedder.encode_one(text), torch_only.encode_one(text)
            assert fast.dtype == np.float32 and fast.shape == (1, 384)
            assert abs(float(np.linalg.norm(fast)) - 1.0) < 1e-6
            assert float(fast[0] @ exact[0]) > 0.99999, text[:40]


def test_questions_encode_alike_from_several_threads_at_once(embedders):
    embedder = embedders["bfloat16"]
    texts = [f"{q} ({i})" for i in range(8) for q in QUESTIONS]
    alone = [embedder.encode_one(t) for t in texts]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(embedder.encode_one, texts))
    for a, b in zip(alone, together, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_a_model_onnx_cannot_take_keeps_torch_or_is_refused(torch_only):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.models import Pooling

    cls = SentenceTransformer(modules=[torch_only.model[0], Pooling(384, pooling_mode="cls")])
    assert "pools by 'cls'" in (supports(cls) or "")
    assert supports(torch_only.model) is None
    assert question_encoder(cls, "auto") is None and question_encoder(cls, "torch") is None
    with pytest.raises(UnsupportedModel, match="pools by 'cls', not 'mean'"):
        question_encoder(cls, "onnx")


def in_a_lane(embedder, part: list[str]) -> tuple[int, np.ndarray]:
    """Encode as an ingest's lane does: the thread's torch threads, and the vectors."""
    embedder.start_lane()
    return torch.get_num_threads(), embedder.encode(part, batch_size=16)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_lanes_encode_the_vectors_one_encode_gives(embedders, dtype):
    """An ingest's encoder lanes (torch on one core each, at once) give what one encode of the
    whole list gives."""
    embedder = embedders[dtype]
    texts = [
        f"Record {i}: the crew checked valve {i % 7} " + "and more " * (i % 9) for i in range(48)
    ]
    together = embedder.encode(texts, batch_size=16)
    with ThreadPoolExecutor(2) as pool:
        parts = [texts[:24], texts[24:]]
        (threads_a, a), (threads_b, b) = pool.map(in_a_lane, [embedder] * 2, parts)
    assert threads_a == threads_b == 1
    cosine = np.sum(np.concatenate([a, b]) * together, axis=1)
    assert cosine.min() > 1 - 1e-4, cosine.min()
    assert torch.get_num_threads() == embedder.lanes  # the calling thread kept its own


@pytest.mark.parametrize(("lanes", "expected"), [(None, torch.get_num_threads()), (3, 3)])
def test_an_ingest_runs_a_lane_per_core_unless_told(lanes, expected):
    assert (
        EmbedderCache(dtype="float32", query_runtime="torch", lanes=lanes)
        .get("all-MiniLM-L6-v2")
        .lanes
        == expected
    )
