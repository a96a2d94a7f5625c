"""A reward model on the real SmolLM2-135M scoring a policy with another tokenizer (the tiny model's bytes)."""

import json

import pytest

from agentladder.models.loading import load_tokenizer
from agentladder.rewards import RewardInput, build_reward
from agentladder.train.reward_model import train_reward_model
from agentladder.train.rl import rl
from tests.train.test_reward_model import toy_pairs

pytestmark = pytest.mark.slow


def test_a_smollm2_reward_model_rewards_a_tiny_policy_through_its_own_tokenizer(tmp_path):
    data = toy_pairs(tmp_path / "pairs.jsonl", n=16)
    result = train_reward_model(model="smollm2-135m", data=str(data), out_dir=str(tmp_path / "rm"), max_steps=2,
                                batch_size=4, lora=True, lora_r=4, lora_alpha=8, validation_share=0.25,
                                normalisation_rows=8, progress=False, tensorboard=False)
    assert result.validation["pairs"]["pairs"] == 4
    assert load_tokenizer("tiny").vocab_size != load_tokenizer("smollm2-135m").vocab_size
    _, reward, _ = build_reward({"type": "reward_model", "path": str(tmp_path / "rm")})
    scores = [o.score for o in reward.score_group([RewardInput([], "abc def"), RewardInput([], "ABC7DEF")])]
    assert all(isinstance(s, float) for s in scores) and scores[0] != scores[1]
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": f"write {i}"}) + "\n" for i in range(4)))
    run = rl(preset="ppo", model="tiny", data=str(prompts), out_dir=str(tmp_path / "ppo"), group_size=2, batch_size=2,
             max_new_tokens=6, max_steps=1, progress=False, tensorboard=False,
             rewards=[{"type": "reward_model", "path": str(tmp_path / "rm")}])
    assert "reward/reward_model" in run.history[-1]
