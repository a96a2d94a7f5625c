"""A quiet console: loading, generating and saving print none of the third-party bars and warnings."""

import warnings

import pytest
import torch

from agentladder.data import Message

THIRD_PARTY = ("Writing model shards", "Loading weights", "de-quantizing", "past_key_values", "cache_params",
               "FutureWarning", "it/s]", "%|")


def _assert_quiet(err: str, seen: list) -> None:
    for text in THIRD_PARTY:
        assert text not in err, f"{text!r} reached the console:\n{err}"
    assert not [w for w in seen if issubclass(w.category, (FutureWarning, DeprecationWarning))], \
        [str(w.message) for w in seen]


def test_loading_generating_and_saving_the_tiny_model_is_quiet(tmp_path, rows_file, capfd):
    from agentladder.models import generate, load_model
    from agentladder.models.chat import prompt_ids
    from agentladder.models.providers import LocalProvider
    from agentladder.models.rollout import LocalRollout, SamplingParams
    from agentladder.train.sft import sft

    prompt = [Message(role="system", content="Answer in JSON, always, and briefly."), Message(role="user", content="hi")]
    capfd.readouterr()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        model, tok = load_model("tiny")
        LocalProvider(model=model, tokenizer=tok).complete([prompt, prompt], max_new_tokens=3, stop_at_json=True)
        generate(model, tok, [prompt], max_new_tokens=3, temperature=0.7, seed=0)
        LocalRollout(model, tok).generate([prompt_ids(tok, prompt)], 2, SamplingParams(max_new_tokens=3),
                                          torch.Generator().manual_seed(0))
        sft(model="tiny", data=str(rows_file), out_dir=str(tmp_path / "full"), lora=False, max_steps=1,
            progress=False, tensorboard=False)  # saves a whole model: the "Writing model shards" bar
        load_model(str(tmp_path / "full"))
    _assert_quiet(capfd.readouterr().err, seen)


@pytest.mark.slow
def test_converting_the_packaged_gguf_is_quiet(tmp_path, monkeypatch, capfd):
    from agentladder.models.loading import materialise_packaged

    monkeypatch.setenv("AGENTLADDER_HOME", str(tmp_path))
    capfd.readouterr()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        folder = materialise_packaged("smollm2-135m")
    assert (folder / "config.json").exists()
    _assert_quiet(capfd.readouterr().err, seen)
