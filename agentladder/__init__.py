"""agentladder: post-train the models behind agent components, rung by rung."""

__version__ = "0.1.0"
