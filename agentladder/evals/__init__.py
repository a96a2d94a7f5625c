"""Evaluation: the runner, judges and win rates, reports and plots, over the tasks of :mod:`agentladder.tasks`.

Models answer through the provider protocol of :mod:`agentladder.models.providers`
(re-exported here: ``Provider``, ``LocalProvider``, ``OpenAIProvider``, ``ScriptedProvider``,
``make_provider``, ``ProviderError``).

>>> from agentladder.evals import evaluate
>>> report = evaluate(["smollm2-135m"], "medication-directions", shots=3, out="reports/base")  # doctest: +SKIP
>>> report.models["smollm2-135m"].metrics["exact_match"]  # doctest: +SKIP
"""

from agentladder.evals.judge import Judge, JudgeResult, PairwiseResult
from agentladder.evals.report import EvalReport, ModelResult
from agentladder.evals.runner import evaluate, load_rows
from agentladder.evals.similarity import semantic_similarity
from agentladder.models.providers import (
    LocalProvider,
    OpenAIProvider,
    Provider,
    ProviderError,
    ScriptedProvider,
    make_provider,
)
from agentladder.rewards.judging import DEFAULT_RUBRIC, Verdict, parse_preference, parse_verdict

__all__ = [
    "DEFAULT_RUBRIC",
    "EvalReport",
    "Judge",
    "JudgeResult",
    "LocalProvider",
    "ModelResult",
    "OpenAIProvider",
    "PairwiseResult",
    "Provider",
    "ProviderError",
    "ScriptedProvider",
    "Verdict",
    "evaluate",
    "load_rows",
    "make_provider",
    "parse_preference",
    "parse_verdict",
    "semantic_similarity",
]
