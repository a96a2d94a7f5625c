"""A reward model folder served through the provider layer and registered with its lineage."""

import pytest

from agentladder.data import Message
from agentladder.ladder import Registry
from agentladder.ladder.learned import register_reward_model
from agentladder.ladder.registry import ModelVersion
from agentladder.models.loading import load_model
from agentladder.models.providers import (
    ProviderError,
    RewardModelProvider,
    chat_provider,
    make_provider,
)
from agentladder.models.rewardmodel import RewardModel
from agentladder.train.reward_model import train_reward_model
from tests.train.test_reward_model import toy_pairs


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny reward model trained from a saved model folder that a registry knows as a version."""
    root = tmp_path_factory.mktemp("rm")
    model, tokenizer = load_model("tiny")
    model.save_pretrained(str(root / "sft"))
    tokenizer.save_pretrained(str(root / "sft"))
    train_reward_model(model=str(root / "sft"), data=str(toy_pairs(root / "pairs.jsonl", n=64)),
                       out_dir=str(root / "rm1"), max_steps=12, learning_rate=1e-3, validation_share=0.25,
                       normalisation_rows=16, progress=False, tensorboard=False)
    return root


def test_make_provider_serves_a_reward_model_folder(trained):
    folder = str(trained / "rm1")
    provider = make_provider(folder)
    assert isinstance(provider, RewardModelProvider) and isinstance(chat_provider(folder), RewardModelProvider)
    prompt = [Message(role="user", content="write 3")]
    good, bad = [Message(role="assistant", content="abc def ghi")], [Message(role="assistant", content="ABC7DEF7GHI")]
    scores = provider.score([prompt, "write 3"], [good, "ABC7DEF7GHI"])
    direct = RewardModel.load(folder).score([prompt, prompt], [good, bad], normalize=True)
    assert scores == pytest.approx(direct.tolist(), abs=1e-5) and scores[0] > scores[1]
    raw = provider.score([prompt], [good], normalize=False)[0]
    rm = RewardModel.load(folder)
    assert raw == pytest.approx((scores[0] * rm.std) + rm.mean, abs=1e-4)
    texts = provider.complete([[*prompt, *good], [*prompt, *bad]])
    assert [float(t) for t in texts] == pytest.approx(scores, abs=1e-4)
    reply = provider.chat([*prompt, *good])
    assert float(reply.message.content) == pytest.approx(scores[0], abs=1e-4) and provider.last_scores
    with pytest.raises(ProviderError, match="ends with an assistant answer"):
        provider.complete([prompt])
    with pytest.raises(ProviderError, match="calls no tools"):
        provider.chat([*prompt, *good], tools=[object()])
    provider.close()


def test_a_trained_reward_model_is_registered_under_the_version_it_started_from(trained, tmp_path):
    db = tmp_path / "r.db"
    with Registry(db) as reg:
        reg.register(ModelVersion(id="qa/sft/abc123", ladder="qa", rung="sft", kind="sft",
                                  path=str((trained / "sft").resolve()), artifact="full"))
    version = register_reward_model(trained / "rm1", db)
    assert version.kind == version.artifact == "reward_model" and version.headline == "accuracy"
    assert version.metrics["accuracy"]["n"] == 16 and version.score == version.metrics["accuracy"]["value"]
    with Registry(db) as reg:
        assert [v.id for v in reg.lineage(version.id)] == ["qa/sft/abc123", version.id]
        assert reg.get("reward_model/rm1").path == str((trained / "rm1").resolve())
