import torch

from agentladder.models import attach_lora, load_adapter, merge, reference_mode, tiny_model
from agentladder.models.lora import LoraSettings


def _perturb(model):
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)


def test_lora_save_load_merge_round_trip(tmp_path, tok):
    ids = torch.tensor([tok("hello world, a test")["input_ids"]])
    base_logits = tiny_model(tokenizer=tok)(ids).logits
    lora = attach_lora(tiny_model(tokenizer=tok), LoraSettings(r=4, alpha=8))
    _perturb(lora)
    lora.eval()
    with torch.no_grad():
        tuned = lora(ids).logits
        with reference_mode(lora):
            ref = lora(ids).logits
    assert not torch.allclose(tuned, base_logits, atol=1e-4)
    torch.testing.assert_close(ref, base_logits)  # reference = adapters disabled, same weights

    lora.save_pretrained(tmp_path / "adapter")
    assert (tmp_path / "adapter" / "adapter_model.safetensors").exists()
    loaded = load_adapter(tiny_model(tokenizer=tok), tmp_path / "adapter").eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids).logits, tuned)
        merged = merge(loaded)
        assert not any("lora" in n for n, _ in merged.named_parameters())
        torch.testing.assert_close(merged(ids).logits, tuned, atol=1e-5, rtol=1e-5)


def test_lora_freezes_the_base(tok):
    lora = attach_lora(tiny_model(tokenizer=tok))
    trainable = [n for n, p in lora.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    targets = {n.split(".")[-4] for n in trainable}
    assert {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"} <= targets
