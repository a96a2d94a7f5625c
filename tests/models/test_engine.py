"""The inference engine: the same tokens as transformers' generate, the shared prefix, the in-place cache,
stop rules, streaming, groups, adapters from a pool in one batch, exact log-probabilities."""

import json

import pytest
import torch

from agentladder.data import Message
from agentladder.errors import ConfigError
from agentladder.models.engine import Engine, SamplingParams, shared_prefix_length
from agentladder.models.kvcache import BufferedLayer
from agentladder.models.stops import StopRules

GREEDY = SamplingParams(max_new_tokens=6, temperature=0)


def _prompts():
    system = Message(role="system", content="You answer questions about medicines, briefly and in JSON.")
    return [[system, Message(role="user", content=t)] for t in ("hi", "a longer question, with more words", "ok")]


def _hf_greedy(model, tok, ids, n):
    return model.generate(input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                          max_new_tokens=n, do_sample=False, pad_token_id=tok.pad_token_id,
                          eos_token_id=tok.eos_token_id)[0, len(ids):].tolist()


def test_greedy_tokens_match_transformers_generate_with_and_without_the_prefix(model, tok):
    engine = Engine(model, tok, batch_size=2)
    prompts = _prompts()
    cached = engine.generate(prompts, GREEDY)
    assert engine.prefix_tokens >= 16  # the system turn is shared and kept
    plain = Engine(model, tok, prefix_cache=False).generate(prompts, GREEDY)
    for p, a, b in zip(prompts, cached, plain, strict=True):
        ref = _hf_greedy(model, tok, engine.encode(p), 6)
        assert a[0].token_ids == b[0].token_ids == ref


def test_shared_prefix_cache_gives_the_same_tokens(model, tok):
    from agentladder.models.providers import LocalProvider
    from agentladder.tasks import get_task

    task = get_task("medication-directions")
    rows = task.make("test", 3)
    prompts = [task.prompt(r, task.select_shots(1, rows)) for r in rows]
    cached = LocalProvider(model=model, tokenizer=tok, batch_size=3)
    plain = LocalProvider(model=model, tokenizer=tok, batch_size=3, prefix_cache=False)
    # Compare token ids, not text: the random tiny model mostly emits whitespace.
    a = [g[0].token_ids for g in cached.engine.generate(prompts, GREEDY)]
    b = [g[0].token_ids for g in plain.engine.generate(prompts, GREEDY)]
    assert a == b and all(len(x) == 6 for x in a)
    assert cached.engine.prefix_tokens > 1000  # the system prompt and the shot
    assert plain.engine.prefix_tokens == 0


def test_buffered_cache_layer_returns_what_concatenation_would():
    from transformers.cache_utils import DynamicLayer

    g = torch.Generator().manual_seed(0)

    def kv(batch, n):  # (B, H, T, D)
        return torch.randn(batch, 2, n, 4, generator=g), torch.randn(batch, 2, n, 4, generator=g)

    prefix_k, prefix_v = kv(1, 5)
    layer = BufferedLayer(7, prefix_k, prefix_v, 3)
    ref = DynamicLayer()
    ref.update(prefix_k.repeat(3, 1, 1, 1), prefix_v.repeat(3, 1, 1, 1))
    assert layer.get_seq_length() == 5
    for new in (2, 1, 3):  # 5 + 2 fills the 7 positions; the next steps grow the buffer
        k, v = kv(3, new)
        got, want = layer.update(k, v), ref.update(k, v)
        assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
        assert layer.get_seq_length() == ref.get_seq_length()
    layer.crop(-2)  # a cache may be trimmed in place of an update; the next update starts from what is left
    ref.crop(-2)
    k, v = kv(3, 1)
    got, want = layer.update(k, v), ref.update(k, v)
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1]) and layer.get_seq_length() == 10
    keep = torch.tensor([2, 0])  # finished rows leave: the rest move to the front of the same buffer
    buffer = layer._k.data_ptr()
    layer.batch_select_indices(keep)
    ref.batch_select_indices(keep)
    assert torch.equal(layer.keys, ref.keys) and torch.equal(layer.values, ref.values)
    k, v = kv(2, 1)
    got, want = layer.update(k, v), ref.update(k, v)
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1]) and got[0].shape[0] == 2
    assert layer._k.data_ptr() == buffer  # compacted in place: no new buffer
    empty = BufferedLayer(4)  # no prefix: the first update allocates the buffer
    k, v = kv(2, 3)
    assert torch.equal(empty.update(k, v)[0], k) and empty._k.shape[-2] == 4


def test_shared_prefix_length():
    assert shared_prefix_length([[1, 2, 3, 4], [1, 2, 3, 5], [1, 2, 9]]) == 2
    assert shared_prefix_length([[1, 2, 3], [1, 2, 3]]) == 2  # each row keeps a token to prefill
    assert shared_prefix_length([[1], [2]]) == 0 and shared_prefix_length([]) == 0


def test_stop_after_json_rule():
    class Vocab:  # 5 pieces: 0 "a", 1 "{", 2 "}", 3 "{}", 4 "x"
        eos_token_id = 99

    stops = StopRules(Vocab(), stop_at_json=True, braces=([0, 1, 0, 1, 0], [0, 0, 1, 1, 0]))
    stops.start(3)
    rows = [[0, 1, 2], [1, 0, 2], [3, 4, 4]]  # a { }   { a }   {} x x
    seen = [[stops.done(r, rows[r][t], rows[r][: t + 1]) for r in range(3)] for t in range(3)]
    assert seen == [[False, False, True], [False, False, True], [True, True, True]]


class _Scripted(torch.nn.Module):
    """Always predicts the next byte of a fixed text, whatever the cache (it counts the attention mask)."""

    def __init__(self, tok, text):
        super().__init__()
        self.ids = tok(text, add_special_tokens=False)["input_ids"]
        self.vocab = len(tok)
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.config = type("C", (), {"vocab_size": self.vocab})()

    def forward(self, input_ids, attention_mask=None, position_ids=None, cache=None, use_cache=True,
                logits_to_keep=None):
        n = attention_mask.shape[1] - 2 if attention_mask is not None else 0  # the prompts are 2 tokens
        logits = torch.full((input_ids.shape[0], 1, self.vocab), -1e9)
        logits[:, 0, self.ids[min(n, len(self.ids) - 1)]] = 0
        return type("O", (), {"logits": logits})()


def test_stop_strings_json_stop_and_streaming(tok):
    model = _Scripted(tok, '{"a": {"b": 1}} trailing STOP more')
    engine = Engine(model, tok)
    seen = []
    (json_out,), = engine.generate([[1, 2]], SamplingParams(max_new_tokens=40, temperature=0, stop_at_json=True),
                                   on_token=lambda i, t: seen.append((i, t)))
    assert json_out.text == '{"a": {"b": 1}}' and json_out.finish_reason == "stop"
    assert seen == [(0, t) for t in json_out.token_ids], "the callback sees every token, in order"
    (stop_out,), = engine.generate([[1, 2]], SamplingParams(max_new_tokens=40, temperature=0, stop=("STOP",)))
    assert stop_out.text.endswith("STOP") and "more" not in stop_out.text
    assert len(stop_out.logprobs) == len(stop_out.token_ids) == len(stop_out.mask)
    (cut,), = engine.generate([[1, 2]], SamplingParams(max_new_tokens=3, temperature=0))
    assert cut.text == '{"a' and cut.finish_reason == "length" and cut.truncated


def _assert_forward_logprobs(model, engine, prompts, groups, *, temperature):
    """Every sampled token's log-probability equals a forward pass's over its prompt and the tokens before it."""
    for p, group in zip(prompts, groups, strict=True):
        ids = engine.encode(p)
        for c in group:
            with torch.no_grad():
                logits = model(torch.tensor([ids + c.token_ids])).logits[0, len(ids) - 1 : -1]
            want = torch.log_softmax(logits / temperature, -1).gather(-1, torch.tensor(c.token_ids)[:, None])
            assert c.logprobs == pytest.approx(want.squeeze(-1).tolist(), abs=1e-5)


def test_groups_of_n_and_logprobs_of_a_forward_pass(model, tok):
    prompts = _prompts()[:2]
    params = SamplingParams(max_new_tokens=5, temperature=0.7)
    seen = []
    model.train()
    out = Engine(model, tok, batch_size=4).generate(prompts, params, n=3, generator=torch.Generator().manual_seed(0),
                                                   on_token=lambda i, t: seen.append((i, t)))
    assert model.training, "the model goes back to training mode after sampling"
    assert [len(g) for g in out] == [3, 3]
    assert sorted(seen) == sorted((i * 3 + j, t) for i, g in enumerate(out) for j, c in enumerate(g)
                                  for t in c.token_ids)
    engine = Engine(model, tok)
    model.eval()
    _assert_forward_logprobs(model, engine, prompts, out, temperature=0.7)
    same = Engine(model, tok, batch_size=4).generate(prompts, params, n=3, generator=torch.Generator().manual_seed(0))
    assert [[c.token_ids for c in g] for g in same] == [[c.token_ids for c in g] for g in out], "seeded"


def test_one_n_per_prompt_decodes_every_group_in_one_batch(model, tok):
    # Each prompt its own number of sequences: one prefill per prompt, all sequences in one decoding loop,
    # each with the log-probabilities of a forward pass over its prompt; greedy, each equals the prompt's own.
    prompts = _prompts()
    engine = Engine(model, tok, batch_size=8)
    loops = []
    real = engine._decode

    def decode(*args, **kwargs):
        loops.append(args[4])  # the rows decoded together
        return real(*args, **kwargs)

    engine._decode = decode
    seen = []
    out = engine.generate(prompts, SamplingParams(max_new_tokens=5, temperature=0.7), n=[3, 1, 2],
                          generator=torch.Generator().manual_seed(0), on_token=lambda i, t: seen.append((i, t)))
    assert [len(g) for g in out] == [3, 1, 2] and loops == [6]
    first = {0: 0, 1: 3, 2: 4}  # sequences are numbered in prompt order
    assert sorted(seen) == sorted((first[i] + j, t) for i, g in enumerate(out) for j, c in enumerate(g)
                                  for t in c.token_ids)
    model.eval()
    _assert_forward_logprobs(model, engine, prompts, out, temperature=0.7)
    loops.clear()
    greedy = engine.generate(prompts, GREEDY, n=[2, 3, 1])
    alone = [engine.generate([p], GREEDY)[0][0].token_ids for p in prompts]
    want = [[a] * k for a, k in zip(alone, [2, 3, 1], strict=True)]
    assert loops[0] == 6 and [[c.token_ids for c in g] for g in greedy] == want
    split = Engine(model, tok, batch_size=4).generate(prompts, GREEDY, n=[2, 3, 1])  # 4 sequences a batch at most
    assert [[c.token_ids for c in g] for g in split] == want
    with pytest.raises(ConfigError, match="one count of at least 1"):
        engine.generate(prompts, GREEDY, n=[1, 2])


def _adapter_folder(tmp_path, name, seed):
    from agentladder.models import attach_lora, save_adapter, tiny_model

    model = attach_lora(tiny_model(), None)
    with torch.no_grad():
        gen = torch.Generator().manual_seed(seed)
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
    folder = tmp_path / name
    save_adapter(model, folder)
    (folder / "agentladder.json").write_text(json.dumps({"base_model": "tiny"}))
    return folder


def test_mixed_adapter_batch_equals_one_adapter_at_a_time(tmp_path):
    from agentladder.models.pool import ModelPool

    a, b = _adapter_folder(tmp_path, "spec-a", 1), _adapter_folder(tmp_path, "spec-b", 2)
    pool = ModelPool()
    specs = [str(a), "tiny", str(b), str(a), str(b)]
    pool.acquire(str(a)), pool.acquire(str(b))  # attach both adapters before the plain base runs
    msgs = [[Message(role="user", content=t)] for t in ("hello", "hi", "hey there", "yo", "hello")]
    params = SamplingParams(max_new_tokens=6, temperature=0)
    mixed = pool.generate(specs, msgs, params)
    assert pool.base_models() == 1
    alone = [pool.generate([s], [m], params)[0] for s, m in zip(specs, msgs, strict=True)]
    assert [c.token_ids for c in mixed] == [c.token_ids for c in alone]
    for x, y in zip(mixed, alone, strict=True):
        assert x.logprobs == pytest.approx(y.logprobs, abs=1e-5)
    assert mixed[0].token_ids != mixed[1].token_ids or mixed[0].logprobs != mixed[1].logprobs
    assert mixed[0].logprobs != pytest.approx(mixed[4].logprobs, abs=1e-4), "each row ran its own adapter"
