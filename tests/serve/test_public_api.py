"""The serve package's public surface grows only on purpose."""

import agentladder.serve


def test_public_names():
    assert sorted(agentladder.serve.__all__) == [
        "APIError", "CLIENT_CLOSED", "CallUsage", "Gateway", "Generation", "Scheduler", "Served", "ServerHooks",
        "ServerState", "Specialist", "create_app", "load_state", "run",
    ]
    for name in agentladder.serve.__all__:
        assert hasattr(agentladder.serve, name)
    assert isinstance(agentladder.serve.ServerHooks(), agentladder.serve.Gateway)
