"""The worker without HTTP: greedy answers token for token the engine's, whoever shares the batch."""

import threading

from agentladder.data import Message
from agentladder.models.engine import SamplingParams
from agentladder.serve import Served
from agentladder.serve.sampling import Sampling
from agentladder.serve.scheduler import Event, Failure, Generation, Scheduler, run_to_end
from tests.serve.conftest import make_adapter


def test_concurrent_greedy_answers_equal_engine_generate(model, tok, tmp_path):
    served = Served("tiny", model=model, tokenizer=tok)
    served.attach("alpha", make_adapter(tmp_path / "alpha", 1))
    engine = served.engine
    texts = ["hi", "a longer question with more words", "ok", "what is the dose?", "x" * 40]
    prompts = [engine.encode([Message(role="user", content=t)]) for t in texts]
    adapters = [None, "s1", "s1", None, "s1"]
    want = [engine.generate([p], SamplingParams(max_new_tokens=12, temperature=0), adapters=[a])[0][0].token_ids
            for p, a in zip(prompts, adapters, strict=True)]
    scheduler = Scheduler(engine, max_len=served.max_len, max_batch=3)  # room for three: the others wait and join
    scheduler.start()
    try:
        got = run_to_end(scheduler, prompts, Sampling(max_tokens=12, temperature=0), adapters)
    finally:
        scheduler.stop()
    assert got == want
    assert scheduler.steps < sum(len(w) for w in want)
    assert not scheduler.alive


def test_a_sequence_has_left_the_batch_when_its_last_token_is_sent(model, tok):
    """Whoever holds a finished answer (an HTTP client reading /health next) no longer sees it running."""
    served = Served("tiny", model=model, tokenizer=tok)
    engine = served.engine
    prompt = engine.encode([Message(role="user", content="hi")])
    scheduler = Scheduler(engine, max_len=served.max_len, max_batch=4)
    seen: dict[str, int] = {}
    done = threading.Event()

    def listener(name: str):
        def on_event(event: Event) -> None:
            if isinstance(event, Failure) or event.finish is not None:
                seen[name] = scheduler.running
                if len(seen) == 2:
                    done.set()
        return on_event

    scheduler.start()
    try:
        for name, tokens in (("long", 8), ("short", 2)):
            sampling = Sampling(max_tokens=tokens, temperature=0, ignore_eos=True)
            scheduler.submit(Generation(list(prompt), sampling, listener(name)))
        assert done.wait(60)
    finally:
        scheduler.stop()
    assert seen == {"short": 1, "long": 0}
