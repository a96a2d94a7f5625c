"""Fresh data for every rung: no rung trains on a prompt an earlier rung drew or a held-out split holds.

Checked on the files the rungs actually wrote (their training rows), not on the climb's own bookkeeping.
"""

import json
from collections import Counter
from pathlib import Path

import pytest

from agentladder.evals import ScriptedProvider
from agentladder.ladder import climb, parse_ladder
from agentladder.ladder.fresh import file_inputs, row_input, rung_seed
from agentladder.ladder.rungs import RungContext, rl_prompts, sft_data
from agentladder.tasks import get_task
from agentladder.tasks.make import fresh_samples
from agentladder.tasks.task import input_key

TASK = get_task("medication-directions")


def test_a_seeded_stream_repeats_its_first_rows_so_fresh_rows_skip_what_was_used():
    # The trap: any size of the same seed starts with the same rows.
    assert TASK.make("train", 60, seed=0)[:25] == TASK.make("train", 25, seed=0)
    used = {input_key(s.input) for s in TASK.make("train", 25, seed=0)}
    fresh = fresh_samples(TASK, "train", 40, seed=0, exclude=used)
    assert len(fresh) == 40 and not {input_key(s.input) for s in fresh} & used
    assert fresh == fresh_samples(TASK, "train", 40, seed=0, exclude=used)  # still reproducible
    assert rung_seed(0, "sft") != rung_seed(0, "dpo") and rung_seed(0, "sft") == rung_seed(0, "sft")


def test_row_inputs_of_every_kind_of_row():
    assert row_input({"id": "1", "text": "Amoxicillin  500 MG", "target": {}}) == "amoxicillin 500 mg"
    conv = {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "A b"},
                         {"role": "assistant", "content": "{}"}]}
    assert row_input(conv) == "a b"
    assert row_input({"prompt": [{"role": "user", "content": "X"}], "chosen": [], "rejected": []}) == "x"
    assert row_input({"note": "no input here"}) is None and row_input(["not", "a", "row"]) is None


def _rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_each_rung_trains_on_prompts_no_earlier_rung_or_split_used(tmp_path):
    """Every rung is given the *same* data seed, so without the exclusion they would all draw the same rows."""
    same = {"seed": 0}
    config = parse_ladder({
        "name": "fresh", "task": "medication-directions", "base_model": "tiny", "out_dir": str(tmp_path / "c"),
        "eval": {"rows": 6, "validation_rows": 6, "shifted_rows": 4, "batch_size": 8, "max_new_tokens": 4},
        "gate": {"target": 0.99, "min_gain": -1.0},
        "rungs": [
            {"name": "baseline", "kind": "baseline", "shots": 1},
            {"name": "sft", "kind": "sft", "instructions": "brief-lower",
             "data": {"source": "generate", "rows": 12, **same},
             "train": {"lora": True, "max_steps": 1, "batch_size": 2, "max_length": 4096, "tensorboard": False}},
            {"name": "dpo", "kind": "dpo", "instructions": "brief-lower",
             "data": {"source": "pairs", "rows": 8, "k": 1, "greedy": True, "with_target": True, "batch_size": 8,
                      "max_new_tokens": 4, **same},
             "train": {"loss": "dpo_nll", "lora": True, "max_steps": 1, "batch_size": 2, "max_length": 4096,
                       "tensorboard": False}},
            {"name": "rl", "kind": "rl", "instructions": "brief-lower",
             "data": {"source": "generate", "rows": 6, **same},
             "train": {"preset": "dapo", "lora": True, "group_size": 2, "batch_size": 2, "max_steps": 1,
                       "max_new_tokens": 4, "max_prompt_length": 4096, "tensorboard": False}},
        ],
    })
    result = climb(config, registry=tmp_path / "r.db", progress=False)
    assert [r.name for r in result.rungs] == ["baseline", "sft", "dpo", "rl"]
    out = tmp_path / "c"
    held_out = {name: set(file_inputs(out / f"{name}.jsonl")) for name in ("validation", "test", "shifted")}
    trained = {
        "baseline": {input_key(s.input) for s in TASK.select_shots(1)},
        "sft": set(file_inputs(out / "02-sft" / "data.jsonl")),
        "dpo": set(file_inputs(out / "03-dpo" / "pairs.jsonl")),
        "rl": set(file_inputs(out / "04-rl" / "prompts.jsonl")),
    }
    assert len(trained["sft"]) == 12 and trained["dpo"] and len(trained["rl"]) == 6
    # The preference rung sampled from 8 fresh prompts; every one is recorded, the pairs among them.
    dpo_drawn = set((out / "03-dpo" / "inputs.txt").read_text().splitlines())
    assert len(dpo_drawn) == 8 and trained["dpo"] <= dpo_drawn
    earlier: set[str] = set().union(*held_out.values())
    for name in ("baseline", "sft", "dpo", "rl"):
        assert not trained[name] & earlier, f"{name} trains on rows an earlier rung or a held-out split used"
        drawn = set((out / f"0{['baseline', 'sft', 'dpo', 'rl'].index(name) + 1}-{name}" / "inputs.txt")
                    .read_text().splitlines())
        assert trained[name] <= drawn and not drawn & earlier
        earlier |= drawn
    # The data each rung used is stored with it and hashed in the registry.
    from agentladder.ladder import Registry

    with Registry(tmp_path / "r.db") as reg:
        for rung, path in (("sft", "02-sft/data.jsonl"), ("dpo", "03-dpo/pairs.jsonl"), ("rl", "04-rl/prompts.jsonl")):
            version = reg.get(f"fresh/{rung}")
            assert version.data_path == str((out / path).resolve()) and version.data_hash
    pairs = _rows(out / "03-dpo" / "pairs.jsonl")
    assert all(p["metadata"]["greedy_wrong"] for p in pairs)  # the tiny model is always wrong: all errors


def test_a_file_loses_the_rows_a_held_out_split_or_earlier_rung_used(tmp_path):
    rows = TASK.make("train", 6, seed=5)
    path = tmp_path / "sft.jsonl"
    path.write_text("".join(json.dumps(TASK.to_sft(s).model_dump(mode="json", exclude_none=True)) + "\n"
                            for s in rows))
    config = parse_ladder({"name": "f", "gate": {"target": 0.9}, "out_dir": str(tmp_path / "c"), "rungs": [
        {"name": "sft", "kind": "sft", "data": {"source": "file", "path": str(path)}}]})
    ctx = RungContext(config, config.rungs[0], 0, tmp_path / "c" / "01-sft", "tiny", False,
                      exclude=frozenset({input_key(rows[1].input), input_key(rows[4].input)}))
    ctx.dir.mkdir(parents=True)
    kept = sft_data(ctx)
    assert ctx.notes["dropped_seen_rows"] == 2 and kept != str(path)
    assert file_inputs(kept) == [input_key(rows[i].input) for i in (0, 2, 3, 5)]


def _three_kinds_filter(tmp_path, data, train, kind):
    """An RL rung's context on 9 fresh prompts whose recorded model is right on the prompts of ``kind(i) == 0``,
    wrong on 1 and right every other time on 2; and the pool, each sample with its kind."""
    config = parse_ladder({"name": "f", "gate": {"target": 0.9}, "out_dir": str(tmp_path / "c"), "rungs": [
        {"name": "rl", "kind": "rl", "train": train,
         "data": {"source": "generate", "rows": 9, "filter_k": 4, "batch_size": 8, **data}}]})
    ctx = RungContext(config, config.rungs[0], 0, tmp_path / "c" / "01-rl", "scripted", False)
    ctx.dir.mkdir(parents=True)
    pool = fresh_samples(TASK, "train", 9, seed=ctx.seed)
    role = {s.input: ("right", "wrong", "coin")[kind(i)] for i, s in enumerate(pool)}
    target = {s.input: TASK.target_text(s) for s in pool}
    seen: Counter = Counter()

    def answer(prompt):
        line = prompt[-1].content
        seen[line] += 1
        right = role[line] == "right" or (role[line] == "coin" and seen[line] % 2 == 0)
        return target[line] if right else "no idea"

    ctx.start_model = ScriptedProvider(answer)  # type: ignore[assignment]  # a provider stands for the model
    return ctx, [(s, role[s.input]) for s in pool]


def test_rl_prompts_keep_those_the_model_sometimes_fails_and_report_the_yield(tmp_path):
    """A recorded model right on the first third of the prompts, wrong on the second, and right every other
    time on the rest: only the last third has a pass rate strictly between 0 and 1."""
    ctx, pool = _three_kinds_filter(tmp_path, {}, {}, lambda i: i // 3)
    path = rl_prompts(ctx)
    kept = [r["text"] for r in _rows(tmp_path / "c" / "01-rl" / "prompts.jsonl")]
    assert path.endswith("prompts.jsonl") and kept == [s.input for s, _ in pool[6:]]
    stats = json.loads((ctx.dir / "filter.json").read_text())
    assert stats == {"k": 4, "pool": 9, "kept": 3, "always_right": 3, "always_wrong": 3, "yield": pytest.approx(1 / 3)}
    assert ctx.notes["filter"] == stats


def test_balanced_rl_prompts_see_rare_values_more_often_each_row_once_and_fresh(tmp_path):
    """``balance`` draws an RL rung's prompts from eight times as many fresh rows, rare durations more often
    than the generator's own mix gives them, no row twice and none an earlier rung used."""
    config = parse_ladder({"name": "f", "gate": {"target": 0.9}, "out_dir": str(tmp_path / "c"), "rungs": [
        {"name": "rl", "kind": "rl", "data": {"source": "generate", "rows": 200, "balance": "duration_days"}}]})
    ctx = RungContext(config, config.rungs[0], 0, tmp_path / "c" / "01-rl", "tiny", False)
    plain = fresh_samples(TASK, "train", 200, seed=ctx.seed)
    used = frozenset(input_key(s.input) for s in plain[:50])
    ctx = RungContext(config, config.rungs[0], 0, tmp_path / "c" / "01-rl", "tiny", False, exclude=used)
    ctx.dir.mkdir(parents=True)
    rows = _rows(Path(rl_prompts(ctx)))
    assert len(rows) == 200 and len({r["id"] for r in rows}) == 200
    assert not {input_key(r["text"]) for r in rows} & used
    assert ctx.notes["drawn"] == [input_key(r["text"]) for r in rows]
    no_duration = sum(r["target"]["duration_days"] is None for r in rows)
    assert no_duration < 0.8 * sum(s.target["duration_days"] is None for s in plain)


def test_rl_prompts_put_the_greedy_errors_a_sample_fixes_first_as_many_times_as_asked(tmp_path):
    """Five kinds of prompt, three of each: always right; always wrong; right every other sample with a right
    greedy answer (kept once); right every other sample with a wrong greedy answer, and right in every sample
    with a wrong greedy answer (both fixable greedy errors: kept first, twice each, the second even though
    every sample is right)."""
    config = parse_ladder({"name": "f", "gate": {"target": 0.9}, "out_dir": str(tmp_path / "c"), "rungs": [
        {"name": "rl", "kind": "rl", "data": {"source": "generate", "rows": 15, "filter_k": 4, "greedy_errors": 2,
                                              "batch_size": 8}}]})
    ctx = RungContext(config, config.rungs[0], 0, tmp_path / "c" / "01-rl", "scripted", False)
    ctx.dir.mkdir(parents=True)
    pool = fresh_samples(TASK, "train", 15, seed=ctx.seed)
    role = {s.input: ("right", "wrong", "coin", "fixable", "lucky")[i % 5] for i, s in enumerate(pool)}
    target = {s.input: TASK.target_text(s) for s in pool}
    seen: Counter = Counter()

    def answer(prompt):  # each prompt's 4 samples come before its greedy answer (the 5th call)
        line = prompt[-1].content
        seen[line] += 1
        greedy, kind = seen[line] == 5, role[line]
        if kind in ("right", "wrong"):
            right = kind == "right"
        elif greedy:
            right = kind == "coin"
        else:
            right = kind == "lucky" or seen[line] % 2 == 0
        return target[line] if right else "no idea"

    ctx.start_model = ScriptedProvider(answer)  # type: ignore[assignment]
    rl_prompts(ctx)
    rows = _rows(ctx.dir / "prompts.jsonl")
    fixable = [s for s in pool if role[s.input] in ("fixable", "lucky")]
    assert [r["text"] for r in rows] == [s.input for s in fixable] * 2 + [s.input for s in pool if role[s.input] == "coin"]
    assert len({r["id"] for r in rows}) == len(rows) == 15
    stats = json.loads((ctx.dir / "filter.json").read_text())
    assert stats == {"k": 4, "pool": 15, "kept": 15, "always_right": 6, "always_wrong": 3, "greedy_wrong": 9,
                     "fixable": 6, "copies": 2, "yield": pytest.approx(9 / 15)}
    assert max(seen.values()) == 5  # one greedy answer a prompt, none asked again
    rl_prompts(ctx)  # a second run reads the rung's prompts back
    assert _rows(ctx.dir / "prompts.jsonl") == rows and ctx.notes["filter"] == stats and max(seen.values()) == 5


def test_rl_prompts_keep_the_always_wrong_ones_last_for_reference_guidance(tmp_path):
    """With ``always_wrong`` the prompts no sample answers right are kept too, after those it sometimes fails,
    and the yield counts them."""
    ctx, pool = _three_kinds_filter(tmp_path, {"always_wrong": True}, {"reference_guidance": True}, lambda i: i % 3)
    rl_prompts(ctx)
    kept = [r["text"] for r in _rows(ctx.dir / "prompts.jsonl")]
    assert kept == [s.input for s, r in pool if r == "coin"] + [s.input for s, r in pool if r == "wrong"]
    stats = json.loads((ctx.dir / "filter.json").read_text())
    assert stats == {"k": 4, "pool": 9, "kept": 6, "always_right": 3, "always_wrong": 3, "always_wrong_kept": 3,
                     "yield": pytest.approx(6 / 9)}
