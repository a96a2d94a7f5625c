"""Agent RL on a tiny model: episodes of real agents, exact ids and log-probs, masking, failures, skipped
groups, resume, the entry point."""

import asyncio
import copy
import json

import pytest
import torch

from agentladder.agents import Agent, Runtime, tool
from agentladder.agents.export import export_traces
from agentladder.data.schema import Message, ToolCall
from agentladder.errors import ConfigError
from agentladder.models.engine import SamplingParams
from agentladder.models.providers import ScriptedProvider
from agentladder.models.providers.policy import (
    EpisodeRecorder,
    PolicyProvider,
    recording,
    sample_each,
)
from agentladder.models.rollout import LocalRollout
from agentladder.models.tiny import tiny_model
from agentladder.train import rl
from agentladder.train.agent_episodes import Episode, episodes_to_sft, load_tasks, read_episodes
from agentladder.train.agent_rl import AGENT_MICRO_BATCH, AgentRLTrainer
from agentladder.train.rl import RLTrainer
from agentladder.train.rl_config import RLConfig
from agentladder.train.rl_rollout import PromptRow

LETTERS = "abcdefghijklmnopqrstuvwxyz "


@tool
def lookup(item: str) -> str:
    """Look an item up.

    Args:
        item: what to look up
    """
    return f"stock of {item}: 42 units"


def _other(runtime):
    """A fixed agent on another provider: it calls a real tool, then answers with what it read."""
    script = [ToolCall(id="c1", name="lookup", arguments={"item": "pens"}), "pens: 42 units in stock"]
    return Agent(ScriptedProvider(script), tools=[lookup], name="clerk")


def build_team(policy, runtime=None):
    """Three agents: a scripted clerk with a tool, the trained writer (two calls in one session, with memory),
    and a critic on the same policy under another name (recorded, never trained)."""
    writer = Agent(policy.named("writer"), name="writer", memory=True, max_new_tokens=6)
    critic = Agent(policy.named("critic"), name="critic", max_new_tokens=4)

    async def team(task):
        rt = runtime or Runtime(":memory:")
        clerk = await _other(rt).arun(task, runtime=rt, session="s")
        first = await writer.arun(f"notes: {clerk.output}", runtime=rt, session="s")
        second = await writer.arun("again, shorter", runtime=rt, session="s")
        await critic.arun(f"judge: {first.output}", runtime=rt, session="s")
        return second.output

    return team


def lower_share(row, episode):
    text = episode.output or ""
    return sum(ch in LETTERS for ch in text) / max(1, len(text))


def _config(tmp_path, **kw):
    settings = dict(model="tiny", data="unused", out_dir=str(tmp_path / "run"), group_size=4, batch_size=2,
                    max_new_tokens=8, max_steps=2, learning_rate=3e-3, seed=0, progress=False, tensorboard=False,
                    save_every=1, share_prompt=False, train_agents=["writer"])
    settings.update(kw)
    return RLConfig(**settings)


TASKS = [{"id": f"t{i}", "input": f"count item {i}"} for i in range(4)]


def _trainer(tmp_path, tok, model=None, build=build_team, reward=lower_share, **kw):
    model = model if model is not None else tiny_model(tokenizer=tok)
    return AgentRLTrainer(model, tok, load_tasks(TASKS), build, reward, _config(tmp_path, **kw),
                          runtime=Runtime(":memory:"))


@pytest.mark.parametrize("share_prompt", [False, True])
def test_sampled_ids_are_what_training_sees_and_log_probs_match(tmp_path, tok, share_prompt):
    trainer = _trainer(tmp_path, tok, share_prompt=share_prompt)
    assert trainer.shared == share_prompt  # True: calls with one prompt share one pass (the one-prompt-N-answers kernel)
    groups, _, _ = trainer._episodes(0)
    assert groups, "the toy reward varies within a group"
    episode = groups[0].episodes[0]
    assert [c.agent for c in episode.calls] == ["writer", "writer", "critic"]
    # the second writer call's prompt holds the first reply and the clerk's tool result, as inputs
    second = tok.decode(episode.calls[1].prompt_ids)
    assert "pens: 42 units in stock" in second and episode.calls[0].text.strip() in second
    batch = trainer._episode_batch(groups)
    writer_calls = [c for g in groups for e in g.episodes for c in e.calls if c.agent == "writer"]
    assert len(batch.samples) == len(writer_calls)
    for s, c in zip(batch.samples, writer_calls, strict=True):
        assert s.prompt == c.prompt_ids and s.completion == c.token_ids and all(s.mask)
    recomputed = trainer._no_grad_pass(trainer.model, batch)
    mask = batch.mask.bool()
    assert torch.allclose(recomputed[mask], batch.old_logps[mask], atol=1e-5)


def test_only_the_trained_agents_sampled_tokens_are_scored(tmp_path, tok):
    trainer = _trainer(tmp_path, tok)
    groups, _, _ = trainer._episodes(0)
    batch = trainer._episode_batch(groups)
    collated = trainer.collate_samples(batch.samples)
    ids, mask = collated["input_ids"], collated["mask"]
    # the scored positions are exactly the writer's sampled tokens, row by row
    for i, s in enumerate(batch.samples):
        row = ids[i].tolist()
        scored = [row[len(s.prompt) + j] for j in range(len(s.completion)) if mask[i, j]]
        assert scored == s.completion
    tool_ids = tok("stock of pens: 42 units", add_special_tokens=False)["input_ids"]
    critic = {tuple(c.token_ids) for g in groups for e in g.episodes for c in e.calls if c.agent == "critic"}
    for s in batch.samples:
        text = tok.decode(s.completion)
        assert "42 units" not in text
        assert tuple(s.completion) not in critic or not s.completion
        assert s.completion[: len(tool_ids)] != tool_ids
    # a backward pass puts gradient only through the scored tokens' log-probs: the loss equals the
    # loss of a batch whose prompts (tool results, other agents' turns) are cut to nothing but their ids
    loss = trainer.loss(trainer.model, collated).loss_sum
    assert torch.isfinite(loss)


def failing_team(policy):
    writer = Agent(policy.named("writer"), name="writer", max_new_tokens=6)

    async def team(task):
        rt = Runtime(":memory:")
        out = (await writer.arun(task, runtime=rt)).output
        if task.endswith("1"):
            raise RuntimeError("the tool service is down")
        if task.endswith("2"):
            await writer.arun("more", runtime=rt)  # a second call: past episode_max_calls=1
        if task.endswith("3"):
            await asyncio.sleep(5)
        return out

    return team


def test_failing_episodes_are_recorded_and_do_not_stop_the_step(tmp_path, tok):
    trainer = _trainer(tmp_path, tok, build=failing_team, batch_size=4, episode_max_calls=1, episode_timeout=1.0,
                       failed_episode_reward=-1.0, max_steps=1)
    metrics = trainer.train_step(0)
    assert metrics["episodes_error"] == pytest.approx(0.25)
    assert metrics["episodes_calls"] == pytest.approx(0.25)
    assert metrics["episodes_timeout"] == pytest.approx(0.25)
    logged = read_episodes(tmp_path / "run" / "episodes.jsonl")
    by_task = {}
    for _, e in logged:
        by_task.setdefault(e.task_id, []).append(e)
    assert {e.status for e in by_task["t1"]} == {"error"} and "tool service" in by_task["t1"][0].error
    assert {e.status for e in by_task["t2"]} == {"calls"}
    assert {e.status for e in by_task["t3"]} == {"timeout"}
    assert all(e.reward == -1.0 for t in ("t1", "t2", "t3") for e in by_task[t])
    assert {e.status for e in by_task["t0"]} == {"ok"}
    assert "grad_norm" in metrics  # the step trained on the informative group


def half_constant(row, episode):
    return 0.5 if row["id"] in ("t0", "t2") else lower_share(row, episode)


def test_zero_variance_groups_are_skipped_and_counted(tmp_path, tok):
    trainer = _trainer(tmp_path, tok, reward=half_constant, batch_size=4, max_steps=1)
    metrics = trainer.train_step(0)
    assert metrics["groups_skipped"] == 2 and metrics["zero_variance_groups"] == pytest.approx(0.5)
    logged = read_episodes(tmp_path / "run" / "episodes.jsonl")
    kept = {e.task_id for where, e in logged if where["kept"]}
    assert kept == {"t1", "t3"}


def test_a_steps_calls_are_trained_in_micro_batches_with_the_gradient_of_one_pass(tmp_path, tok):
    # Unset, micro_batch_size bounds the samples per forward pass (a step's calls carry whole conversations).
    torch.manual_seed(0)
    start = tiny_model(tokenizer=tok)
    split = _trainer(tmp_path / "split", tok, model=copy.deepcopy(start))
    whole = _trainer(tmp_path / "whole", tok, model=copy.deepcopy(start), micro_batch_size=1000)
    assert split.rl.micro_batch_size == AGENT_MICRO_BATCH and whole.rl.micro_batch_size == 1000
    groups, _, _ = split._episodes(0)
    samples = split._episode_batch(groups).samples
    assert len(samples) > AGENT_MICRO_BATCH
    passes, grads = {}, {}
    for name, trainer in (("split", split), ("whole", whole)):
        real_collate, real_step = trainer.collate_samples, trainer.optimizer.step

        def collate(chunk, real=real_collate, name=name):  # one collated micro-batch per forward pass
            passes[name] = passes.get(name, 0) + 1
            return real(chunk)

        def step(real=real_step, name=name, model=trainer.model):  # the gradient the update applies
            grads[name] = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
            real()

        trainer.collate_samples, trainer.optimizer.step = collate, step
        trainer._updates(samples, 0)
    assert passes == {"split": -(-len(samples) // AGENT_MICRO_BATCH), "whole": 1}
    assert grads["split"].keys() == grads["whole"].keys()
    assert any(g.abs().sum() > 0 for g in grads["whole"].values())
    for name, g in grads["whole"].items():
        torch.testing.assert_close(grads["split"][name], g, atol=1e-6, rtol=1e-4, msg=name)


def _with_repeats(groups):
    """Each group's first episode repeated in places 1 and 2 (identical calls), each place keeping its own reward:
    the repeats' advantages then differ, in size and maybe in sign, from the first episode's."""
    for g in groups:
        for j in (1, 2):
            twin = copy.deepcopy(g.episodes[0])
            twin.reward, twin.index = g.episodes[j].reward, g.episodes[j].index
            g.episodes[j] = twin
    return groups


@pytest.mark.parametrize("settings", [dict(loss_agg="seq_sum_norm", advantage="dr_grpo"),
                                      dict(loss_agg="token_mean", kl_coef=0.1, ppo_epochs=2, learning_rate=0.05),
                                      dict(loss_agg="seq_mean_token_mean")])
def test_identical_calls_are_trained_once_with_the_gradient_of_each(tmp_path, tok, settings):
    # A group's episodes often repeat each other's calls (the same tool call from the same prompt): one sample
    # per (prompt, sampled ids, sign of the advantage), weighted by its count, gives every update the same
    # gradient and the same metrics as one sample per call; KL to the reference and a second epoch (ratios
    # away from 1, clipping) included.
    torch.manual_seed(0)
    start = tiny_model(tokenizer=tok)
    merged = _trainer(tmp_path / "merged", tok, model=copy.deepcopy(start), batch_size=4, **settings)
    apart = _trainer(tmp_path / "apart", tok, model=copy.deepcopy(start), batch_size=4,
                     merge_identical_calls=False, **settings)
    assert merged.rl.merge_identical_calls
    groups = _with_repeats(merged._episodes(0)[0])
    batches = {"merged": merged._episode_batch(groups), "apart": apart._episode_batch(groups)}
    calls = sum(c.agent == "writer" for g in groups for e in g.episodes for c in e.calls)
    assert len(batches["apart"].samples) == calls
    assert len(batches["merged"].samples) < calls
    assert sum(s.weight for s in batches["merged"].samples) == calls
    for s in batches["merged"].samples:  # a merged sample stands for calls whose advantages share its sign
        twins = [a for a in batches["apart"].samples if (a.prompt, a.completion) == (s.prompt, s.completion)
                 and (a.advantages[0] > 0) == (s.advantages[0] > 0) and (a.advantages[0] < 0) == (s.advantages[0] < 0)]
        assert len(twins) == s.weight
        assert s.advantages[0] == pytest.approx(sum(a.advantages[0] for a in twins) / len(twins), abs=1e-6)
    grads, metrics = {}, {}
    for name, trainer in (("merged", merged), ("apart", apart)):
        real_step = trainer.optimizer.step

        def step(real=real_step, name=name, model=trainer.model):
            grads.setdefault(name, []).append(
                {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
            real()

        trainer.optimizer.step = step
        batch = batches[name]
        if trainer.rl.kl_coef > 0:
            ref = trainer._reference_logps(batch)
            batch.set_per_token("ref_logps", ref)
        metrics[name] = [u.__dict__ for u in trainer._updates(batch.samples, 0)]
    assert len(grads["merged"]) == len(grads["apart"]) == settings.get("ppo_epochs", 1)
    assert any(g.abs().sum() > 0 for g in grads["apart"][0].values())
    for upd_m, upd_a in zip(grads["merged"], grads["apart"], strict=True):
        for n, g in upd_a.items():
            torch.testing.assert_close(upd_m[n], g, atol=2e-5, rtol=1e-4, msg=n)
    for m, a in zip(metrics["merged"], metrics["apart"], strict=True):
        assert m.pop("n_tokens") < a.pop("n_tokens")  # what went through the model: the saving
        assert m.pop("n_trained_tokens") < a.pop("n_trained_tokens")
        m.update(m.pop("sums").__dict__)
        a.update(a.pop("sums").__dict__)
        assert m.keys() == a.keys()
        for key, value in a.items():
            assert m[key] == pytest.approx(value, rel=1e-4, abs=1e-6), key
    if settings.get("ppo_epochs", 1) > 1:  # the second epoch's ratios left 1 far enough to be clipped
        assert metrics["apart"][-1]["clip_low"] + metrics["apart"][-1]["clip_high"] > 0


def test_resume_mid_run_reproduces_the_same_episodes(tmp_path, tok):
    straight = _trainer(tmp_path / "a", tok, max_steps=3)
    straight.run(resume=False)
    first = _trainer(tmp_path / "b", tok, max_steps=3)
    first.run(resume=False, stop_after=1)
    resumed = _trainer(tmp_path / "b", tok, max_steps=3)
    resumed.run(resume=True)

    def episodes(folder):
        return [(w["step"], e.task_id, e.index, [c.token_ids for c in e.calls], e.reward)
                for w, e in read_episodes(folder / "run" / "episodes.jsonl")]

    a, b = episodes(tmp_path / "a"), episodes(tmp_path / "b")
    assert a == b and {s for s, *_ in a} == {1, 2, 3}


def test_policy_outside_an_episode_and_budget_in_tokens(tok):
    model = tiny_model(tokenizer=tok)
    policy = PolicyProvider(LocalRollout(model, tok), tok, SamplingParams(max_new_tokens=5))
    agent = Agent(policy, name="a", max_new_tokens=5)
    recorder = EpisodeRecorder(torch.Generator().manual_seed(0), max_tokens=3)
    with recording(recorder):
        agent.run("hi", runtime=Runtime(":memory:"))
    assert len(recorder.calls) == 1 and len(recorder.calls[0].token_ids) <= 3
    assert recorder.calls[0].prompt_ids[-3:] == tok(tok.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True),
        add_special_tokens=False)["input_ids"][-3:]


def _recording_generate(rollout):
    """Record ``rollout.generate``'s calls as ``(prompts, n)`` in the list returned, with the unwrapped method."""
    asked, original = [], rollout.generate

    def recording_generate(prompts, n, params, generator=None):
        asked.append(([list(p) for p in prompts], n))
        return original(prompts, n, params, generator)

    rollout.generate = recording_generate
    return asked, original


def test_identical_calls_of_a_round_are_prefilled_once_and_sampled_as_one_group(tok):
    """A round's calls with the same prompt ids go to the rollout as one prompt with n copies (one prefill);
    each call gets its own sequence of that group, in order, exactly as the rollout sampled it."""
    rollout = LocalRollout(tiny_model(tokenizer=tok), tok)
    a, b, c = ([5, 6, 7, 8], [5, 6, 9], [11, 12, 13, 14, 15])
    prompts = [a, b, a, c, a, b]
    params = SamplingParams(max_new_tokens=6)
    asked, original = _recording_generate(rollout)
    got = sample_each(rollout, prompts, params, torch.Generator().manual_seed(3))
    assert asked == [([a, b, c], [3, 2, 1])]  # one call, one prompt per distinct call with its count
    ga, gb, gc = original([a, b, c], [3, 2, 1], params, torch.Generator().manual_seed(3))
    assert [x.token_ids for x in got] == [y.token_ids for y in (ga[0], gb[0], ga[1], gc[0], ga[2], gb[1])]
    assert [x.logprobs for x in got] == [y.logprobs for y in (ga[0], gb[0], ga[1], gc[0], ga[2], gb[1])]
    assert len({tuple(x.token_ids) for x in (got[0], got[2], got[4])}) > 1  # three samples, not one copied
    asked.clear()
    sample_each(rollout, [a, b, c, a, b, c], params)
    assert asked == [([a, b, c], 2)]  # equal counts: one number
    asked.clear()
    sample_each(rollout, [a, b, c], params)
    assert asked == [([a, b, c], 1)]  # all distinct: the one call it always was


def test_the_entry_point_trains_and_writes_the_run(tmp_path, tok):
    result = rl(agent=build_team, tasks=TASKS, reward=lower_share, preset="dapo", model="tiny", group_size=4,
                batch_size=2, max_new_tokens=8, max_steps=2, learning_rate=3e-3, out_dir=str(tmp_path / "r"),
                progress=False, tensorboard=False, train_agents=["writer"])
    out = tmp_path / "r"
    assert result.steps == 2
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert {"reward", "groups_skipped", "episode_calls", "episodes_failed"} <= set(lines[-1])
    assert (out / "reward.png").exists() and (out / "model.safetensors").exists()
    meta = json.loads((out / "agentladder.json").read_text())
    assert meta["method"] == "agent-dapo" and meta["train_agents"] == ["writer"]
    _, episode = read_episodes(out / "episodes.jsonl")[0]
    convs = episode.conversations(["writer"])
    assert len(convs) == 2 and convs[0].messages[-1].role == "assistant"
    assert Episode.from_json(episode.to_json()).to_json() == episode.to_json()


def test_reward_rises_on_a_toy_agent_task(tmp_path, tok):
    trainer = _trainer(tmp_path, tok, max_steps=10, batch_size=2, group_size=6, train_agents=None,
                       learning_rate=1e-2, build=lambda p: Agent(p, name="writer", max_new_tokens=8))
    result = trainer.run(resume=False)
    rewards = [r["reward"] for r in result.history]
    assert sum(rewards[-3:]) / 3 > sum(rewards[:3]) / 3 + 0.1, rewards


def test_episodes_are_traces_and_traces_are_training_data(tmp_path, tok):
    """The runtime stores every episode as a trajectory with its reward; both it and episodes.jsonl give SFT rows."""
    runtime = Runtime(":memory:")
    trainer = AgentRLTrainer(tiny_model(tokenizer=tok), tok, load_tasks(TASKS[:2]),
                             lambda p: Agent(p, name="writer", max_new_tokens=6), lower_share,
                             _config(tmp_path, max_steps=1, train_agents=None), runtime=runtime)
    trainer.train_step(0)
    stored = runtime.store.trajectories(agent="writer")
    assert len(stored) == 2 * 4
    assert all("reward" in r["conversation"].rewards for r in stored)
    best = max(r["conversation"].rewards["reward"] for r in stored)
    counts = export_traces(runtime.store, "sft", tmp_path / "sft.jsonl", where=f"reward >= {best}")
    rows = [json.loads(x) for x in (tmp_path / "sft.jsonl").read_text().splitlines()]
    assert counts["written"] == len(rows) >= 1
    from_log = episodes_to_sft(tmp_path / "run" / "episodes.jsonl", min_reward=best)
    assert len(from_log) == len(rows)
    assert {r.messages[-1].content for r in from_log} == {r["messages"][-1]["content"] for r in rows}


def test_turn_rewards_move_each_calls_advantage_around_the_episodes(tmp_path, tok):
    """Two calls per episode; a turn reward on the first call only: its tokens get the episode's advantage plus
    the weighted difference from the group's mean turn reward, the second call's the episode's minus it."""
    trainer = _trainer(tmp_path, tok, turn_reward_weight=0.5, group_size=2)
    trainer.turn_reward = lambda call, episode: 1.0 if call.messages[-1].content.startswith("notes") else 0.0
    groups, _, _ = trainer._episodes(0)
    batch = trainer._episode_batch(groups)
    advs = trainer._episode_advantages(groups)
    writer = [(g_i, e_i, c) for g_i, g in enumerate(groups) for e_i, e in enumerate(g.episodes)
              for c in e.calls if c.agent == "writer"]
    assert len(writer) == len(batch.samples)
    critic_turns = 1 / 3  # per episode: writer 1.0, writer 0.0, critic 0.0 -> group mean 1/3
    for s, (g_i, e_i, c) in zip(batch.samples, writer, strict=True):
        turn = 1.0 if c.messages[-1].content.startswith("notes") else 0.0
        assert s.advantages[0] == pytest.approx(advs[g_i][e_i] + 0.5 * (turn - critic_turns), abs=1e-6)


def test_an_episode_past_its_token_budget_fails_as_tokens(tmp_path, tok):
    trainer = _trainer(tmp_path, tok, episode_max_tokens=2, max_steps=1)
    groups, _, extra = trainer._episodes(0)
    assert extra["episodes_tokens"] == 1.0  # the writer's first call takes both tokens; its second has none
    logged = read_episodes(tmp_path / "run" / "episodes.jsonl")
    assert all(e.status == "tokens" and e.sampled_tokens <= 2 and len(e.calls) == 1 for _, e in logged)


def test_stratified_tasks_give_every_step_the_files_mix(tmp_path, tok):
    kinds = ["a", "a", "a", "a", "b", "b", "c", "c"] * 3  # 12 a, 6 b, 6 c: a step of 4 holds 2 a, 1 b, 1 c
    tasks = [{"id": f"s{i}", "input": f"count item {i}", "meta": {"kind": k}} for i, k in enumerate(kinds)]
    config = _config(tmp_path, batch_size=4, stratify_by="meta.kind")
    trainer = AgentRLTrainer(tiny_model(tokenizer=tok), tok, load_tasks(tasks), build_team, lower_share, config,
                             runtime=Runtime(":memory:"))
    steps = [[t.row["meta"]["kind"] for mb in trainer.micro_batches(k) for t in mb] for k in range(12)]
    assert all(sorted(kinds_of_step) == ["a", "a", "b", "c"] for kinds_of_step in steps)
    assert len({t.id for k in range(6) for mb in trainer.micro_batches(k) for t in mb}) == 24  # an epoch: each once
    with pytest.raises(ConfigError, match=r"stratify_by: task s0 has no field 'meta.kin'"):
        AgentRLTrainer(tiny_model(tokenizer=tok), tok, load_tasks(tasks), build_team, lower_share,
                       _config(tmp_path, stratify_by="meta.kin"), runtime=Runtime(":memory:"))


def test_prompt_rl_refuses_stratify_by(tmp_path, tok):
    prompts = [PromptRow("p0", [Message(role="user", content="hi")], tok("hi")["input_ids"])]
    with pytest.raises(ConfigError, match="stratify_by: only agent RL"):
        RLTrainer(tiny_model(tokenizer=tok), tok, prompts, None, _config(tmp_path, stratify_by="kind"))


def test_bad_task_files_name_the_line(tmp_path):
    from agentladder.errors import DataError

    path = tmp_path / "tasks.jsonl"
    path.write_text('{"id": "a", "input": "x"}\n[1, 2]\n')
    with pytest.raises(DataError, match="tasks.jsonl:2"):
        load_tasks(path)
    path.write_text('{"id": "a"}\n{oops\n')
    with pytest.raises(DataError, match="tasks.jsonl:2"):
        load_tasks(path)
    path.write_text('{"id": "a", "input": "one\u2028two\u0085three"}\r\n{"id": "b"}\n\n[3]\n', encoding="utf-8")
    with pytest.raises(DataError, match="tasks.jsonl:4"):  # a raw U+2028 or NEL inside a string ends no line
        load_tasks(path)
    path.write_text('{"id": "a", "input": "one\u2028two\u0085three"}\r\n{"id": "b"}\n', encoding="utf-8")
    assert [(r.id, r.input) for r in load_tasks(path)] == [("a", "one\u2028two\u0085three"), ("b", {"id": "b"})]
    rows = load_tasks([{"prescription": "x"}])
    assert rows[0].id == "task-1" and rows[0].input == {"prescription": "x"}


def test_reward_objects_score_the_final_output_and_failures_as_configured():
    from agentladder.rewards import PythonReward, WeightedEnsemble
    from agentladder.train.agent_episodes import TaskRow, score_episodes

    def exact(text, target, metadata):
        return float(text == target)

    task = TaskRow("t", "say yes", {"id": "t", "input": "say yes", "target": "yes"})
    episodes = [Episode("t", 0, 0, output="yes"), Episode("t", 1, 1, output="no"),
                Episode("t", 2, 2, status="error", error="boom")]
    score_episodes(WeightedEnsemble([("exact", PythonReward(exact), 1.0)]), task, episodes, failed_reward=-1.0)
    assert [e.reward for e in episodes] == [1.0, 0.0, -1.0]
    score_episodes(lambda row, e: 0.5 if e.output is None else 1.0, task, episodes, failed_reward=None)
    assert [e.reward for e in episodes] == [1.0, 1.0, 0.5]  # None: the failed run is scored like any other


def test_a_graph_with_a_loop_is_an_episode(tmp_path, tok):
    """A Graph (draft, then a scripted critic, back to the draft once) runs as an episode: two trained draft calls,
    the critic's turn only in the second draft's prompt."""
    from agentladder.agents import END, Graph

    def build(policy):
        draft = Agent(policy, name="draft", max_new_tokens=5)
        critic = Agent(ScriptedProvider(["again: more detail", "fine"]), name="critic")
        return (Graph("draft-critic", max_steps=6).node("draft", draft).node("critic", critic)
                .edge("draft", "critic")
                .branch("critic", lambda s: "done" if s["critic"] == "fine" else "again",
                        {"again": "draft", "done": END}))

    trainer = AgentRLTrainer(tiny_model(tokenizer=tok), tok, load_tasks([{"id": "g", "input": {"topic": "pens"}}]),
                             build, lower_share, _config(tmp_path, batch_size=1, group_size=2, train_agents=["draft"]),
                             runtime=Runtime(":memory:"))
    group = trainer._groups(load_tasks([{"id": "g", "input": {"topic": "pens"}}]), 0, 1)[0]
    for e in group.episodes:
        assert e.status == "ok", e.error
        assert [c.agent for c in e.calls] == ["draft", "draft"]
        assert "again: more detail" in tok.decode(e.calls[1].prompt_ids)
        assert "again: more detail" not in tok.decode(e.calls[0].prompt_ids)


def _concurrent_step(tmp_path, tok, **kw):
    """One step's episodes with concurrent decoding: the sizes of the batches decoded, and the episodes logged.

    Every sampled id is checked against the training forward on the way (log-probs to 1e-5)."""
    trainer = _trainer(tmp_path, tok, concurrent_episodes=True, max_steps=1, **kw)
    asked, _ = _recording_generate(trainer.rollout)
    groups, _, _ = trainer._episodes(0)
    assert groups, "the toy reward varies within a group"
    batch = trainer._episode_batch(groups)
    recomputed = trainer._no_grad_pass(trainer.model, batch)
    mask = batch.mask.bool()
    assert torch.allclose(recomputed[mask], batch.old_logps[mask], atol=1e-5)
    # sequences decoded (identical prompts come as one, with their count)
    sizes = [len(prompts) * n if isinstance(n, int) else sum(n) for prompts, n in asked]
    return sizes, [e for _, e in read_episodes(tmp_path / "run" / "episodes.jsonl")]


def _calls(episodes):
    return [(e.task_id, e.index, [c.token_ids for c in e.calls]) for e in episodes]


def test_concurrent_episodes_are_decoded_together_exactly_and_repeat_with_the_seed(tmp_path, tok):
    (sizes, first), (sizes_again, again) = (_concurrent_step(tmp_path / name, tok) for name in "ab")
    assert max(sizes) == max(sizes_again) == 4  # the group's four writers (and then critics) decoded as one batch
    assert _calls(first) == _calls(again)
    assert all(len(calls) == 3 for _, _, calls in _calls(first))


def test_concurrent_groups_decode_every_group_of_a_round_together_exactly_and_repeat(tmp_path, tok):
    (sizes, first), (sizes_again, again) = (_concurrent_step(tmp_path / name, tok, concurrent_groups=True)
                                            for name in "ab")
    assert max(sizes) == max(sizes_again) == 8  # both groups' four writers decoded as one batch
    tasks = list(dict.fromkeys(e.task_id for e in first))  # the step's two tasks, as logged
    assert len(tasks) == 2
    assert [(e.task_id, e.index) for e in first] == [(t, j) for t in tasks for j in range(4)]
    assert _calls(first) == _calls(again)
