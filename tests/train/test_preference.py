"""The preference trainer: prompt-shared batches, reference policies, every loss end to end, resume."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from agentladder.data import DataError, MarkedResponse, Message, PreferencePair
from agentladder.models.chat import prompt_ids
from agentladder.models.lora import attach_lora, reference_mode
from agentladder.train.preference import (
    PreferenceConfig,
    encode_marked,
    encode_pairs,
    marked_from_pairs,
    preference,
    resolve_reference,
)
from agentladder.train.shared_prompt import (
    completion_logps,
    padded_batch,
    shared_batch,
    use_shared_prompt_attention,
)

PAIRS = [
    {"id": "p1", "prompt": "What is 2+2?", "chosen": "4", "rejected": "five, I think"},
    {"id": "p2", "prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?"}],
     "chosen": "Paris.", "rejected": "London is the capital of France."},
    {"id": "p3", "prompt": "Weather in Paris?",
     "chosen": [{"role": "assistant", "tool_calls": [{"id": "1", "name": "weather", "arguments": {"city": "Paris"}}]},
                {"role": "tool", "tool_call_id": "1", "name": "weather", "content": "sunny"},
                {"role": "assistant", "content": "Sunny."}],
     "rejected": "It is raining."},
    {"id": "p4", "prompt": "Count to three", "chosen": "1 2 3", "rejected": "1 2 3 4 5 6"},
    {"id": "p5", "prompt": "Say hi", "chosen": "Hi!", "rejected": "Go away."},
    {"id": "p6", "prompt": "Name a colour", "chosen": "Blue.", "rejected": "A number: 7"},
]


def _pairs():
    return [PreferencePair.model_validate(p) for p in PAIRS]


def _by_hand(model, triples):
    """Each response after its prompt as its own sequence: summed log-probabilities of its scored tokens."""
    out = []
    for t in triples:
        for ids, mask in ((t.a_ids, t.a_mask), (t.b_ids, t.b_mask)):
            if not ids:
                out.append(torch.zeros((), dtype=torch.float32))
                continue
            logp = torch.log_softmax(model(torch.tensor([t.prompt + ids])).logits[0].float(), -1)
            p = len(t.prompt)
            out.append(sum(logp[p + j - 1, ids[j]] for j in range(len(ids)) if mask[j]))
    return torch.stack(out).view(-1, 2)


def _grads(model):
    return [p.grad.clone() if p.grad is not None else torch.zeros_like(p) for p in model.parameters()]


@pytest.mark.parametrize("layout", ["shared", "padded"])
def test_batches_give_each_response_its_log_probability_and_gradient_after_its_prompt(tok, model, layout):
    triples, dropped = encode_pairs(tok, _pairs(), max_length=512)
    marked, _ = encode_marked(tok, marked_from_pairs(_pairs())[:3], max_length=512, kl=False)
    triples = triples + marked  # KTO rows without a partner: tail b is empty
    assert dropped == 0
    model.zero_grad()
    _by_hand(model, triples).sum().backward()
    expected = _grads(model)
    with torch.no_grad():
        want = _by_hand(model, triples)
    if layout == "shared":
        assert use_shared_prompt_attention(model)
        batch = shared_batch(triples)
    else:
        batch = padded_batch(triples, tok.pad_token_id)
    model.zero_grad()
    got, counts = completion_logps(model, batch)
    got.sum().backward()
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-5)
    for a, b in zip(_grads(model), expected, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    assert counts[:, 0].tolist() == [sum(t.a_mask) for t in triples]


def test_the_prompt_is_in_the_sequence_once(tok):
    triples, _ = encode_pairs(tok, _pairs(), max_length=512)
    shared, padded = shared_batch(triples), padded_batch(triples, tok.pad_token_id)
    prompt_tokens = sum(len(t.prompt) for t in triples)
    assert shared["n_tokens"] == padded["n_tokens"] - prompt_tokens
    assert shared["input_ids"].shape == (1, shared["n_tokens"])
    # The tool turn inside the chosen response is context, not scored.
    tool_row = triples[2]
    assert 0 < sum(tool_row.a_mask) < len(tool_row.a_ids)


def test_pairs_that_do_not_fit_are_dropped_and_none_fitting_is_a_data_error(tok):
    triples, dropped = encode_pairs(tok, _pairs(), max_length=60)
    assert dropped > 0 and len(triples) + dropped == len(PAIRS)
    assert all(len(t.prompt) + max(len(t.a_ids), len(t.b_ids)) <= 60 for t in triples)
    with pytest.raises(DataError, match="max_length=8"):
        encode_pairs(tok, _pairs(), max_length=8)


def test_kto_rows_get_another_rows_response_as_their_kl_partner(tok):
    rows = marked_from_pairs(_pairs())
    assert [r.label for r in rows[:2]] == [True, False]
    triples, _ = encode_marked(tok, rows, max_length=512, seed=3)
    assert all(t.b_ids for t in triples)
    own = [tok.decode(t.a_ids) for t in triples]
    partner = [tok.decode(t.b_ids) for t in triples]
    assert sorted(own) == sorted(partner)  # a permutation of the same responses
    assert all(o != p for o, p in zip(own, partner, strict=True))


def test_reference_modes():
    cfg = PreferenceConfig(data="x", out_dir="y")
    assert resolve_reference(cfg, lora=False, continued_adapter=False) == "precompute"
    assert resolve_reference(cfg, lora=True, continued_adapter=False) == "adapters"
    assert resolve_reference(cfg, lora=True, continued_adapter=True) == "precompute"
    assert resolve_reference(cfg.model_copy(update={"loss": "simpo"}), lora=False, continued_adapter=False) == "none"
    with pytest.raises(ValueError, match="LoRA"):
        resolve_reference(cfg.model_copy(update={"reference": "adapters"}), lora=False, continued_adapter=False)
    with pytest.raises(ValueError, match="precompute"):
        resolve_reference(cfg.model_copy(update={"reference": "adapters"}), lora=True, continued_adapter=True)
    assert PreferenceConfig(data="x", out_dir="y", loss="simpo").beta == 2.0


def test_adapters_disabled_is_the_starting_policy_of_a_fresh_adapter(tok, model):
    triples, _ = encode_pairs(tok, _pairs(), max_length=512)
    use_shared_prompt_attention(model)
    batch = shared_batch(triples)
    with torch.no_grad():
        before = completion_logps(model, batch)[0]
        lora = attach_lora(model)
        for name, p in lora.named_parameters():
            if "lora_B" in name:
                p.data.normal_()  # pretend it trained
        with reference_mode(lora):
            ref = completion_logps(lora, batch)[0]
        moved = completion_logps(lora, batch)[0]
    torch.testing.assert_close(ref, before)
    assert not torch.allclose(moved, before)


# -- end to end -----------------------------------------------------------------------------------
@pytest.fixture
def pairs_file(tmp_path: Path) -> Path:
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in PAIRS))
    return path


def _run(tmp_path, data, name="run", **kw):
    settings = dict(model="tiny", data=str(data), out_dir=str(tmp_path / name), batch_size=2, max_steps=3,
                    learning_rate=1e-3, progress=False, tensorboard=False, save_every=2, warmup_ratio=0.0)
    settings.update(kw)
    return preference(PreferenceConfig(**settings))


def _records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize(("loss", "extra"), [
    ("dpo", {}), ("dpo", {"label_smoothing": 0.1}), ("ipo", {}), ("dpo_nll", {}), ("rpo", {}), ("simpo", {}),
    ("orpo", {}),
])
def test_every_pair_loss_trains_and_reports_preference_metrics(tmp_path, pairs_file, loss, extra):
    result = _run(tmp_path, pairs_file, loss=loss, **extra)
    first = result.history[0]
    for key in ("reward_accuracy", "margin", "reward_chosen", "reward_rejected", "logp_chosen", "logp_rejected"):
        assert key in first and math.isfinite(first[key])
    assert first["units"] == 2
    if loss in ("dpo", "dpo_nll", "rpo"):  # the policy starts as the reference: every log-ratio is 0
        assert first["margin"] == pytest.approx(0.0, abs=1e-5)
        if loss in ("dpo", "rpo") and not extra:  # every contrast, weighted or not, is -log sigma(0)
            assert first["loss"] == pytest.approx(math.log(2), abs=1e-5)
    meta = json.loads((tmp_path / "run" / "agentladder.json").read_text())
    assert meta["method"] == loss and meta["steps"] == 3
    assert meta["reference"] == ("none" if loss in ("simpo", "orpo") else "precompute")
    assert (tmp_path / "run" / "reference_logps.pt").exists() == (loss not in ("simpo", "orpo"))
    assert _records(tmp_path / "run")[-1]["step"] == 3


def test_kto_trains_on_marked_rows_and_on_pairs(tmp_path, pairs_file):
    marked = tmp_path / "marked.jsonl"
    marked.write_text("".join(json.dumps(r.model_dump(mode="json", exclude_none=True)) + "\n"
                              for r in marked_from_pairs(_pairs())))
    for data, name in ((marked, "a"), (pairs_file, "b")):
        result = _run(tmp_path, data, name=name, loss="kto", batch_size=4)
        first = result.history[0]
        assert first["loss"] == pytest.approx(0.5, abs=1e-5)  # r = z_0 = 0: 1 - sigma(0)
        assert first["kl"] == pytest.approx(0.0, abs=1e-6)
        assert {"reward_accuracy", "reward", "logp"} <= set(first)
    assert MarkedResponse.model_validate(json.loads(marked.read_text().splitlines()[0])).label is True


@pytest.mark.parametrize("reference", ["adapters", "copy"])
def test_live_references_start_at_the_policy(tmp_path, pairs_file, reference):
    result = _run(tmp_path, pairs_file, lora=reference == "adapters", reference=reference, max_steps=2)
    assert result.history[0]["loss"] == pytest.approx(math.log(2), abs=1e-5)
    assert not (tmp_path / "run" / "reference_logps.pt").exists()
    assert result.history[-1]["margin"] != 0.0


def test_precomputed_reference_runs_at_the_training_precision(tmp_path, pairs_file):
    result = _run(tmp_path, pairs_file, max_steps=1, precision="bf16")
    assert result.history[0]["margin"] == pytest.approx(0.0, abs=1e-6)


def test_precomputed_reference_is_the_starting_model(tmp_path, pairs_file, tok):
    from agentladder.models.loading import load_model

    _run(tmp_path, pairs_file, max_steps=1)
    saved = torch.load(tmp_path / "run" / "reference_logps.pt", weights_only=True)["logps"]
    model, tok = load_model("tiny")
    triples, _ = encode_pairs(tok, _pairs(), max_length=1024)
    with torch.no_grad():
        torch.testing.assert_close(saved.float(), _by_hand(model, triples), atol=1e-4, rtol=1e-5)


def test_unshared_batches_train_the_same(tmp_path, pairs_file):
    a = _run(tmp_path, pairs_file, name="shared", max_steps=2)
    b = _run(tmp_path, pairs_file, name="padded", max_steps=2, share_prompt=False)
    for x, y in zip(a.history, b.history, strict=True):
        assert x["loss"] == pytest.approx(y["loss"], abs=1e-5)
        assert x["n_tokens"] < y["n_tokens"]


def test_resume_ends_with_the_same_weights(tmp_path, pairs_file):
    from safetensors.torch import load_file

    _run(tmp_path, pairs_file, name="whole", max_steps=4)
    cut = PreferenceConfig(model="tiny", data=str(pairs_file), out_dir=str(tmp_path / "cut"), batch_size=2,
                           max_steps=4, learning_rate=1e-3, progress=False, tensorboard=False, save_every=2,
                           warmup_ratio=0.0)
    import importlib

    module = importlib.import_module("agentladder.train.preference")

    # Stop after two steps, as a kill after the step-2 checkpoint would.
    original = module.Trainer.run
    module.Trainer.run = lambda self, resume=True, stop_after=None: original(self, resume=resume, stop_after=2)
    try:
        preference(cut)
    finally:
        module.Trainer.run = original
    assert not (tmp_path / "cut" / "agentladder.json").exists()
    with pytest.raises(FileExistsError):
        preference(cut)
    preference(out_dir=str(tmp_path / "cut"), resume=True, progress=False)
    whole = load_file(tmp_path / "whole" / "model.safetensors")
    resumed = load_file(tmp_path / "cut" / "model.safetensors")
    for k in whole:
        assert torch.equal(whole[k], resumed[k]), k
    steps = [r["step"] for r in _records(tmp_path / "cut")]
    assert steps == [1, 2, 3, 4]


def test_bad_pair_names_file_line_and_field(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(PAIRS[0]) + "\n" + json.dumps({"prompt": "x", "chosen": "y"}) + "\n")
    with pytest.raises(DataError, match=r"bad.jsonl:2: rejected"):
        _run(tmp_path, bad)


def test_the_trained_model_loads_and_generates(tmp_path, pairs_file):
    from agentladder.models.loading import load_model

    _run(tmp_path, pairs_file, max_steps=1, lora=True)
    model, tok = load_model(str(tmp_path / "run"))
    ids = torch.tensor([prompt_ids(tok, [Message(role="user", content="hi")])])
    assert model.generate(ids, max_new_tokens=2, do_sample=False).shape[1] == ids.shape[1] + 2


def test_rpo_weighs_contrasts_by_minilm_prompt_embeddings(tok, pairs_file):
    from agentladder.models.embedding import embed
    from agentladder.train.preference import load_preference_rows, prompt_text

    pairs = _pairs()
    assert prompt_text(pairs[1]) == "Capital of France?"  # the user turns, not the shared system prompt
    config = PreferenceConfig(model="tiny", data=str(pairs_file), out_dir="-", loss="rpo")
    assert config.rpo_temperature == 0.5  # the paper's temperature by default
    rows, _ = load_preference_rows(tok, config)
    vectors = torch.tensor([t.embedding for t in rows])
    assert vectors.shape == (len(pairs), 384)  # all-MiniLM-L6-v2, one per pair, in order
    torch.testing.assert_close(vectors, embed([prompt_text(p) for p in pairs]))
    cos = vectors @ vectors.T  # normalised: the France and Paris prompts are nearer than France and 2+2
    assert cos[1, 2] > cos[1, 0]
    assert all(t.embedding is None for t in load_preference_rows(tok, config.model_copy(update={"loss": "dpo"}))[0])


def test_the_old_dpo_plus_nll_name_is_refused(tmp_path, pairs_file):
    with pytest.raises(ValueError, match="DPO plus NLL .* is now loss: dpo_nll, its NLL weight nll_alpha") as err:
        PreferenceConfig(model="tiny", data="d", out_dir="o", loss="rpo", rpo_alpha=1.0)
    from agentladder.errors import ConfigError

    assert isinstance(err.value, ConfigError)
    _run(tmp_path, pairs_file, max_steps=1, loss="dpo_nll", nll_alpha=0.5)
    saved = tmp_path / "run" / "train_config.json"
    old = json.loads(saved.read_text())
    old.pop("nll_alpha")
    saved.write_text(json.dumps({**old, "loss": "rpo", "rpo_alpha": 0.5}))
    with pytest.raises(ConfigError, match="saved before the rename: DPO plus NLL"):
        preference(out_dir=str(tmp_path / "run"), resume=True)
