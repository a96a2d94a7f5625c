import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agentladder.agents import Runtime


@pytest.fixture
def spans():
    return InMemorySpanExporter()


@pytest.fixture
def rt(spans):
    runtime = Runtime(":memory:", span_exporters=[spans])
    yield runtime
    runtime.shutdown()


ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]
SERVERS = ROOT / "tests" / "agents" / "servers"
PHARMACY = ROOT / "examples" / "pharmacy"


@pytest.fixture(scope="session")
def pharmacy_tools():
    """examples/pharmacy/tools.py, imported once (its folder on sys.path, as the example runs)."""
    import sys

    sys.path.insert(0, str(PHARMACY))
    import tools

    return tools
