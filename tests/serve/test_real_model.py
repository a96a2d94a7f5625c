"""SmolLM2-135M and a LoRA specialist served over HTTP: the engine's answers, schemas that validate, tool calls."""

import json

import jsonschema
import openai
import pytest
import torch
from peft import LoraConfig, get_peft_model

from agentladder.models import load_model
from agentladder.models.engine import SamplingParams
from agentladder.serve import load_state
from agentladder.tasks import get_task
from agentladder.tasks.medication.task import Directions
from tests.serve.conftest import LiveServer
from tests.serve.test_docs import DOC_URL, strands_block

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def real_server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("parser")
    model, _ = load_model("smollm2-135m")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        cfg = LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
        specialist = get_peft_model(model, cfg)
    for name, p in specialist.named_parameters():
        if "lora_B" in name:
            p.data.mul_(0.05)  # an adapter that changes answers without wrecking them
    specialist.save_pretrained(str(folder))
    state = load_state("smollm2-135m", adapters={"parser": str(folder)}, max_batch=8)
    with LiveServer(state) as live:
        yield live


def test_the_specialist_answers_as_the_engine_and_its_json_validates(real_server):
    task = get_task("medication-directions")
    rows = task.make("test", 3)
    engine = real_server.state.served.engine
    adapter = real_server.state.served.specialists["parser"].adapter
    client = openai.OpenAI(base_url=real_server.base_url, api_key="none", max_retries=0)
    schema = Directions.model_json_schema()
    for row in rows:
        messages = task.prompt(row)
        body = [m.to_template_dict() for m in messages]
        plain = client.chat.completions.create(model="parser", messages=body, max_tokens=48, temperature=0)
        (ref,), = engine.generate([engine.encode(messages)], SamplingParams(max_new_tokens=48, temperature=0),
                                  adapters=[adapter])
        assert plain.choices[0].message.content == ref.text
        shaped = client.chat.completions.create(
            model="parser", messages=body, max_tokens=96, temperature=0,
            response_format={"type": "json_schema", "json_schema": {"name": "directions", "schema": schema}})
        jsonschema.validate(json.loads(shaped.choices[0].message.content), schema)
    base = client.chat.completions.create(model="smollm2-135m", max_tokens=16, temperature=0,
                                          messages=[{"role": "user", "content": "What is the capital of France?"}])
    assert "Paris" in base.choices[0].message.content
    tool = {"type": "function", "function": {"name": "lookup_drug", "parameters": {
        "type": "object", "properties": {"name": {"type": "string", "maxLength": 30}}, "required": ["name"]}}}
    call = client.chat.completions.create(model="parser", max_tokens=64, temperature=0, tools=[tool],
                                          tool_choice="required",
                                          messages=[{"role": "user", "content": "Look up ibuprofen."}])
    args = json.loads(call.choices[0].message.tool_calls[0].function.arguments)
    assert isinstance(args["name"], str)


def test_the_docs_strands_example_runs(real_server, capsys):
    code = strands_block().replace(DOC_URL, real_server.base_url)
    exec(compile(code, "docs/serve.md Strands example", "exec"), {"__name__": "docs_example"})
    out = capsys.readouterr().out
    assert out.strip() and "as_needed=" in out, "a plain answer, then a Parse"
