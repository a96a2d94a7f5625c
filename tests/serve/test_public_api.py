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


def test_gateway_public_names():
    import agentladder.serve.gateway as gateway

    assert sorted(gateway.__all__) == [
        "Admission", "GatewayDB", "GatewayHooks", "KeyRecord", "ProxyState", "UpstreamProcess", "UsageRow",
        "create_key", "create_proxy_app", "find_key", "list_keys", "lookup", "open_db", "open_gateway", "report",
        "revoke_key", "run_proxy", "vllm_command", "vllm_env", "write_usage",
    ]
    for name in gateway.__all__:
        assert hasattr(gateway, name)
    hooks = gateway.GatewayHooks(gateway.open_db(":memory:"))
    assert isinstance(hooks, agentladder.serve.Gateway)
