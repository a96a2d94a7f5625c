"""Training: the shared loop, losses, and the trainers of each rung."""

from agentladder.train.loop import LossOutput, TrainConfig, Trainer, TrainResult
from agentladder.train.sft import SFTConfig, sft

__all__ = ["LossOutput", "SFTConfig", "TrainConfig", "TrainResult", "Trainer", "sft"]
