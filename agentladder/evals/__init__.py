"""Evaluation: tasks (dataset + prompt + parser + scorers), providers, metrics, judges and reports.

>>> from agentladder.evals import evaluate
>>> report = evaluate(["smollm2-135m"], "medication-directions", shots=3, out="reports/base")  # doctest: +SKIP
>>> report.models["smollm2-135m"].metrics["exact_match"]  # doctest: +SKIP
"""

from agentladder.evals.judge import (
    DEFAULT_RUBRIC,
    Judge,
    JudgeResult,
    PairwiseResult,
    Verdict,
    parse_preference,
    parse_verdict,
)
from agentladder.evals.local import LocalProvider
from agentladder.evals.make import make_data, sft_conversations, write_data
from agentladder.evals.metrics import (
    Metric,
    accuracy,
    bootstrap_ci,
    confusion,
    macro_f1,
    mean_metric,
    numbers_equal,
    precision_recall_f1,
    token_f1,
)
from agentladder.evals.parsing import extract_json_object
from agentladder.evals.providers import (
    OpenAIProvider,
    Provider,
    ProviderError,
    ScriptedProvider,
    make_provider,
)
from agentladder.evals.report import EvalReport, ModelResult
from agentladder.evals.runner import evaluate, load_rows
from agentladder.evals.similarity import semantic_similarity
from agentladder.evals.task import (
    Parsed,
    Sample,
    Summary,
    Task,
    get_task,
    list_tasks,
    register_task,
)

__all__ = [
    "DEFAULT_RUBRIC",
    "EvalReport",
    "Judge",
    "JudgeResult",
    "LocalProvider",
    "Metric",
    "ModelResult",
    "OpenAIProvider",
    "PairwiseResult",
    "Parsed",
    "Provider",
    "ProviderError",
    "Sample",
    "ScriptedProvider",
    "Summary",
    "Task",
    "Verdict",
    "accuracy",
    "bootstrap_ci",
    "confusion",
    "evaluate",
    "extract_json_object",
    "get_task",
    "list_tasks",
    "load_rows",
    "macro_f1",
    "make_data",
    "make_provider",
    "mean_metric",
    "numbers_equal",
    "parse_preference",
    "parse_verdict",
    "precision_recall_f1",
    "register_task",
    "semantic_similarity",
    "sft_conversations",
    "token_f1",
    "write_data",
]
