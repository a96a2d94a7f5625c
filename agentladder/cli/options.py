"""Command-line options made from config fields: each option's help is its field's docstring, its default
the field's default, so the command line and the Python API cannot drift apart.

A command lists the fields it offers and takes them as ``**settings`` (keyed by field name)::

    @train_app.command("sft")
    @friendly_errors
    @config_options(SFTConfig, *RUN, *LORA, "max_length", "packing", *LOOP)
    def train_sft(resume: ResumeOption = None, quiet: QuietOption = False, **settings: Any) -> None:
        ...

An option is ``--field-name`` unless an :class:`Opt` names it otherwise (``--lr``, ``--lora/--full``).
"""

from __future__ import annotations

import inspect
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar

import typer
from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticUndefined
from rich.markup import escape

from agentladder.errors import config_error

F = TypeVar("F", bound=Callable[..., Any])
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Opt:
    """How a config field shows on the command line when ``--field-name`` will not do."""

    field: str
    decls: tuple[str, ...] = ()
    """Option names (``("--lr",)``; a boolean's ``("--lora/--full",)``)."""


# -- the options the trainers share ---------------------------------------------------------------
RUN = ("data", Opt("out_dir", ("--out",)), "model")
LORA = (Opt("lora", ("--lora/--full",)), "lora_r", "lora_alpha", "lora_plus_ratio")
LOOP = ("epochs", "max_steps", "max_minutes", "batch_size", "grad_accum", Opt("learning_rate", ("--lr",)), "warmup_ratio",
        "precision", "strategy", "seed", "save_every")

ResumeOption = Annotated[str | None, typer.Option(
    help="Continue the interrupted run in this folder, with its saved settings.")]
QuietOption = Annotated[bool, typer.Option(help="No progress bar.")]


def config_options(config: type[BaseModel], *fields: str | Opt, given_only: bool = False) -> Callable[[F], F]:
    """Add one option per config field to the decorated command, which receives them as ``**settings``.

    An option not given on the command line is ``None`` when the field's default is computed by the
    config (a learning rate that depends on LoRA), the field is required (``--data``: a resumed run
    needs none), or ``given_only`` is set (RL: options override a YAML file's settings, so only
    those given count); otherwise it shows and takes the field's default.
    """
    params = [_param(config, f if isinstance(f, Opt) else Opt(f), given_only) for f in fields]

    def decorate(fn: F) -> F:
        own = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
               for p in inspect.signature(fn, eval_str=True).parameters.values()
               if p.kind is not inspect.Parameter.VAR_KEYWORD]
        fn.__signature__ = inspect.Signature([*params, *own])  # type: ignore[attr-defined]
        return fn

    return decorate


def make_config(config: type[M], settings: dict[str, Any], **fixed: Any) -> M:
    """``config`` from the options given (``None``: not given, the config's default applies) and ``fixed``;
    a value the config rejects is one :class:`~agentladder.errors.ConfigError` line."""
    try:
        return config(**{k: v for k, v in settings.items() if v is not None}, **fixed)
    except ValidationError as e:
        raise config_error(e) from None


def given(settings: dict[str, Any]) -> dict[str, Any]:
    """The settings given on the command line (the others are ``None``)."""
    return {k: v for k, v in settings.items() if v is not None}


def _param(config: type[BaseModel], opt: Opt, given_only: bool) -> inspect.Parameter:
    info = config.model_fields[opt.field]
    kind = _option_type(info.annotation)
    default = info.default
    if given_only or default is PydanticUndefined or default is None:
        default, kind = None, kind | None
    option = typer.Option(*opt.decls, help=help_text(info.description or ""))
    return inspect.Parameter(opt.field, inspect.Parameter.KEYWORD_ONLY, default=default,
                             annotation=Annotated[kind, option])


def _option_type(annotation: Any) -> Any:
    """The type the command line parses: a field's own type, without ``None``; a ``Literal`` as ``str``
    (the config checks the choice, and says so in one line)."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        return _option_type(args[0])
    if typing.get_origin(annotation) is Literal:
        return str
    if annotation in (bool, int, float, str):
        return annotation
    raise TypeError(f"no command-line option for a field of type {annotation}")


def help_text(doc: str) -> str:
    """A field docstring as option help: one line, without reST markup, brackets kept literal."""
    doc = re.sub(r":\w+:`~?([^`]+)`", r"\1", doc).replace("``", "")
    return escape(" ".join(doc.split()))


__all__ = ["LOOP", "LORA", "RUN", "Opt", "QuietOption", "ResumeOption", "config_options", "given", "help_text",
           "make_config"]
