"""Structured output: how often the answer is valid, with the JSON schema enforced while decoding and without.

    python bench/structured_output.py                                   # SmolLM2-135M base, 200 test rows
    python bench/structured_output.py --adapter sft=runs/quickstart/sft  # and a tuned specialist

An accuracy figure, not a timing: it may run on a busy machine. ``agentladder serve``
runs in this process on a loopback port; the real ``openai`` client sends each row of
the medication-directions test split (seed 0) under the task's zero-shot prompt,
greedy, ``max_tokens`` 96, once with ``response_format`` = the task's JSON schema
(``Directions``: six typed fields, no others) and once as plain text. Printed per model:

- ``parses``: the whole answer is one JSON value (``json.loads``);
- ``schema-valid``: it also validates against the schema (``jsonschema``);
- ``task-valid``: the task's own reading (:meth:`Task.parse`: the first JSON object
  in the answer, fields and types checked) finds a valid answer;
- ``exact``: all six fields right; ``cut``: answers that reached ``max_tokens``.

Ends with ``schema_valid_with=<x> schema_valid_without=<y>`` for the first model.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jsonschema
import openai
import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agentladder.serve import create_app, load_state  # noqa: E402
from agentladder.tasks import get_task  # noqa: E402
from agentladder.tasks.medication.task import FIELDS, Directions, field_correct  # noqa: E402


def serve_in_thread(state) -> tuple[uvicorn.Server, str]:
    server = uvicorn.Server(uvicorn.Config(create_app(state), host="127.0.0.1", port=0, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server, f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}/v1"


def measure(client: openai.OpenAI, model: str, rows, task, schema: dict | None, max_tokens: int) -> dict[str, float]:
    fmt = {"type": "json_schema", "json_schema": {"name": "directions", "schema": schema}} if schema else None

    def ask(row):
        messages = [m.to_template_dict() for m in task.prompt(row)]
        kw = {"response_format": fmt} if fmt else {}
        reply = client.chat.completions.create(model=model, messages=messages, max_tokens=max_tokens,
                                               temperature=0, **kw)
        return reply.choices[0].message.content or "", reply.choices[0].finish_reason

    with ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(ask, rows))
    counts = {"parses": 0, "schema-valid": 0, "task-valid": 0, "exact": 0, "cut": 0}
    for row, (text, finish) in zip(rows, answers, strict=True):
        counts["cut"] += finish == "length"
        try:
            value = json.loads(text)
            counts["parses"] += 1
            jsonschema.validate(value, schema_of())
            counts["schema-valid"] += 1
        except (json.JSONDecodeError, jsonschema.ValidationError):
            pass
        parsed = task.parse(text)
        counts["task-valid"] += parsed.valid
        counts["exact"] += parsed.valid and all(field_correct(f, parsed.value.get(f), row.target[f]) for f in FIELDS)
    return {k: v / len(rows) for k, v in counts.items()}


def schema_of() -> dict:
    return Directions.model_json_schema()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--adapter", action="append", default=[], help="NAME=PATH: also measure this specialist")
    ap.add_argument("--rows", type=int, default=200)
    ap.add_argument("--max-tokens", type=int, default=96)
    args = ap.parse_args()
    adapters = dict(a.split("=", 1) for a in args.adapter)
    state = load_state(args.model, adapters=adapters, served_model_name="base", max_batch=32)
    server, url = serve_in_thread(state)
    task = get_task("medication-directions")
    rows = task.make("test", args.rows, 0)
    results = {}
    with openai.OpenAI(base_url=url, api_key="none", max_retries=0, timeout=3600) as client:
        for name in ["base", *adapters]:
            for label, schema in (("with schema", schema_of()), ("without", None)):
                results[f"{name}, {label}"] = measure(client, name, rows, task, schema, args.max_tokens)
    server.should_exit = True
    print(f"\n{args.rows} medication-directions test rows (seed 0), greedy, max_tokens {args.max_tokens}, "
          f"model {args.model}\n")
    keys = list(next(iter(results.values())))
    print("| | " + " | ".join(keys) + " |\n| --- |" + " ---: |" * len(keys))
    for name, r in results.items():
        print(f"| {name} | " + " | ".join(f"{r[k]:.3f}" for k in keys) + " |")
    first = list(results.values())
    print(f"schema_valid_with={first[0]['schema-valid']:.3f} schema_valid_without={first[1]['schema-valid']:.3f}")


if __name__ == "__main__":
    main()
