"""The ladder's public surface grows only on purpose."""

import agentladder.ladder


def test_public_names():
    assert sorted(agentladder.ladder.__all__) == [
        "COMPONENTS", "ClassifierSettings", "ClimbResult", "Gate", "Guard", "LadderConfig", "ModelVersion", "PHASES", "RUNNERS", "Recommendation",
        "Registry", "Rung", "RungContext", "RungResult", "Trained", "Verdict", "climb", "default_registry",
        "demo_ladder", "judge", "load_ladder", "parse_ladder", "read_climb", "recommend", "shipped_ladders",
        "write_report",
    ]
    for name in agentladder.ladder.__all__:
        assert hasattr(agentladder.ladder, name), name
