"""The task package's public surface grows only on purpose."""

import agentladder.tasks
import agentladder.tasks.medication


def test_public_names():
    assert sorted(agentladder.tasks.__all__) == [
        "Metric", "Parsed", "PromptStyle", "Sample", "Summary", "Task", "accuracy", "bootstrap_ci", "confusion",
        "extract_json_object", "get_task", "list_tasks", "macro_f1", "make_data", "mean_metric",
        "numbers_equal", "precision_recall_f1", "register_task", "sft_conversations", "token_f1", "write_data",
    ]
    for module in (agentladder.tasks, agentladder.tasks.medication):
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"
    assert agentladder.tasks.list_tasks() == ["medication-directions", "text"]
