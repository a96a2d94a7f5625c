"""Continuous batching: one worker thread decodes every request's sequences in one running batch.

Requests arrive from the event loop (:meth:`Scheduler.submit`); the worker owns the
model. Its loop, between two decoding steps:

1. runs the **control calls** that change the model (loading or unloading an adapter)
   once nothing running depends on what they change;
2. **admits** waiting requests, first come first served, while the batch has room
   (``max_batch`` sequences) and the prefill stays under ``max_prefill_tokens``: their
   prompts are prefilled together and their key/value rows written into the running
   batch (:class:`~agentladder.models.batch.RunningBatch`);
3. **drops** the sequences of cancelled requests (a client that went away);
4. takes **one step**: every row chooses its next token
   (:func:`~agentladder.serve.sampling.choose`), the stop rules and grammars decide
   which rows are done, finished rows leave the batch, the rest run one forward pass.

Each request hears about its tokens through its ``on_event`` callback, called from
the worker thread (the server hands them to the event loop). Inference never runs
on the event loop, so the server keeps answering while it decodes. An unexpected
error fails the requests in the batch with a 500 and the worker carries on.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from agentladder.models.batch import RunningBatch
from agentladder.models.engine import Engine
from agentladder.models.stops import StopRules
from agentladder.serve.sampling import Sampling, choose, generator_for
from agentladder.serve.structured import Matcher

log = logging.getLogger("agentladder.serve")


@dataclass
class TokenEvent:
    """Choice ``index`` chose ``token``; ``finish`` is ``stop`` or ``length`` on its last token."""

    index: int
    token: int
    logprob: float | None = None
    top: list[tuple[int, float]] | None = None
    finish: str | None = None


@dataclass
class Failure:
    """The request could not be served (the message is for the client)."""

    message: str
    status: int = 500


Event = TokenEvent | Failure


@dataclass
class Generation:
    """One request: a prompt continued by ``n`` sequences with one adapter and one set of settings."""

    prompt: list[int]
    sampling: Sampling
    on_event: Callable[[Event], None]
    n: int = 1
    adapter: str | None = None
    """The peft adapter name, None for the base model."""
    matchers: list[Matcher] | None = None
    """One grammar matcher per sequence, or None."""
    cancelled: bool = False
    id: int = field(default_factory=itertools.count().__next__)

    def cancel(self) -> None:
        """Stop generating (safe from any thread); the sequences leave the batch at the next step."""
        self.cancelled = True


@dataclass
class _Seq:
    gen: Generation
    index: int
    stops: StopRules
    matcher: Matcher | None
    generator: torch.Generator | None
    tokens: list[int] = field(default_factory=list)

    @property
    def key(self) -> tuple[int, int]:
        return (self.gen.id, self.index)


@dataclass
class _Control:
    fn: Callable[[], Any]
    ready: Callable[[], bool]
    future: concurrent.futures.Future


class Scheduler:
    """The worker that decodes every request (see the module docstring).

    ``max_len`` is the model's context: a sequence ends (``length``) before it would pass it.
    """

    def __init__(self, engine: Engine, *, max_len: int, max_batch: int = 32, max_prefill_tokens: int = 8192):
        self.engine = engine
        self.max_len = max_len
        self.max_batch = max_batch
        self.max_prefill_tokens = max_prefill_tokens
        self.batch = RunningBatch(engine, slots=max_batch)
        eos = engine.tokenizer.eos_token_id
        self.eos: int | None = eos if isinstance(eos, int) else None
        self._waiting: deque[Generation] = deque()
        self._seqs: dict[tuple[int, int], _Seq] = {}
        self._controls: list[_Control] = []
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.steps = 0
        """Decoding steps taken (for metrics)."""

    # -- from any thread -------------------------------------------------------------------------------
    def start(self) -> None:
        self.engine.model.eval()
        self._thread = threading.Thread(target=self._run, name="agentladder-scheduler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Finish what is running and waiting, then end the worker."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout)

    def submit(self, gen: Generation) -> None:
        with self._cond:
            self._waiting.append(gen)
            self._cond.notify()

    def call(self, fn: Callable[[], Any], ready: Callable[[], bool] = lambda: True) -> concurrent.futures.Future:
        """Run ``fn`` on the worker between two steps, once ``ready()``; its result as a future."""
        control = _Control(fn, ready, concurrent.futures.Future())
        with self._cond:
            self._controls.append(control)
            self._cond.notify()
        return control.future

    @property
    def alive(self) -> bool:
        """The worker is running."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def running(self) -> int:
        """Sequences in the batch."""
        return len(self._seqs)

    @property
    def waiting(self) -> int:
        """Requests waiting for room in the batch."""
        return len(self._waiting)

    def uses_adapter(self, adapter: str) -> bool:
        """Whether a running or waiting request decodes with ``adapter``."""
        return any(g.adapter == adapter for g in list(self._waiting)) or \
            any(s.gen.adapter == adapter for s in list(self._seqs.values()))

    # -- the worker ------------------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                while not (self._waiting or self._seqs or self._controls or self._stopping):
                    self._cond.wait()
                if self._stopping and not self._waiting and not self._seqs:
                    self._fail_controls("the server is shutting down")
                    return
                controls = [c for c in self._controls if c.ready()]
                self._controls = [c for c in self._controls if c not in controls]
                admit = self._take()
            for control in controls:
                self._control(control)
            try:
                if admit:
                    self._admit(admit)
                self._drop_cancelled()
                if self._seqs:
                    self._step()
            except Exception as err:  # a bug or an out-of-memory: fail the batch, keep serving
                log.exception("decoding failed")
                self._fail_all(f"decoding failed: {type(err).__name__}: {err}")
            if not admit and not self._seqs and self._controls:
                with self._cond:  # controls waiting on something that is not running: check again shortly
                    self._cond.wait(0.05)

    def _take(self) -> list[Generation]:
        """Waiting requests that fit the batch now (first come, first served); cancelled ones are dropped."""
        room, tokens, out = self.max_batch - len(self._seqs), 0, []
        while self._waiting:
            gen = self._waiting[0]
            if gen.cancelled:
                self._waiting.popleft()
                continue
            if gen.n > room or (out and tokens + len(gen.prompt) > self.max_prefill_tokens):
                break
            self._waiting.popleft()
            out.append(gen)
            room -= gen.n
            tokens += len(gen.prompt)
        return out

    def _control(self, control: _Control) -> None:
        try:
            control.future.set_result(control.fn())
        except Exception as err:
            control.future.set_exception(err)

    def _admit(self, gens: list[Generation]) -> None:
        seqs = [[self._new_seq(g, i) for i in range(g.n)] for g in gens]
        try:
            self.batch.add([g.prompt for g in gens], [[s.key for s in group] for group in seqs],
                           [g.adapter for g in gens])
        except Exception as err:
            log.exception("prefill failed")
            for g in gens:
                g.on_event(Failure(f"prefill failed: {type(err).__name__}: {err}"))
            return
        for group in seqs:
            for s in group:
                self._seqs[s.key] = s

    def _new_seq(self, gen: Generation, index: int) -> _Seq:
        stops = StopRules(self.engine.tokenizer, gen.sampling.stop)
        if gen.sampling.ignore_eos and gen.matchers is None:
            stops.eos = set()
        matcher = gen.matchers[index] if gen.matchers is not None else None
        return _Seq(gen, index, stops, matcher, generator_for(gen.sampling, index))

    def _drop_cancelled(self) -> None:
        gone = [k for k, s in self._seqs.items() if s.gen.cancelled]
        if gone:
            self.batch.remove(gone)
            for k in gone:
                del self._seqs[k]

    def _step(self) -> None:
        batch = self.batch
        assert batch.logits is not None and batch.pos is not None
        seqs = [self._seqs[k] for k in batch.keys]  # type: ignore[index]
        choices = choose(batch.logits, [s.gen.sampling for s in seqs], [s.matcher for s in seqs],
                         [s.generator for s in seqs], self.eos)
        positions = batch.pos.tolist()
        finishes = []
        for s, c, pos in zip(seqs, choices, positions, strict=True):
            s.tokens.append(c.token)
            finishes.append(self._finish(s, c.token, pos))
        chosen = {s.key: c.token for s, c in zip(seqs, choices, strict=True)}
        finished = [s.key for s, finish in zip(seqs, finishes, strict=True) if finish is not None]
        if finished:  # out of the batch before their last token is sent: a caller who has it sees them gone
            batch.remove(finished)
            for k in finished:
                del self._seqs[k]
        for s, c, finish in zip(seqs, choices, finishes, strict=True):
            s.gen.on_event(TokenEvent(s.index, c.token, c.logprob, c.top, finish))
        if len(batch):
            batch.step([chosen[k] for k in batch.keys])  # type: ignore[index]
        self.steps += 1

    def _finish(self, s: _Seq, token: int, pos: int) -> str | None:
        """Why sequence ``s`` ends with ``token`` (at position ``pos``), or None."""
        if s.matcher is not None and token != self.eos:
            s.matcher.consume(token)
        if s.stops.done(0, token, s.tokens):
            return "stop"
        if s.matcher is not None and (s.matcher.done or s.matcher.error):
            return "stop"
        if len(s.tokens) >= s.gen.sampling.max_tokens or pos + 1 >= self.max_len:
            return "length"
        return None

    def _fail_all(self, message: str) -> None:
        gens = {s.gen.id: s.gen for s in self._seqs.values()}
        self._seqs.clear()
        self.batch.clear()
        for g in gens.values():
            g.on_event(Failure(message))

    def _fail_controls(self, message: str) -> None:
        for control in self._controls:
            control.future.set_exception(RuntimeError(message))
        self._controls = []


def run_to_end(scheduler: Scheduler, prompts: Sequence[list[int]], sampling: Sampling,
               adapters: Sequence[str | None] | None = None) -> list[list[int]]:
    """Submit ``prompts`` together and wait for their tokens (tests and benchmarks; blocking)."""
    done = [threading.Event() for _ in prompts]
    out: list[list[int]] = [[] for _ in prompts]
    failures: list[str] = []

    def listener(i: int) -> Callable[[Event], None]:
        def on_event(event: Event) -> None:
            if isinstance(event, Failure):
                failures.append(event.message)
                done[i].set()
                return
            out[i].append(event.token)
            if event.finish is not None:
                done[i].set()
        return on_event

    for i, p in enumerate(prompts):
        scheduler.submit(Generation(list(p), sampling, listener(i), adapter=adapters[i] if adapters else None))
    for d in done:
        d.wait()
    if failures:
        raise RuntimeError(failures[0])
    return out


__all__ = ["Event", "Failure", "Generation", "Scheduler", "TokenEvent", "run_to_end"]
