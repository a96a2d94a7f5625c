"""The real packaged SmolLM2-135M-Instruct: loading, its chat template's mask, and a short fine-tune."""

import json

import pytest

from agentladder.data import Conversation, Message
from agentladder.models import generate, load_model
from agentladder.models.chat import tokenize_conversation
from agentladder.train import sft

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def real():
    return load_model("smollm2-135m")


def test_packaged_model_loads_and_answers(real):
    model, tok = real
    assert 130e6 < sum(p.numel() for p in model.parameters()) < 140e6
    answer = generate(model, tok, [[Message(role="user", content="What is the capital of France?")]],
                      max_new_tokens=16)[0]
    assert "Paris" in answer


def test_real_template_masks_only_the_answer(real):
    _, tok = real
    conv = Conversation.model_validate({"prompt": "Name a colour.", "completion": "Blue."})
    row = tokenize_conversation(tok, conv)
    trained = tok.decode([t for t, m in zip(row.input_ids, row.mask, strict=True) if m])
    assert trained == "Blue.<|im_end|>\n"


def test_short_lora_fine_tune_lowers_the_loss(tmp_path):
    answers = {"amoxicillin 500 mg tid x10d": '{"drug": "amoxicillin", "doses_per_day": 3, "duration_days": 10}',
               "ibuprofen 400mg q6h prn": '{"drug": "ibuprofen", "doses_per_day": 4, "as_needed": true}',
               "metformin 500 mg bid": '{"drug": "metformin", "doses_per_day": 2}',
               "lisinopril 10 mg daily": '{"drug": "lisinopril", "doses_per_day": 1}'}
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"Parse: {k}", "completion": v}) + "\n" for k, v in answers.items()))
    result = sft(model="smollm2-135m", data=str(data), out_dir=str(tmp_path / "run"), lora=True,
                 learning_rate=2e-3, max_steps=6, batch_size=4, warmup_ratio=0.0, progress=False)
    losses = [r["loss"] for r in result.history]
    assert losses[-1] < 0.6 * losses[0], losses
    model, tok = load_model(str(tmp_path / "run"))  # the run folder loads as base + adapter
    assert type(model).__name__.startswith("PeftModel")
