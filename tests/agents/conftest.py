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
