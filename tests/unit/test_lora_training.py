"""The training loop on a tiny random LLaMA: learning, determinism, resume, cancellation."""

from __future__ import annotations

import random

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import LlamaConfig, LlamaForCausalLM

from lorag_lora.domain.batching import TokenRow
from lorag_lora.training import NoHooks, Plan, TrainingStopped, lr_lambda, train

torch.set_num_threads(1)


def model():
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=64,
    )
    torch.manual_seed(0)
    lora = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.1, target_modules=["q_proj", "v_proj"])
    return get_peft_model(LlamaForCausalLM(config), lora)


def rows(n=40):
    rng = random.Random(0)
    out = []
    for _ in range(n):
        ids = [rng.randrange(3, 64) for _ in range(16)]
        out.append(TokenRow(ids, ids))
    return out


class Recorder(NoHooks):
    def __init__(self, stop_at=None):
        self.checkpoints, self.figures, self.stop_at = {}, [], stop_at

    def progress(self, figures):
        self.figures.append(figures)

    def should_stop(self):
        return self.stop_at is not None and len(self.figures) >= self.stop_at

    def save_checkpoint(self, step, blob):
        self.checkpoints[step] = blob


PLAN = Plan(lr=1e-2, batch_size=4, seed=1, max_steps=20, eval_every=5, checkpoint_every=5)


def test_loss_falls_and_figures_are_reported():
    hooks = Recorder()
    outcome = train(model(), rows(), rows(8), PLAN, hooks)
    assert outcome.steps == 20 and hooks.figures[-1]["percent"] == 100
    assert hooks.figures[-1]["eval_loss"] < hooks.figures[4]["eval_loss"]
    assert {"loss", "tokens_per_s", "eta_seconds", "perplexity", "epoch"} <= outcome.metrics.keys()
    assert sorted(hooks.checkpoints) == [5, 10, 15]


def test_a_resumed_run_ends_exactly_where_an_uninterrupted_one_does():
    straight = train(model(), rows(), rows(8), PLAN, Recorder())
    first = Recorder()
    train(model(), rows(), rows(8), PLAN, first)
    resumed = train(model(), rows(), rows(8), PLAN, Recorder(), resume=first.checkpoints[10])
    assert resumed.metrics["loss"] == pytest.approx(straight.metrics["loss"], rel=1e-6)
    assert resumed.metrics["eval_loss"] == pytest.approx(straight.metrics["eval_loss"], rel=1e-6)


def test_training_and_evaluation_build_no_kv_cache():
    """A loss-only forward never reads a KV cache again: no pass asks the model for one."""
    net, calls = model(), []
    base = net.get_base_model()
    base.register_forward_pre_hook(lambda _, args, kw: calls.append(kw), with_kwargs=True)
    train(net, rows(), rows(8), PLAN, Recorder())
    assert len(calls) == 20 + 4 * 2  # 20 steps, 4 evaluations of 2 batches each
    assert all(kw.get("use_cache") is False for kw in calls)


def test_the_loop_stops_when_asked():
    with pytest.raises(TrainingStopped):
        train(model(), rows(), [], PLAN, Recorder(stop_at=3))


def test_learning_rate_warms_up_then_decays():
    f = lr_lambda(100)
    assert f(0) < f(9) == 1.0 and f(99) == pytest.approx(0.1, abs=0.02)
