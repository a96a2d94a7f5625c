import math

import pytest
import torch

from agentladder.data import Conversation
from agentladder.models import attach_lora, tiny_model
from agentladder.models.chat import tokenize_conversation
from agentladder.models.lora import LoraSettings
from agentladder.train import loop
from agentladder.train.batching import collator
from agentladder.train.checkpoint import list_checkpoints
from agentladder.train.loop import (
    TrainConfig,
    Trainer,
    autocast_for,
    epoch_order,
    lr_lambda,
    resolve_precision,
    stratified_order,
)
from agentladder.train.sft import causal_lm_loss
from tests.conftest import CONVERSATIONS


def _rows(tok):
    return [tokenize_conversation(tok, Conversation.model_validate(c)) for c in CONVERSATIONS] * 3


def _trainer(tok, out_dir, dropout=0.1, **overrides):
    torch.manual_seed(0)
    model = attach_lora(tiny_model(tokenizer=tok), LoraSettings(r=4, alpha=8, dropout=dropout))  # dropout uses the RNG
    settings = dict(learning_rate=1e-2, batch_size=2, grad_accum=2, max_steps=8, save_every=3, progress=False,
                    tensorboard=False)
    cfg = TrainConfig(out_dir=str(out_dir), **{**settings, **overrides})
    return Trainer(model, _rows(tok), collator(tok.pad_token_id, True), causal_lm_loss, cfg)


def _weights(trainer):
    return {n: p.detach().clone() for n, p in trainer.model.named_parameters()}


def test_interrupted_and_resumed_run_matches_uninterrupted_bit_for_bit(tok, tmp_path):
    full = _trainer(tok, tmp_path / "full")
    full_result = full.run()
    assert full.step == 8 and full_result.history[-1]["loss"] < full_result.history[0]["loss"]

    first = _trainer(tok, tmp_path / "cut")
    first.run(stop_after=5)  # killed after step 5: the newest checkpoint is step 3
    assert [s for s, _ in list_checkpoints(tmp_path / "cut" / "checkpoints")] == [3]
    torch.manual_seed(1234)  # a fresh process has other RNG state; the checkpoint restores it
    second = _trainer(tok, tmp_path / "cut")
    assert second.resume() == 3
    second.run()
    assert second.step == 8
    a, b = _weights(full), _weights(second)
    for name in a:
        assert torch.equal(a[name], b[name]), name
    losses = [r["loss"] for r in full_result.history]
    resumed = [r["loss"] for r in second.run(resume=True).history]
    assert resumed == losses  # metrics.jsonl was cut back to step 3 and rewritten identically


def test_grad_accumulation_matches_one_big_batch(tok, tmp_path):
    def grads(batch_size, grad_accum):
        t = _trainer(tok, tmp_path / f"g{batch_size}", dropout=0.0, batch_size=batch_size, grad_accum=grad_accum)
        t.config.max_grad_norm = None
        captured = {}
        real_step = t.optimizer.step

        def capture():
            captured.update({n: p.grad.clone() for n, p in t.model.named_parameters() if p.requires_grad})
            real_step()

        t.optimizer.step = capture
        t.train_step(0)
        return captured

    one, accum = grads(4, 1), grads(1, 4)
    for name in one:
        torch.testing.assert_close(one[name], accum[name], atol=1e-6, rtol=1e-5)


def test_schedule_and_data_order():
    f = lr_lambda(total_steps=10, warmup_steps=2, min_ratio=0.1)
    assert f(0) == pytest.approx(1 / 3) and f(1) == pytest.approx(2 / 3)
    assert f(2) == pytest.approx(1.0) and f(10) == pytest.approx(0.1)
    assert epoch_order(10, 0, 0) == epoch_order(10, 0, 0) != epoch_order(10, 0, 1)
    assert sorted(epoch_order(10, 3, 2)) == list(range(10))


@pytest.mark.parametrize("sizes", [(320, 80, 61, 19), (7, 3), (50,), (1, 1, 30)])
def test_a_stratified_order_gives_every_run_of_rows_the_datas_mix(sizes):
    labels = [f"kind{k}" for k, n in enumerate(sizes) for _ in range(n)]
    order = stratified_order(labels, 5, 0)
    assert sorted(order) == list(range(len(labels)))
    assert order == stratified_order(labels, 5, 0) != stratified_order(labels, 5, 1)
    total = len(labels)
    for width in (2, 6, 12, 16):
        for start in range(total - width + 1):
            window = [labels[i] for i in order[start : start + width]]
            for k, n in enumerate(sizes):
                assert abs(window.count(f"kind{k}") - width * n / total) < 2, (width, start, k)
    # what it replaces: some batch of 16 of a random permutation strays from the mix by two rows or more
    shuffled = [labels[i] for i in epoch_order(len(labels), 5, 0)]
    if sizes[0] == 320:
        spread = [abs(shuffled[s : s + 16].count("kind0") - 16 * 320 / 480) for s in range(0, 480, 16)]
        assert max(spread) >= 2


def test_bf16_autocast_trains(tok, tmp_path):
    t = _trainer(tok, tmp_path / "bf16", precision="bf16", max_steps=4)
    history = t.run().history
    assert all(math.isfinite(r["loss"]) for r in history)
    assert all(p.dtype == torch.float32 for p in t.model.parameters())  # master weights stay fp32
    assert (tmp_path / "bf16" / "training.png").stat().st_size > 1000
    assert (tmp_path / "bf16" / "metrics.jsonl").read_text().count("\n") == 4


@pytest.mark.parametrize("native", [True, False])
def test_auto_precision_is_bf16_only_on_a_cpu_with_native_bfloat16(native, monkeypatch):
    monkeypatch.setattr(loop, "cpu_has_bf16", lambda: native)
    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu) == ("bf16" if native else "fp32")
    assert resolve_precision("fp32", cpu) == "fp32" and resolve_precision("bf16", cpu) == "bf16"  # as asked
    with autocast_for("auto", cpu):
        assert torch.is_autocast_enabled("cpu") is native
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == (torch.bfloat16 if native else torch.float32)
    assert TrainConfig(out_dir="x", precision="auto").precision == "auto"
    with pytest.raises(ValueError, match="precision"):
        TrainConfig(out_dir="x", precision="fp16")


def test_cpu_bf16_flags_are_read_from_proc_cpuinfo(monkeypatch, tmp_path):
    info = tmp_path / "cpuinfo"
    real_path = loop.Path

    def fake(p, *a):
        return real_path(info) if str(p) == "/proc/cpuinfo" else real_path(p, *a)

    monkeypatch.setattr(loop, "Path", fake)
    for flags, expected in (("fpu avx2 avx512f avx512_bf16", True), ("fpu avx2 amx_bf16 amx_tile", True),
                            ("fpu avx2 avx512f", False)):
        info.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
        loop.cpu_has_bf16.cache_clear()
        assert loop.cpu_has_bf16() is expected
    loop.cpu_has_bf16.cache_clear()


def test_lora_plus_gives_the_b_matrices_a_larger_learning_rate_and_resumes(tok, tmp_path):
    t = _trainer(tok, tmp_path / "plus", lora_plus_ratio=8.0, max_steps=6)
    groups = {id(p): g for g in t.optimizer.param_groups for p in g["params"]}
    names = dict(t.model.named_parameters())
    b = [n for n, p in names.items() if p.requires_grad and "lora_B" in n]
    a = [n for n, p in names.items() if p.requires_grad and "lora_A" in n]
    assert b and a
    assert all(groups[id(names[n])]["lr"] == pytest.approx(8e-2) for n in b)
    assert all(groups[id(names[n])]["lr"] == pytest.approx(1e-2) for n in a)
    t.run(stop_after=4)  # the newest checkpoint is step 3
    lrs = {round(g["lr"] / t.scheduler.get_last_lr()[0], 6) for g in t.optimizer.param_groups if g["params"]}
    assert lrs == {1.0, 8.0}  # the schedule scales both groups alike
    full = _trainer(tok, tmp_path / "plus-full", lora_plus_ratio=8.0, max_steps=6)
    full.run()
    resumed = _trainer(tok, tmp_path / "plus", lora_plus_ratio=8.0, max_steps=6)
    assert resumed.resume() == 3
    resumed.run()
    for name, weight in _weights(full).items():
        assert torch.equal(weight, _weights(resumed)[name]), name
    plain = _trainer(tok, tmp_path / "plain", max_steps=6)
    plain.run()
    assert any(not torch.equal(w, _weights(plain)[n]) for n, w in _weights(full).items() if "lora_B" in n)


def test_lora_plus_needs_lora_adapters(tok, tmp_path):
    cfg = TrainConfig(out_dir=str(tmp_path / "x"), lora_plus_ratio=4.0, max_steps=1, progress=False, tensorboard=False)
    with pytest.raises(ValueError, match="lora_plus_ratio needs LoRA adapters"):
        Trainer(tiny_model(tokenizer=tok), _rows(tok), collator(tok.pad_token_id, True), causal_lm_loss, cfg)
    with pytest.raises(ValueError):
        TrainConfig(out_dir="x", lora_plus_ratio=0.5)


@pytest.mark.parametrize(("lora", "precision", "frozen"), [
    (True, "bf16", {torch.bfloat16}),
    (True, "fp32", {torch.float32}),
    (False, "bf16", set()),  # full fine-tuning: every weight trains, in fp32
])
def test_lora_at_bf16_holds_the_frozen_base_in_bf16_and_trains_fp32_weights(tmp_path, rows_file, monkeypatch, lora,
                                                                             precision, frozen):
    from agentladder.models import load_model
    from agentladder.train.sft import sft

    seen = {}
    init = loop.Trainer.__init__

    def spy(self, model, *args, **kwargs):
        seen["frozen"] = {p.dtype for p in model.parameters() if not p.requires_grad}
        seen["trained"] = {p.dtype for p in model.parameters() if p.requires_grad}
        init(self, model, *args, **kwargs)

    monkeypatch.setattr(loop.Trainer, "__init__", spy)
    out = tmp_path / "run"
    result = sft(model="tiny", data=str(rows_file), out_dir=str(out), lora=lora, max_steps=2, precision=precision,
                 learning_rate=1e-2, progress=False, tensorboard=False)
    assert seen == {"frozen": frozen, "trained": {torch.float32}}
    assert all(math.isfinite(r["loss"]) for r in result.history)
    model, _ = load_model(str(out))  # the saved model loads in fp32 as usual
    assert {p.dtype for p in model.parameters()} == {torch.float32}


def test_a_wall_clock_budget_ends_the_run_after_the_step_that_passes_it_with_a_checkpoint(tok, tmp_path, monkeypatch):
    now = [0.0]
    monkeypatch.setattr(loop.time, "perf_counter", lambda: now[0])

    def budgeted(name, minutes):
        trainer = _trainer(tok, tmp_path / name, max_minutes=minutes)
        step = trainer.train_step

        def slow(i):  # every step takes 50 s of the fake clock
            now[0] += 50.0
            return step(i)

        trainer.train_step = slow
        return trainer, trainer.run()

    trainer, result = budgeted("a", 2.5)  # 150 s: the third step ends on it (a checkpoint step)
    assert trainer.step == result.steps == 3 < trainer.total_steps == 8
    assert [s for s, _ in list_checkpoints(tmp_path / "a" / "checkpoints")] == [3]
    trainer, result = budgeted("b", 3.5)  # 210 s: the fifth step ends past it, between checkpoints
    assert result.steps == 5 and len(result.history) == 5
    assert [s for s, _ in list_checkpoints(tmp_path / "b" / "checkpoints")] == [3, 5]
