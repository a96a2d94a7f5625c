"""The engine's step-level API: rows joining and leaving a running batch decode what Engine.generate decodes."""

import pytest
import torch
from peft import LoraConfig, get_peft_model

from agentladder.data import Message
from agentladder.errors import ConfigError
from agentladder.models.batch import RunningBatch
from agentladder.models.engine import Engine, SamplingParams


def _ids(engine, texts):
    return [engine.encode([Message(role="user", content=t)]) for t in texts]


def _greedy(batch, steps_left):
    """Greedy-decode every row of ``batch`` for its remaining steps; {key: tokens}."""
    out = {k: [] for k in batch.keys}
    while len(batch):
        tokens = batch.logits.float().argmax(-1).tolist()
        done = []
        for k, t in zip(batch.keys, tokens, strict=True):
            out[k].append(t)
            steps_left[k] -= 1
            if steps_left[k] == 0:
                done.append(k)
        keep = [t for k, t in zip(batch.keys, tokens, strict=True) if k not in done]
        batch.remove(done)
        if len(batch):
            batch.step(keep)
    return out


def test_rows_joining_mid_decode_get_the_engines_greedy_tokens(model, tok):
    engine = Engine(model, tok, prefix_cache=False)
    prompts = _ids(engine, ["hi", "a much longer question with many more words in it", "ok then", "x"])
    want = [g[0].token_ids for g in engine.generate(prompts, SamplingParams(max_new_tokens=9, temperature=0))]
    model.eval()
    batch = RunningBatch(engine)
    got = {}
    batch.add([prompts[0]], [["a"]])
    for _ in range(3):  # "a" decodes three tokens alone
        t = batch.logits.float().argmax(-1).tolist()
        got.setdefault("a", []).extend(t)
        batch.step(t)
    batch.add([prompts[1], prompts[2]], [["b"], ["c"]])  # a longer and a shorter prompt join
    assert batch.keys == ["a", "b", "c"] and batch.length >= len(prompts[1])
    for _ in range(2):
        t = batch.logits.float().argmax(-1).tolist()
        for k, tt in zip(batch.keys, t, strict=True):
            got.setdefault(k, []).append(tt)
        batch.step(t)
    batch.add([prompts[3]], [["d"]])
    rest = _greedy(batch, {"a": 9 - 5, "b": 9 - 2, "c": 9 - 2, "d": 9})
    for k in rest:
        got[k] = got.get(k, []) + rest[k]
    assert [got[k] for k in "abcd"] == want
    assert len(batch) == 0 and batch.cache is None


def test_leaving_rows_free_their_columns_and_n_sequences_share_a_prefill(model, tok):
    engine = Engine(model, tok, prefix_cache=False)
    long, short = _ids(engine, ["a long prompt that sets the batch's width", "short"])
    model.eval()
    batch = RunningBatch(engine)
    batch.add([long, short], [["long"], ["s0", "s1", "s2"]])  # three sequences continue the short prompt
    assert batch.keys == ["long", "s0", "s1", "s2"] and batch.logits.shape[0] == 4
    assert torch.equal(batch.logits[1], batch.logits[3])
    width = batch.length
    batch.step(batch.logits.argmax(-1))
    batch.remove(["long"])  # the long row leaves: the columns only it used go with it
    assert batch.length == len(short) + 1 < width + 1
    assert batch.attn.all()
    with pytest.raises(ConfigError, match="two rows"):
        batch.add([short], [["s0"]])
    with pytest.raises(ConfigError, match="empty prompt"):
        batch.add([[]], [["e"]])
    batch.remove(["s0", "s1", "s2", "unknown"])
    assert len(batch) == 0 and batch.length == 0


def test_specialists_share_one_batch_through_peft(tok):
    from agentladder.models.tiny import tiny_model

    base = tiny_model(tokenizer=tok)
    torch.manual_seed(0)
    cfg = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    model = get_peft_model(base, cfg, adapter_name="alpha")
    model.add_adapter("beta", LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                         init_lora_weights=False))
    model.eval()
    engine = Engine(model, tok, prefix_cache=False)
    prompts = _ids(engine, ["same prompt", "same prompt", "same prompt", "another"])
    adapters = ["alpha", "beta", None, "beta"]
    params = SamplingParams(max_new_tokens=6, temperature=0)
    want = [engine.generate([p], params, adapters=[a])[0][0].token_ids for p, a in zip(prompts, adapters, strict=True)]
    assert len({tuple(w) for w in want[:3]}) == 3, "the two adapters and the base answer differently"
    batch = RunningBatch(engine)
    batch.add(prompts, [[i] for i in range(4)], adapters)
    got = _greedy(batch, dict.fromkeys(range(4), 6))
    assert [got[i] for i in range(4)] == want
