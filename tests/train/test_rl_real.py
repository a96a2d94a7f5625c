"""The RL pieces on the real packaged SmolLM2-135M-Instruct (slow)."""

import pytest
import torch

from agentladder.models import load_model
from agentladder.models.chat import prompt_ids
from agentladder.models.rollout import LocalRollout, SamplingParams
from agentladder.train.rl_batch import RLSample, group_batch, padded_rl_batch
from agentladder.train.shared_prompt import token_outputs, use_shared_prompt_attention

pytestmark = pytest.mark.slow


def test_group_layout_and_sampler_logprobs_on_the_real_model():
    from agentladder.tasks import get_task

    model, tok = load_model("smollm2-135m")
    task = get_task("medication-directions")
    prompts = [prompt_ids(tok, task.prompt(s)) for s in task.make("train", 2, seed=0)]
    out = LocalRollout(model, tok).generate(prompts, 2, SamplingParams(max_new_tokens=12, temperature=1.0),
                                            torch.Generator().manual_seed(0))
    samples = [RLSample(g, prompts[g], c.token_ids, c.mask, old_logps=c.logprobs)
               for g, grp in enumerate(out) for c in grp]
    with torch.no_grad():
        padded = token_outputs(model, padded_rl_batch(samples, tok.pad_token_id))
        assert use_shared_prompt_attention(model)
        batch = group_batch(samples)
        grouped = token_outputs(model, batch)
    assert torch.allclose(grouped.logps, padded.logps, atol=1e-4)
    assert torch.allclose(grouped.logps, batch["old_logps"] * batch["mask"], atol=1e-4)


def test_one_grpo_step_on_the_task_with_the_adapters_off_reference(tmp_path):
    from agentladder.train.rl import rl

    result = rl(preset="grpo", model="smollm2-135m", task="medication-directions", n_prompts=4, batch_size=1,
                group_size=2, max_new_tokens=16, max_steps=1, lora=True, out_dir=str(tmp_path / "grpo"),
                progress=False, tensorboard=False)
    last = result.history[-1]
    assert last["gen_tokens"] > 0 and "reward/medication-directions:default" in last
    assert last["updates"] == 1 and last["kl"] == pytest.approx(0.0, abs=1e-5)  # a fresh adapter is the base
    assert (tmp_path / "grpo" / "adapter_config.json").exists()
