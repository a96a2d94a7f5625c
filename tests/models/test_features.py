"""Features from a frozen model: pooling, every layer from one pass, and a cache keyed by model, layer,
pooling and data that is never read back for anything else."""

import json

import numpy as np
import pytest
import torch

from agentladder.errors import ConfigError
from agentladder.models.features import (
    FeatureCache,
    FeatureExtractor,
    FeatureSpec,
    cache_key,
    cached_features,
    pool,
)
from agentladder.models.tiny import tiny_model, tiny_tokenizer

TEXTS = ["disk 97% full on orders-db", "ok", "deployment finished in 12s", "p99 latency 900ms (SLO 300ms)"]


def test_the_cache_key_changes_with_model_layer_pooling_and_data():
    base = FeatureSpec("tiny", 1, "mean")
    key = cache_key(base, TEXTS)
    assert key == cache_key(FeatureSpec("tiny", 1, "mean"), list(TEXTS))
    for other in (FeatureSpec("smollm2-135m", 1, "mean"), FeatureSpec("tiny", 2, "mean"),
                  FeatureSpec("tiny", 1, "last"), FeatureSpec("tiny", 1, "mean", max_length=64)):
        assert cache_key(other, TEXTS) != key
    assert cache_key(base, TEXTS[:-1]) != key and cache_key(base, TEXTS[::-1]) != key


def test_a_folder_model_is_known_by_its_files(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    first = cache_key(FeatureSpec(str(folder), 1), TEXTS)
    (folder / "model.safetensors").write_bytes(b"weights")
    assert cache_key(FeatureSpec(str(folder), 1), TEXTS) != first


def test_specs_that_make_no_sense_are_refused():
    with pytest.raises(ConfigError, match="pooling"):
        FeatureSpec("tiny", 1, "max")
    with pytest.raises(ConfigError, match="need a layer"):
        FeatureSpec("tiny", None)
    with pytest.raises(ConfigError, match="no layer to choose"):
        FeatureSpec("sentence:minilm", 3)


def test_pooling_leaves_padding_out_on_either_side():
    hidden = torch.arange(2 * 4 * 3, dtype=torch.float32).reshape(2, 4, 3)
    right = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])
    left = torch.tensor([[0, 0, 1, 1], [1, 1, 1, 1]])
    assert torch.equal(pool(hidden, right, "mean")[0], hidden[0, :2].mean(0))
    assert torch.equal(pool(hidden, right, "last")[0], hidden[0, 1])
    assert torch.equal(pool(hidden, left, "last")[0], hidden[0, 3])
    assert torch.equal(pool(hidden, left, "mean")[1], hidden[1].mean(0))


def test_features_of_a_text_do_not_depend_on_its_batch():
    extractor = FeatureExtractor("tiny", batch_size=4)
    together = extractor.features(TEXTS, [1, 2, -1], "mean")
    alone = FeatureExtractor("tiny", batch_size=1).features(TEXTS, [2, -1], "last")
    assert together[1].shape == (4, 64) and np.allclose(together[2], together[-1])
    batched_last = extractor.features(TEXTS, [2], "last")[2]
    assert np.allclose(batched_last, alone[2], atol=1e-5)
    with pytest.raises(ConfigError, match="no layer 7"):
        extractor.features(TEXTS, [7])


def test_the_cache_is_reused_only_for_the_same_spec_and_texts(tmp_path):
    cache = FeatureCache(tmp_path)
    extractor = FeatureExtractor("tiny")
    first = cached_features(extractor, TEXTS, [1, 2], "mean", cache=cache)
    assert len(list(tmp_path.glob("*.npy"))) == 2
    calls = []
    again = cached_features(extractor, TEXTS, [1, 2], "mean", cache=cache, progress=calls.append)
    assert not calls and all(np.array_equal(first[k], again[k]) for k in (1, 2))  # read back, no pass
    cached_features(extractor, TEXTS, [1], "last", cache=cache, progress=calls.append)
    assert calls  # another pooling is computed, not read from the mean's file
    assert cache.get(FeatureSpec("tiny", 1, "mean"), TEXTS[:3]) is None
    # a manifest that no longer matches its key (another model's file under this name) is not trusted
    meta = next(p for p in tmp_path.glob("*.json") if json.loads(p.read_text())["layer"] == 2
                and json.loads(p.read_text())["pooling"] == "mean")
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "model": "smollm2-135m"}))
    assert cache.get(FeatureSpec("tiny", 2, "mean"), TEXTS) is None
    assert cache.get(FeatureSpec("tiny", 1, "mean"), TEXTS) is not None


def test_the_pass_stops_at_the_deepest_layer_asked_for_with_the_same_features():
    extractor = FeatureExtractor("tiny")
    extractor._model, extractor._tokenizer = tiny_model(num_layers=5), tiny_tokenizer()
    extractor._tokenizer.padding_side = "right"
    blocks = extractor._model.model.layers
    whole = extractor.features(TEXTS, [1, 2, 5], "mean")
    calls = []
    hooks = [block.register_forward_hook(lambda *a, i=i: calls.append(i)) for i, block in enumerate(blocks)]
    shallow = extractor.features(TEXTS, [2], "mean")
    for hook in hooks:
        hook.remove()
    assert sorted(set(calls)) == [0, 1, 2]  # blocks 3 and 4 never ran for hidden state 2
    assert np.allclose(shallow[2], whole[2], atol=1e-6) and not np.allclose(whole[2], whole[5])
    assert extractor._model.model.layers is blocks and len(blocks) == 5  # the model is whole again
