"""The task package's public surface grows only on purpose."""

import agentladder.tasks
import agentladder.tasks.logtriage
import agentladder.tasks.medication


def test_public_names():
    assert sorted(agentladder.tasks.__all__) == [
        "ClassificationTask", "Metric", "Parsed", "PromptStyle", "Sample", "Summary", "Task", "accuracy", "bootstrap_ci", "confusion",
        "extract_json_object", "get_task", "list_tasks", "load_labelled", "macro_f1", "make_data", "mean_metric",
        "numbers_equal", "precision_recall_f1", "register_task", "sft_conversations", "token_f1", "write_data",
    ]
    for module in (agentladder.tasks, agentladder.tasks.medication, agentladder.tasks.logtriage):
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"
    assert agentladder.tasks.list_tasks() == ["log-triage", "medication-directions", "text"]
