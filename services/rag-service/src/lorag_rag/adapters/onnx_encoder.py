"""One question at a time through ONNX Runtime: the embedding model exported to ONNX at load.

A question is a dozen tokens. In eager PyTorch its encode is about 800 operator calls, each
paying torch's dispatch; ONNX Runtime runs the same graph after its own graph optimisations, with
prepacked weights: 4.3 ms against 12.8 ms for torch in bfloat16 (`bench.profile_rag_query`).
The session computes in float32 from the model's float32 weights, so its vectors are the
model's own (cosine 1.0 to torch's float32 ones), whatever dtype the batch encoder uses.

Only models of sentence-transformers' usual shape are exported: a Hugging Face transformer, mean
pooling, optionally normalisation. `supports` says whether a model has it.
"""

from __future__ import annotations

import copy
import io
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

INPUTS = ("input_ids", "attention_mask", "token_type_ids")
OPSET = 17


class UnsupportedModel(ValueError):
    """The model is not a transformer with mean pooling: it cannot be exported here."""


def supports(model: SentenceTransformer) -> str | None:
    """None when the model can be exported; otherwise why not."""
    modules: list[Any] = list(model)
    names = [type(module).__name__ for module in modules]
    if names not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        return f"its modules are {names}, not a Transformer, mean Pooling and Normalize"
    if (mode := modules[1].get_config_dict().get("pooling_mode")) != "mean":
        return f"it pools by {mode!r}, not 'mean'"
    tokenizer = modules[0].tokenizer
    if not set(tokenizer.model_input_names) <= set(INPUTS):
        return f"its tokenizer gives {tokenizer.model_input_names}"
    if getattr(tokenizer, "backend_tokenizer", None) is None:
        return "its tokenizer is not a fast (Rust) one"
    return None


class OnnxQuestionEncoder:
    """`encode_one` for a model that `supports` allows: a (1, dim) pooled float32 array.

    Build it from the float32 model, before its weights are cast to another dtype. Safe to call
    from several threads at once: the session's `run` is, and the tokenizer is this encoder's own
    copy with its truncation set once and never changed.
    """

    def __init__(self, model: SentenceTransformer) -> None:
        if (why := supports(model)) is not None:
            raise UnsupportedModel(f"cannot run {type(model).__name__} in ONNX Runtime: {why}")
        import onnxruntime as ort

        transformer: Any = model[0]
        self._inputs = [n for n in INPUTS if n in transformer.tokenizer.model_input_names]
        self._tokenizer: Any = copy.deepcopy(transformer.tokenizer.backend_tokenizer)
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(transformer.max_seq_length)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # one short text: splitting it across cores only waits
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only: the service logs what matters itself
        self._session = ort.InferenceSession(
            _export(transformer.auto_model, self._inputs), options,
            providers=["CPUExecutionProvider"],
        )  # fmt: skip

    def __call__(self, text: str) -> np.ndarray:
        encoding = self._tokenizer.encode(text)
        columns = {
            "input_ids": encoding.ids,
            "attention_mask": encoding.attention_mask,
            "token_type_ids": encoding.type_ids,
        }
        feed = {name: np.asarray([columns[name]], dtype=np.int64) for name in self._inputs}
        (pooled,) = self._session.run(None, feed)
        return np.asarray(pooled, dtype=np.float32)


def _export(auto_model: Any, inputs: list[str]) -> bytes:
    """The transformer with mean pooling, as an ONNX graph with dynamic batch and length."""
    import torch

    class MeanPooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.transformer = auto_model

        def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
            named = dict(zip(inputs, tensors, strict=True))
            tokens = self.transformer(**named).last_hidden_state
            mask = named["attention_mask"].unsqueeze(-1).to(tokens.dtype)
            return (tokens * mask).sum(1) / mask.sum(1).clamp(min=1e-9)

    # Traced on a padded row, so the graph keeps the mask's path for any input.
    columns = {"input_ids": [101, 7592, 102, 0], "attention_mask": [1, 1, 1, 0]}
    sample = tuple(torch.tensor([columns.get(name, [0] * 4)]) for name in inputs)
    graph: Any = io.BytesIO()  # the exporter writes to a file object as well as to a path
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # the tracer's notes on shape-dependent Python code
        torch.onnx.export(
            MeanPooled().eval(), sample, graph, input_names=list(inputs),
            output_names=["pooled"], opset_version=OPSET, dynamo=False,
            dynamic_axes={name: {0: "batch", 1: "tokens"} for name in inputs},
        )  # fmt: skip
    return graph.getvalue()
