"""Base models: resolve a hub id or folder, pick device and dtype, check memory, cache them."""

from __future__ import annotations

import copy
import hashlib
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from lorag_lora import resources
from lorag_lora.config import LoraSettings
from lorag_lora.domain.batching import Encoder, Messages, fallback_prompt
from lorag_lora.tiny import ensure_tiny_llama

log = logging.getLogger(__name__)
WEIGHT_SUFFIXES = (".safetensors", ".bin")
HUB_FILES = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja"]
# Bytes per parameter a job needs beyond the weights: LoRA keeps activations and a small
# optimizer; full fine-tuning adds gradients and two Adam moments per weight.
PLAN_FACTOR = {"serve": 1.2, "lora": 1.5, "full": 4.2}


class ModelError(Exception):
    """A base model cannot be used; `code` is the job error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass
class BaseModel:
    """A loaded base model with its tokenizer and identity."""

    name: str
    folder: Path
    revision: str
    model: Any
    tokenizer: Any
    device: torch.device
    dtype: torch.dtype

    @property
    def model_type(self) -> str:
        return str(self.model.config.model_type)

    def encoder(self) -> Encoder:
        """How this model's tokenizer turns examples into ids."""
        tok = self.tokenizer

        def render(messages: Messages) -> str:
            turns = [{"role": r, "content": c} for r, c in messages]
            if tok.chat_template:
                return str(tok.apply_chat_template(turns, add_generation_prompt=True,
                                                   tokenize=False))  # fmt: skip
            return fallback_prompt(turns)

        return Encoder(
            encode=lambda texts: tok(texts, add_special_tokens=False)["input_ids"],
            render_prompt=render, bos_id=tok.bos_token_id, eos_id=tok.eos_token_id,
            pad_id=tok.pad_token_id,
        )  # fmt: skip

    def fresh_copy(self) -> Any:
        """A private copy of the weights a training job may change."""
        return copy.deepcopy(self.model)


def pick_device(wanted: str = "auto") -> torch.device:
    if wanted != "auto":
        return torch.device(wanted)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def pick_dtype(device: torch.device) -> torch.dtype:
    """bf16 where the accelerator has it; float32 otherwise (fp16 training needs loss scaling)."""
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def free_memory(device: torch.device) -> int:
    """Memory a model may use on `device`: on the CPU, within the container's cgroup limit too,
    so an oversized model is refused (MODEL_TOO_LARGE) instead of being OOM-killed."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    return resources.available_memory(resources.CGROUP)


def count_parameters(config: Any) -> int:
    """Parameters of a model built from `config`, without allocating its weights."""
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    return sum(p.numel() for p in model.parameters())


def fingerprint(folder: Path) -> str:
    """A content digest of the model's config and weights: its revision."""
    hasher = hashlib.sha256()
    weights = sorted(p for p in folder.iterdir() if p.suffix in WEIGHT_SUFFIXES)
    files = [folder / "config.json", *weights]
    for path in files:
        hasher.update(path.name.encode())
        with path.open("rb") as f:
            while chunk := f.read(1 << 20):
                hasher.update(chunk)
    return "sha256:" + hasher.hexdigest()


class ModelManager:
    """Loads base models once and keeps them; refuses those that do not fit in memory."""

    def __init__(self, settings: LoraSettings) -> None:
        self.settings = settings
        self.device = pick_device(settings.device)
        self.dtype = pick_dtype(self.device)
        self._cache: dict[str, BaseModel] = {}
        self._lock = threading.Lock()

    @property
    def default_name(self) -> str:
        return self.settings.default_base_model or str(self.settings.models_dir / "tiny-llama")

    def resolve(self, name: str | None) -> Path:
        """The local folder of a base model; builds the tiny default on first use."""
        name = name or self.default_name
        if name == str(self.settings.models_dir / "tiny-llama"):
            return ensure_tiny_llama(self.settings.models_dir)
        path = Path(name).expanduser()
        if path.is_dir() and (path / "config.json").exists():
            return path
        if path.is_absolute() or name.startswith(".") or path.exists():
            raise ModelError("BASE_MODEL_NOT_FOUND", f"base model folder {name} has no config.json")
        return self._from_hub(name)

    def _from_hub(self, name: str) -> Path:
        from huggingface_hub import snapshot_download

        try:
            return Path(
                snapshot_download(
                    name, allow_patterns=["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja"]
                )
            )
        except Exception as exc:  # offline, unknown repo, gated…: all mean "not available here"
            raise ModelError(
                "BASE_MODEL_NOT_FOUND",
                f"base model {name!r} is neither a local folder nor reachable on the hub "
                f"({type(exc).__name__}); give a folder, or check the id and network",
            ) from None

    def parameters_of(self, name: str | None) -> int:
        """Parameter count from the config alone."""
        return count_parameters(AutoConfig.from_pretrained(self.resolve(name)))

    def check_fits(self, name: str | None, purpose: str) -> int:
        """Refuse (MODEL_TOO_LARGE) a model whose planned memory exceeds what is free."""
        params = self.parameters_of(name)
        need = int(params * torch.finfo(self.dtype).bits / 8 * PLAN_FACTOR[purpose])
        free = int(free_memory(self.device) * self.settings.memory_headroom)
        if need > free:
            raise ModelError(
                "MODEL_TOO_LARGE",
                f"{name or 'the base model'} has {params / 1e6:,.0f} M parameters and needs about "
                f"{need / 2**30:,.1f} GiB for {purpose} on {self.device.type}, but only "
                f"{free / 2**30:,.1f} GiB is free; pick a smaller model or a larger machine",
            )
        return params

    def load(self, name: str | None) -> BaseModel:
        """The base model, loaded on first use and cached for the following jobs."""
        name = name or self.default_name
        with self._lock:
            if name not in self._cache:
                self._cache[name] = self._load(name)
            return self._cache[name]

    def load_for_serving(self, name: str | None) -> BaseModel:
        """A base model of its own for the inference API, not shared with training jobs:
        serving loads adapters into it, and training copies the pristine cached one."""
        return self._load(name or self.default_name)

    def _load(self, name: str) -> BaseModel:
        folder = self.resolve(name)
        try:
            tokenizer = AutoTokenizer.from_pretrained(folder)
            model = AutoModelForCausalLM.from_pretrained(folder, dtype=self.dtype)
        except (OSError, ValueError) as exc:
            raise ModelError("BASE_MODEL_NOT_FOUND", f"cannot load {name}: {exc}") from None
        model.to(self.device)  # type: ignore[arg-type]
        model.eval()
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        log.info("loaded base model %s on %s (%s)", name, self.device, self.dtype)
        return BaseModel(name, folder, fingerprint(folder), model, tokenizer, self.device,
                         self.dtype)  # fmt: skip
