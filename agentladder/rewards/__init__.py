"""Rewards for RL: verifiable graders, a task's own reward, LLM judges (their prompts and verdict parsers
too), weighted ensembles, span-level rewards, shaping."""

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
from agentladder.rewards.judge import GroupJudgeReward, JudgeReward
from agentladder.rewards.judging import (
    DEFAULT_RUBRIC,
    Verdict,
    group_prompt,
    pair_prompt,
    parse_preference,
    parse_ranking,
    parse_verdict,
    single_prompt,
)
from agentladder.rewards.reward_model import RewardModelReward, preference_figures
from agentladder.rewards.shaping import overlong_penalty, span_token_values, token_char_ranges
from agentladder.rewards.spans import RegexSpanReward, WrongFieldSpans

__all__ = [
    "DEFAULT_RUBRIC",
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
    "RewardModelReward",
    "RewardInput",
    "RewardOutput",
    "Span",
    "TaskReward",
    "Verdict",
    "WeightedEnsemble",
    "WrongFieldSpans",
    "as_output",
    "build_reward",
    "build_rewards",
    "group_prompt",
    "overlong_penalty",
    "pair_prompt",
    "parse_preference",
    "parse_ranking",
    "parse_verdict",
    "preference_figures",
    "single_prompt",
    "span_token_values",
    "token_char_ranges",
]
