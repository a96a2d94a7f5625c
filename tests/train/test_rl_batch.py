"""Rollouts and RL batches: the group cache, the group-prompt layout, old log-probabilities, masks."""

import pytest
import torch

from agentladder.data import Conversation
from agentladder.data.schema import Message
from agentladder.models.chat import prompt_ids
from agentladder.models.lora import LoraSettings, attach_lora
from agentladder.models.rollout import LocalRollout, SamplingParams, make_rollout, sample_tokens
from agentladder.train.rl_batch import (
    RLSample,
    group_batch,
    padded_rl_batch,
    sample_from_conversation,
)
from agentladder.train.rl_losses import aggregate, clipped_policy_loss
from agentladder.train.shared_prompt import token_outputs, use_shared_prompt_attention
from tests.conftest import CONVERSATIONS


def _prompts(tok):
    return [prompt_ids(tok, [Message(role="user", content=t)]) for t in ("hi", "a longer prompt, with more words")]


def test_group_rollout_matches_one_generate_per_row(tok, model):
    """Greedy: encoding each prompt once and repeating its cache gives what HF generate gives per row."""
    prompts = _prompts(tok)
    out = LocalRollout(model, tok).generate(prompts, 3, SamplingParams(max_new_tokens=6, temperature=0))
    for p, group in zip(prompts, out, strict=True):
        ref = model.generate(input_ids=torch.tensor([p]), max_new_tokens=6, do_sample=False,
                             pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)[0, len(p):].tolist()
        assert len(group) == 3
        assert all(c.token_ids == ref for c in group)
        assert all(c.finish_reason == "length" and c.truncated for c in group)


def test_sampler_logprobs_are_the_training_logprobs(tok, model):
    """The old-policy log-probabilities kept from sampling equal a training forward's (at the same temperature)."""
    prompts = _prompts(tok)
    out = LocalRollout(model, tok).generate(prompts, 4, SamplingParams(max_new_tokens=10, temperature=0.7),
                                            torch.Generator().manual_seed(0))
    samples = [RLSample(g, prompts[g], c.token_ids, c.mask, old_logps=c.logprobs)
               for g, grp in enumerate(out) for c in grp]
    padded = token_outputs(model, padded_rl_batch(samples, tok.pad_token_id), temperature=0.7)
    assert use_shared_prompt_attention(model)
    batch = group_batch(samples)
    grouped = token_outputs(model, batch, temperature=0.7)
    assert torch.allclose(grouped.logps, padded.logps, atol=1e-5)
    assert torch.allclose(grouped.logps, batch["old_logps"] * batch["mask"], atol=1e-5)
    # the prompt goes through the model once per group, not once per response
    assert batch["input_ids"].shape[1] == sum(len(p) for p in prompts) + sum(len(s.completion) for s in samples)


def test_stop_strings_and_json_stop():
    from agentladder.models.tiny import tiny_tokenizer

    tok = tiny_tokenizer()

    class Scripted(torch.nn.Module):
        """Always predicts the next byte of a fixed text (it counts the positions the attention mask covers)."""

        def __init__(self, text):
            super().__init__()
            self.ids = tok(text, add_special_tokens=False)["input_ids"]
            self.w = torch.nn.Parameter(torch.zeros(1))
            self.config = type("C", (), {"vocab_size": len(tok)})()

        def forward(self, input_ids, attention_mask=None, position_ids=None, cache=None, use_cache=True,
                    logits_to_keep=None):
            n = attention_mask.shape[1] - 2 if attention_mask is not None else 0  # the prompt is 2 tokens
            logits = torch.full((input_ids.shape[0], 1, len(tok)), -1e9)
            logits[:, 0, self.ids[min(n, len(self.ids) - 1)]] = 0
            return type("O", (), {"logits": logits})()

    m = Scripted('{"a": {"b": 1}} trailing STOP more')
    json_out = LocalRollout(m, tok).generate([[1, 2]], 1, SamplingParams(max_new_tokens=40, temperature=0,
                                                                          stop_at_json=True))[0][0]
    assert json_out.text == '{"a": {"b": 1}}' and json_out.finish_reason == "stop"
    stop_out = LocalRollout(m, tok).generate([[1, 2]], 1, SamplingParams(max_new_tokens=40, temperature=0,
                                                                          stop=("STOP",)))[0][0]
    assert stop_out.text.endswith("STOP") and "more" not in stop_out.text
    assert len(stop_out.logprobs) == len(stop_out.token_ids)


def test_top_p_keeps_only_the_nucleus():
    logits = torch.log(torch.tensor([[0.6, 0.3, 0.05, 0.05]]))
    g = torch.Generator().manual_seed(0)
    seen = {int(sample_tokens(logits, 1.0, 0.8, g)[0][0]) for _ in range(200)}
    assert seen == {0, 1}
    tokens, lp = sample_tokens(logits, 1.0, 1.0, g)
    assert lp.item() == pytest.approx(torch.log_softmax(logits, -1)[0, tokens[0]].item())


def test_vllm_backend_is_import_guarded(tok, model):
    try:
        import vllm  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="agentladder\\[gpu\\]"):
            make_rollout("vllm", model, tok, model_path="x")
    with pytest.raises(ValueError, match="local or vllm"):
        make_rollout("sglang", model, tok)


def test_masked_tool_tokens_get_no_gradient(tok):
    """A multi-turn rollout's tool output is read by the model but its tokens carry no loss and no gradient."""
    from agentladder.models.tiny import tiny_model

    conv = Conversation.model_validate(CONVERSATIONS[3])  # user, assistant tool call, tool result, assistant
    model = attach_lora(tiny_model(tokenizer=tok), LoraSettings(r=4, alpha=8))
    sample = sample_from_conversation(tok, conv, advantage=1.0)
    tool_text = "sunny, 21C"
    assert 0 in sample.mask and 1 in sample.mask
    masked = [t for t, m in zip(sample.completion, sample.mask, strict=True) if m == 0]
    assert tool_text in tok.decode(masked)
    sample.old_logps = [0.0] * len(sample.completion)
    use_shared_prompt_attention(model)
    batch = group_batch([sample])
    out = token_outputs(model, batch)
    out.logps.retain_grad()
    mask = batch["mask"]
    pl = clipped_policy_loss(out.logps, out.logps.detach(), batch["advantages"], mask)
    total, _ = aggregate(pl.loss, mask, "token_mean")
    total.backward()
    grad = out.logps.grad
    assert torch.all(grad[mask == 0] == 0)
    assert torch.all(out.logps[mask == 0] == 0)  # never even scored
    assert torch.all(grad[mask == 1] != 0)
    # the masked tokens are not predicted at all: the batch's targets are exactly the trained tokens
    assert batch["targets"].tolist() == [t for t, m in zip(sample.completion, sample.mask, strict=True) if m]


def _weather_tool(conversation, answer):
    """Answers the first assistant turn with a tool result; the episode ends after the second."""
    if sum(m.role == "assistant" for m in conversation) >= 2:
        return None
    return [Message(role="tool", name="weather", content="TOOL SAYS sunny")]


def test_multi_turn_rollout_masks_tool_output(tok, model):
    from agentladder.models.rollout import multi_turn_generate

    prompts = [[Message(role="user", content="weather?")]]
    ids = [prompt_ids(tok, p) for p in prompts]
    engine = LocalRollout(model, tok)
    # stop each turn early with a stop string the byte-level model emits often enough: any character
    params = SamplingParams(max_new_tokens=40, temperature=1.0, stop=tuple(chr(c) for c in range(32, 127)))
    out = multi_turn_generate(engine, tok, prompts, ids, 2, params, _weather_tool, max_turns=3,
                              generator=torch.Generator().manual_seed(0))
    for c in out[0]:
        assert [m.role for m in c.turns] == ["assistant", "tool", "assistant"]
        assert len(c.mask) == len(c.token_ids) == len(c.logprobs) <= 40
        masked = tok.decode([t for t, m in zip(c.token_ids, c.mask, strict=True) if m == 0])
        assert "TOOL SAYS sunny" in masked and "<|im_start|>tool" in masked
        trained = tok.decode([t for t, m in zip(c.token_ids, c.mask, strict=True) if m == 1])
        assert "TOOL SAYS" not in trained
        # the tokens are exactly the chat template's rendering of the whole conversation
        full = tok.decode([*ids[0], *c.token_ids], skip_special_tokens=False)
        from agentladder.models.chat import render

        assert full.startswith(render(tok, [*prompts[0], *c.turns[:2]], add_generation_prompt=True))
    # and they train: the tool output is a model input with no loss
    samples = [RLSample(0, ids[0], c.token_ids, c.mask, advantages=[1.0 * m for m in c.mask], old_logps=c.logprobs)
               for c in out[0]]
    use_shared_prompt_attention(model)
    batch = group_batch(samples)
    res = token_outputs(model, batch)
    assert torch.allclose(res.logps, batch["old_logps"] * batch["mask"], atol=1e-5)


def test_entropy_matches_the_softmax_definition(tok, model):
    prompts = _prompts(tok)[:1]
    out = LocalRollout(model, tok).generate(prompts, 2, SamplingParams(max_new_tokens=5, temperature=1.0),
                                            torch.Generator().manual_seed(1))
    samples = [RLSample(0, prompts[0], c.token_ids, c.mask) for c in out[0]]
    batch = padded_rl_batch(samples, tok.pad_token_id)
    res = token_outputs(model, batch, entropy=True)
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    for i, s in enumerate(samples):
        for j in range(len(s.completion)):
            lp = torch.log_softmax(logits[i, len(s.prompt) + j - 1], -1)
            assert res.entropy[i, j].item() == pytest.approx(-(lp.exp() * lp).sum().item(), abs=1e-4)
            assert res.logps[i, j].item() == pytest.approx(lp[s.completion[j]].item(), abs=1e-5)
