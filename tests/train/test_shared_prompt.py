"""One prompt, N answers: the preference trainer's pairs and the RL trainer's groups go through one builder."""

import pytest
import torch

from agentladder.data import Message, PreferencePair
from agentladder.models.chat import prompt_ids
from agentladder.train.preference import encode_pairs
from agentladder.train.rl_batch import RLSample, group_batch, padded_rl_batch
from agentladder.train.shared_prompt import (
    Answer,
    answer_logps,
    completion_logps,
    padded_batch,
    padded_prompt_batch,
    shared_batch,
    shared_prompt_batch,
    token_outputs,
    use_shared_prompt_attention,
)

PAIRS = [
    {"prompt": "What is 2+2?", "chosen": "4", "rejected": "five, I think"},
    {"prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?"}],
     "chosen": "Paris.", "rejected": "London is the capital of France."},
    {"prompt": "Say hi", "chosen": "Hi!", "rejected": "Go away."},
]


@pytest.mark.parametrize("layout", ["shared", "padded"])
def test_preference_and_rl_paths_give_identical_logprobs(tok, model, layout):
    """The same prompt and answers as preference pairs and as RL groups: the same batch, the same log-probs."""
    triples, _ = encode_pairs(tok, [PreferencePair.model_validate(p) for p in PAIRS], max_length=512)
    samples = [RLSample(r, t.prompt, ids, mask) for r, t in enumerate(triples)
               for ids, mask in ((t.a_ids, t.a_mask), (t.b_ids, t.b_mask))]
    if layout == "shared":
        assert use_shared_prompt_attention(model)
        pairs, groups = shared_batch(triples), group_batch(samples)
        assert pairs["layout"] == groups["layout"]
    else:
        pairs, groups = padded_batch(triples, tok.pad_token_id), padded_rl_batch(samples, tok.pad_token_id)
    assert torch.equal(pairs["input_ids"], groups["input_ids"])
    with torch.no_grad():
        preference, counts = completion_logps(model, pairs)  # (R, 2)
        rl_sums, rl_counts = answer_logps(model, groups)  # (2R,)
        rl_tokens = token_outputs(model, groups).logps  # (2R, T)
    assert torch.equal(rl_sums.view(-1, 2), preference)
    assert torch.equal(rl_counts.view(-1, 2), counts)
    torch.testing.assert_close(rl_tokens.sum(-1).view(-1, 2), preference, atol=1e-5, rtol=1e-6)
    assert counts.flatten().tolist() == [sum(s.mask) for s in samples]


def test_interleaved_groups_keep_the_input_order(tok, model):
    """Answers of different prompts may come in any order: each group's prompt is laid out once,
    and the outputs' rows stay in the input order (equal to the padded rows')."""
    p0, p1 = (prompt_ids(tok, [Message(role="user", content=t)]) for t in ("hi", "a longer prompt"))
    y = [tok(t, add_special_tokens=False)["input_ids"] for t in ("abc", "de", "fghi")]
    answers = [Answer(0, p0, y[0], [1, 1, 1]), Answer(1, p1, y[1], [1, 1]), Answer(0, p0, y[2], [1, 0, 1, 1])]
    shared = shared_prompt_batch(answers)
    assert shared["input_ids"].shape[1] == len(p0) + len(p1) + 3 + 2 + 4
    assert shared["mask"].tolist() == [[1, 1, 1, 0], [1, 1, 0, 0], [1, 0, 1, 1]]
    assert use_shared_prompt_attention(model)
    with torch.no_grad():
        got = token_outputs(model, shared).logps
        want = token_outputs(model, padded_prompt_batch(answers, tok.pad_token_id)).logps
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    assert got[2, 1] == 0 and got[1, 2] == 0  # unscored and past the end
