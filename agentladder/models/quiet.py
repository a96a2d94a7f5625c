"""Keep third-party chatter off the console around the calls that cause it.

transformers draws progress bars (per-tensor "Loading weights", "Writing model
shards" on save, "Converting and de-quantizing GGUF tensors" on a GGUF load)
and logs warnings that say nothing a user can act on; libraries under it raise
``FutureWarning`` s carrying their source paths. A user of agentladder should
see only its own progress and results, so :func:`quiet_transformers` turns
those off for one call and puts every switch back after it: nothing global is
changed for code around it.
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from collections.abc import Iterator

from transformers.utils import logging as hf_logging

THIRD_PARTY = r"(transformers|peft|torch|huggingface_hub|accelerate)(\.|$)"
"""Modules whose ``FutureWarning`` s are silenced inside :func:`quiet_transformers`."""


@contextlib.contextmanager
def quiet_transformers(*, gguf: bool = False) -> Iterator[None]:
    """Within the block: no transformers progress bars, only its errors logged, no third-party FutureWarnings.

    ``gguf`` also silences the GGUF de-quantisation bar, which transformers draws with plain
    ``tqdm`` outside its own progress-bar switch.
    """
    bars_on = hf_logging.is_progress_bar_enabled()
    verbosity = hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        with warnings.catch_warnings(), _quiet_gguf() if gguf else contextlib.nullcontext():
            warnings.filterwarnings("ignore", category=FutureWarning, module=THIRD_PARTY)
            yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars_on:
            hf_logging.enable_progress_bar()


@contextlib.contextmanager
def _quiet_gguf() -> Iterator[None]:
    """transformers' GGUF loader with its ``tqdm`` bar disabled, for the duration of the block."""
    # The optional GGUF path, imported only when a GGUF file is loaded.
    from transformers import modeling_gguf_pytorch_utils as gguf_utils

    bar = getattr(gguf_utils, "tqdm", None)
    if bar is None:
        yield
        return
    gguf_utils.tqdm = functools.partial(bar, disable=True)
    try:
        yield
    finally:
        gguf_utils.tqdm = bar
