"""Rewards for RL: verifiable graders, LLM judges, weighted ensembles, span-level rewards, shaping."""

from agentladder.rewards.base import Reward, RewardInput, RewardOutput, Span, as_output
from agentladder.rewards.config import REWARD_TYPES, build_reward, build_rewards
from agentladder.rewards.ensemble import GroupScores, WeightedEnsemble
from agentladder.rewards.graders import (
    ExactMatch,
    FieldMatch,
    JSONSchemaReward,
    NumericReward,
    PythonReward,
    RegexReward,
    TaskReward,
)
from agentladder.rewards.judge import GroupJudgeReward, JudgeReward, group_prompt, parse_ranking
from agentladder.rewards.shaping import overlong_penalty, span_token_values, token_char_ranges
from agentladder.rewards.spans import RegexSpanReward, WrongFieldSpans

__all__ = [
    "REWARD_TYPES",
    "ExactMatch",
    "FieldMatch",
    "GroupJudgeReward",
    "GroupScores",
    "JSONSchemaReward",
    "JudgeReward",
    "NumericReward",
    "PythonReward",
    "RegexReward",
    "RegexSpanReward",
    "Reward",
    "RewardInput",
    "RewardOutput",
    "Span",
    "TaskReward",
    "WeightedEnsemble",
    "WrongFieldSpans",
    "as_output",
    "build_reward",
    "build_rewards",
    "group_prompt",
    "overlong_penalty",
    "parse_ranking",
    "span_token_values",
    "token_char_ranges",
]
