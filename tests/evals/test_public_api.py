"""The evaluation package's public surface grows only on purpose."""

import agentladder.evals


def test_public_names():
    assert sorted(agentladder.evals.__all__) == [
        "DEFAULT_RUBRIC", "EvalReport", "Judge", "JudgeResult", "LocalProvider", "ModelResult",
        "OpenAIProvider", "PairwiseResult", "Provider", "ProviderError", "ScriptedProvider",
        "Verdict", "evaluate", "load_rows", "make_provider", "parse_preference", "parse_verdict",
        "semantic_similarity",
    ]
    for name in agentladder.evals.__all__:
        assert hasattr(agentladder.evals, name), f"agentladder.evals.{name}"
