"""The reward-hacking monitor: repetition, the windows, and an RL run it stops on a constructed case."""

import json
import warnings

import pytest

from agentladder.rewards import PythonReward, WeightedEnsemble
from agentladder.train.rl import rl
from agentladder.train.rl_monitor import HackingMonitor, repetition
from tests.train.test_rl import _prompts, lowercase_share


def upper_share(text, target, metadata):
    """The constructed gold score: the opposite of the proxy, so it falls exactly when the proxy is gamed."""
    return 1 - lowercase_share(text, target, metadata)


def test_repetition():
    assert repetition([1, 2, 3, 4, 5]) == 0.0
    assert repetition([1, 2, 3, 1, 2, 3, 1, 2, 3]) == pytest.approx(1 - 3 / 7)
    assert repetition([1, 2]) == 0.0


def test_monitor_fires_only_when_proxy_rises_and_gold_falls():
    m = HackingMonitor(window=3)
    proxy = [0.1, 0.1, 0.1, 0.5, 0.6, 0.7]
    gold = [0.8, 0.8, 0.8, 0.5, 0.4, 0.3]
    verdicts = [m.update(p, g) for p, g in zip(proxy, gold, strict=True)]
    assert verdicts[:5] == [None] * 5 and "proxy reward rose by +0.500" in verdicts[5]
    both_up = HackingMonitor(window=3)
    assert [both_up.update(p, 1 - g) for p, g in zip(proxy, gold, strict=True)] == [None] * 6
    tolerant = HackingMonitor(window=3, tolerance=0.6)  # a 0.5 rise is inside the tolerance
    assert [tolerant.update(p, g) for p, g in zip(proxy, gold, strict=True)] == [None] * 6


def test_an_rl_run_gaming_its_proxy_is_stopped(tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = rl(preset="grpo", model="tiny", data=str(_prompts(tmp_path)), out_dir=str(tmp_path / "run"),
                    group_size=8, batch_size=4, max_new_tokens=8, max_steps=16, learning_rate=3e-3, seed=0,
                    progress=False, tensorboard=False, save_every=100, hacking_window=3, on_hacking="stop",
                    gold_rewards=[{"type": "python", "fn": "tests.train.test_rl_monitor:upper_share"}],
                    reward=WeightedEnsemble([("lower", PythonReward(lowercase_share), 1.0)]))
    fired = [r["step"] for r in result.history if r.get("hacking")]
    assert fired and result.steps == fired[0] < 16, [(r["reward"], r["gold"]) for r in result.history]
    assert all(r["gold"] == pytest.approx(1 - r["reward"], abs=1e-6) for r in result.history)
    assert all(0 <= r["repetition"] <= 1 for r in result.history)
    assert any("may be gaming the learned reward" in str(w.message) for w in caught)
    meta = json.loads((tmp_path / "run" / "agentladder.json").read_text())
    assert meta["stopped"].startswith(f"step {fired[0]}:")
    assert (tmp_path / "run" / "hacking.png").exists() and (tmp_path / "run" / "model.safetensors").exists()


def test_without_gold_nothing_is_watched(tmp_path):
    result = rl(preset="grpo", model="tiny", data=str(_prompts(tmp_path)), out_dir=str(tmp_path / "run"),
                group_size=4, batch_size=2, max_new_tokens=6, max_steps=2, progress=False, tensorboard=False,
                reward=WeightedEnsemble([("lower", PythonReward(lowercase_share), 1.0)]))
    assert "gold" not in result.history[-1] and "repetition" in result.history[-1]
    assert not (tmp_path / "run" / "hacking.png").exists()


def test_monitor_state_round_trips_and_keeps_what_a_comparison_reads():
    m = HackingMonitor(window=2)
    for p, g in [(0.0, 1.0), (0.1, 0.9), (0.2, 0.8), (0.3, 0.7), (0.4, 0.6)]:
        m.update(p, g)
    state = json.loads(json.dumps(m.state()))
    assert state == {"proxy": [0.1, 0.2, 0.3, 0.4], "gold": [0.9, 0.8, 0.7, 0.6]}
    fresh, restored = HackingMonitor(window=2), HackingMonitor(window=2)
    restored.load_state(state)
    assert fresh.update(0.5, 0.5) is None  # a monitor starting afresh has no windows to compare
    assert restored.update(0.5, 0.5) == m.update(0.5, 0.5) is not None


def test_the_monitor_windows_survive_a_resume(tmp_path, monkeypatch):
    """A run killed one step before the monitor fires, resumed from its checkpoint, fires at the same step."""
    from agentladder.train.rl import RLTrainer

    def run(out, **kw):
        return rl(preset="grpo", model="tiny", data=str(_prompts(tmp_path)), out_dir=str(out), group_size=8,
                  batch_size=4, max_new_tokens=8, max_steps=16, learning_rate=3e-3, seed=0, progress=False,
                  tensorboard=False, save_every=1, hacking_window=3, on_hacking="stop",
                  gold_rewards=[{"type": "python", "fn": "tests.train.test_rl_monitor:upper_share"}],
                  reward=WeightedEnsemble([("lower", PythonReward(lowercase_share), 1.0)]), **kw)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full = run(tmp_path / "a")
        fired = [r["step"] for r in full.history if r.get("hacking")][0]
        original = RLTrainer.train_step

        def dies_before_firing(self, step):
            if step == fired - 1:  # 0-based: the step that fires is never taken
                raise KeyboardInterrupt
            return original(self, step)

        monkeypatch.setattr(RLTrainer, "train_step", dies_before_firing)
        with pytest.raises(KeyboardInterrupt):
            run(tmp_path / "b")
        monkeypatch.setattr(RLTrainer, "train_step", original)
        state = json.loads(sorted((tmp_path / "b" / "checkpoints").glob("step-*"))[-1].joinpath("state.json").read_text())
        assert len(state["hacking_monitor"]["proxy"]) == min(6, fired - 1)
        resumed = rl(out_dir=str(tmp_path / "b"), resume=True, progress=False,
                     reward=WeightedEnsemble([("lower", PythonReward(lowercase_share), 1.0)]))
    assert [r["step"] for r in resumed.history if r.get("hacking")] == [fired] and resumed.steps == fired
    assert [r["gold"] for r in resumed.history] == pytest.approx([r["gold"] for r in full.history], abs=1e-6)
