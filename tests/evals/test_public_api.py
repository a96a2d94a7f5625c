"""The evaluation package's public surface grows only on purpose."""

import agentladder.evals
import agentladder.evals.tasks.medication


def test_public_names():
    assert sorted(agentladder.evals.__all__) == [
        "DEFAULT_RUBRIC", "EvalReport", "Judge", "JudgeResult", "LocalProvider", "Metric", "ModelResult",
        "OpenAIProvider", "PairwiseResult", "Parsed", "Provider", "ProviderError", "Sample", "ScriptedProvider",
        "Summary", "Task", "Verdict", "accuracy", "bootstrap_ci", "confusion", "evaluate", "extract_json_object",
        "get_task", "list_tasks", "load_rows", "macro_f1", "make_data", "make_provider", "mean_metric",
        "numbers_equal", "parse_preference", "parse_verdict", "precision_recall_f1", "register_task",
        "semantic_similarity", "sft_conversations", "token_f1", "write_data",
    ]
    for module in (agentladder.evals, agentladder.evals.tasks.medication):
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"
    assert agentladder.evals.list_tasks() == ["medication-directions", "text"]
