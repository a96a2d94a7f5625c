"""Every guard test starts without cached detectors: a classifier trained on this machine must not decide a test."""

import pytest


@pytest.fixture(autouse=True)
def _no_cached_detectors(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("AGENTLADDER_HOME", str(tmp_path_factory.getbasetemp() / "agentladder-home"))
