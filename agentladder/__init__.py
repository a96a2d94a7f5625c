"""agentladder: post-train the models behind agent components, rung by rung."""

__version__ = "0.1.0"

import warnings as _warnings

# peft still calls a transformers method that transformers 5 marks deprecated; the
# warning says nothing a user can act on.
_warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
