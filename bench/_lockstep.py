"""What the side-by-side benchmarks share: taking steps in turn, and each process's peak memory.

The benchmark scripts run as ``python bench/<name>.py``, so this folder is on ``sys.path``
(also in their spawned children) and they import this module as ``_lockstep``.
"""

from __future__ import annotations

import resource


class Turns:
    """``players`` processes take steps in turn: process ``i`` takes its ``k``-th step at turn ``players k + i``.

    With one player a process never waits (the frameworks then run one after the other).
    """

    def __init__(self, turn, cond, index: int, players: int = 2):
        self.turn, self.cond, self.index, self.players, self.k = turn, cond, index, players, 0

    def wait(self) -> None:
        with self.cond:
            if not self.cond.wait_for(lambda: self.turn.value == self.players * self.k + self.index, timeout=3600):
                raise TimeoutError("the other framework stopped taking turns")

    def done(self) -> None:
        with self.cond:
            self.turn.value += 1
            self.k += 1
            self.cond.notify_all()


def pace_train_steps(trainer_class, turns: Turns) -> list[float]:
    """Make every ``trainer_class.train_step`` wait for its turn; returns the list its step times go to.

    A step's time is its own wall time, not the wait for its turn.
    """
    import time

    times: list[float] = []
    original = trainer_class.train_step

    def paced(self, step):
        turns.wait()
        t0 = time.perf_counter()
        try:
            return original(self, step)
        finally:
            times.append(time.perf_counter() - t0)
            turns.done()

    trainer_class.train_step = paced
    return times


def peak_memory() -> dict:
    """This process's peak RSS in MiB (``ru_maxrss``) and, on a GPU, its peak allocated memory."""
    import torch

    out = {"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if torch.cuda.is_available():
        out["peak_gpu_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return out
