"""A trained classifier served next to the tiny model: vLLM's ``/classify``, and chat through the real
``openai`` client answering the label the classifier gives in-process."""

import json

import httpx
import numpy as np
import openai
import pytest

from agentladder.errors import ConfigError
from agentladder.models.classifier import FeatureClassifier
from agentladder.serve import ServerState, load_state
from agentladder.serve.classify import ServedClassifier
from agentladder.train.classifier import train_classifier
from tests.serve.conftest import LiveServer
from tests.train.test_classifier import _toy_rows


@pytest.fixture(scope="module")
def toy_classifier(tmp_path_factory):
    root = tmp_path_factory.mktemp("cls")
    paths = []
    for name, rows in (("train", _toy_rows(60, 0)), ("val", _toy_rows(30, 1))):
        path = root / f"{name}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        paths.append(str(path))
    result = train_classifier(paths[0], str(root / "toy"), features="tiny", layers=[2], validation=paths[1],
                              c_values=[1.0], cache_dir=str(root / "cache"), progress=False)
    return str(result.out_dir)


@pytest.fixture(scope="module")
def live(toy_classifier):
    state = load_state("tiny", classifiers={"toy": toy_classifier}, default_max_tokens=8)
    with LiveServer(state) as server:
        yield server


TEXTS = [r["text"] for r in _toy_rows(8, 5)]


def test_classify_answers_in_vllms_shape_with_the_in_process_labels(live, toy_classifier):
    clf = FeatureClassifier.load(toy_classifier)
    expected, proba = clf.predict(TEXTS), clf.predict_proba(TEXTS)
    for path, body in (("/classify", {"model": "toy", "input": TEXTS}),
                       ("/v1/classify", {"model": "toy", "input": TEXTS[0]})):
        answer = httpx.post(live.url + path, json=body, timeout=60).json()
        assert answer["object"] == "list" and answer["model"] == "toy" and answer["id"].startswith("classify-")
        n = len(body["input"]) if isinstance(body["input"], list) else 1
        assert [d["index"] for d in answer["data"]] == list(range(n))
        assert [d["label"] for d in answer["data"]] == expected[:n]
        assert np.allclose([d["probs"] for d in answer["data"]], proba[:n], atol=1e-5)
        assert all(d["num_classes"] == 2 for d in answer["data"])
        assert answer["usage"]["prompt_tokens"] > 0 and answer["usage"]["completion_tokens"] == 0
    card = next(c for c in httpx.get(live.base_url + "/models").json()["data"] if c["id"] == "toy")
    assert card["labels"] == ["codes", "words"]


def test_chat_with_the_openai_client_answers_the_label_whole_and_streamed(live, toy_classifier):
    expected = FeatureClassifier.load(toy_classifier).predict(TEXTS[:3])
    with openai.OpenAI(base_url=live.base_url, api_key="test", max_retries=0) as client:
        for text, label in zip(TEXTS[:3], expected, strict=True):
            messages = [{"role": "system", "content": "Answer codes or words."}, {"role": "user", "content": text}]
            reply = client.chat.completions.create(model="toy", messages=messages, n=2)
            assert [c.message.content for c in reply.choices] == [label, label]
            assert reply.choices[0].finish_reason == "stop" and reply.usage.prompt_tokens > 0
            stream = client.chat.completions.create(model="toy", messages=messages, stream=True,
                                                    stream_options={"include_usage": True})
            chunks = list(stream)
            assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == label
            assert chunks[-1].usage.prompt_tokens > 0
        with pytest.raises(openai.BadRequestError, match="calls no tools"):
            client.chat.completions.create(model="toy", messages=[{"role": "user", "content": "x"}], tools=[
                {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}])
        with pytest.raises(openai.BadRequestError, match="is a classifier; call /classify"):
            client.completions.create(model="toy", prompt="abc")
        with pytest.raises(openai.BadRequestError, match="is a classifier"):
            client.embeddings.create(model="toy", input="abc")


def test_classify_errors_name_the_model(live):
    wrong = httpx.post(live.url + "/classify", json={"model": "tiny", "input": "x"}, timeout=30)
    assert wrong.status_code == 400 and wrong.json()["error"]["code"] == "wrong_model_type"
    missing = httpx.post(live.url + "/classify", json={"model": "nope", "input": "x"}, timeout=30)
    assert missing.status_code == 404
    blank = httpx.post(live.url + "/classify", json={"model": "toy", "input": ["a b c", "  "]}, timeout=30)
    assert blank.status_code == 400 and blank.json()["error"]["param"] == "input"
    no_input = httpx.post(live.url + "/classify", json={"model": "toy"}, timeout=30)
    assert no_input.status_code == 400 and "input" in no_input.json()["error"]["message"]


def test_a_classifier_may_not_take_another_models_name(live, toy_classifier, tmp_path):
    with pytest.raises(ConfigError, match="another served model has that name"):
        ServerState(live.state.served, classifiers={"tiny": ServedClassifier("tiny", toy_classifier)})
    with pytest.raises(ConfigError, match="no such folder"):
        ServedClassifier("x", tmp_path / "absent")
