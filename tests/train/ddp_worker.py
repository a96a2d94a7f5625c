"""Run under ``torchrun --nproc_per_node 2``: one data-parallel step, gradients saved by rank 0."""

import sys

import torch

from agentladder.data import Conversation
from agentladder.models import attach_lora, tiny_model, tiny_tokenizer
from agentladder.models.chat import tokenize_conversation
from agentladder.models.lora import LoraSettings
from agentladder.train.batching import collator
from agentladder.train.loop import TrainConfig, Trainer
from agentladder.train.sft import causal_lm_loss
from tests.conftest import CONVERSATIONS


def build(out_dir: str, batch_size: int, strategy: str = "ddp") -> Trainer:
    tok = tiny_tokenizer()
    torch.manual_seed(0)
    model = attach_lora(tiny_model(tokenizer=tok), LoraSettings(r=4, alpha=8))
    rows = [tokenize_conversation(tok, Conversation.model_validate(c)) for c in CONVERSATIONS] * 2
    cfg = TrainConfig(out_dir=out_dir, learning_rate=1e-2, batch_size=batch_size, max_steps=2, save_every=1,
                      max_grad_norm=None, progress=False, tensorboard=False, strategy=strategy)
    return Trainer(model, rows, collator(tok.pad_token_id, True), causal_lm_loss, cfg)


def run(trainer: Trainer) -> dict:
    grads = {}
    real_step = trainer.optimizer.step

    def capture():
        if not grads:
            grads.update({n: p.grad.detach().clone() for n, p in trainer.model.named_parameters() if p.requires_grad})
        real_step()

    trainer.optimizer.step = capture
    result = trainer.run()
    weights = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if p.requires_grad}
    return {"grads": grads, "weights": weights, "losses": [r["loss"] for r in result.history],
            "world_size": trainer.world.world_size}


if __name__ == "__main__":
    out_dir, target, strategy = sys.argv[1], sys.argv[2], sys.argv[3]
    trainer = build(out_dir, batch_size=2, strategy=strategy)
    result = run(trainer)
    if strategy == "fsdp":  # sharded parameters: gather full tensors for the comparison
        # full_tensor() may return before its all-gather has finished; every process waits
        # for it (a copy) so that none tears the process group down under a pending collective.
        result["grads"] = {k: v.full_tensor().clone() for k, v in result["grads"].items()}
        result["weights"] = {k: v.full_tensor().clone() for k, v in result["weights"].items()}
    if trainer.world.rank == 0:
        torch.save(result, target)
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()
