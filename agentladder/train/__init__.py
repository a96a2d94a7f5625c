"""Training: the shared loop, losses, and the trainers of each rung."""

from agentladder.train.agent_run import rl
from agentladder.train.classifier import ClassifierResult, train_classifier
from agentladder.train.loop import LossOutput, TrainConfig, Trainer, TrainResult
from agentladder.train.lora_classifier import train_lora_classifier
from agentladder.train.preference import PreferenceConfig, preference
from agentladder.train.rl_config import RLConfig
from agentladder.train.sft import SFTConfig, sft

__all__ = ["ClassifierResult", "LossOutput", "PreferenceConfig", "RLConfig", "SFTConfig", "TrainConfig", "TrainResult", "Trainer",
           "preference", "rl", "sft", "train_classifier", "train_lora_classifier"]
