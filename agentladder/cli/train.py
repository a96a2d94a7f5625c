"""``agentladder train sft|dpo|kto|rl|reward|judge|classifier``: thin shells over :func:`~agentladder.train.sft`,
:func:`~agentladder.train.preference`, :func:`~agentladder.train.rl` and
:func:`~agentladder.train.reward_model.train_reward_model`.

Each option is a field of the trainer's config (:mod:`agentladder.cli.options`). Data-parallel
runs launch the same commands through torch distributed:
``torchrun --nproc_per_node 2 -m agentladder train sft ...``; only the main process reports.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from agentladder.agents import Runtime
from agentladder.cli.errors import friendly_errors, stderr
from agentladder.cli.options import (
    LOOP,
    LORA,
    RUN,
    Opt,
    QuietOption,
    ResumeOption,
    config_options,
    given,
    make_config,
)
from agentladder.errors import ConfigError
from agentladder.ladder.embed import register_embedder
from agentladder.ladder.learned import register_judge, register_reward_model
from agentladder.models.rewardmodel import is_reward_model_folder
from agentladder.train.agent_run import rl, saved_agent
from agentladder.train.classifier import C_VALUES, train_classifier
from agentladder.train.embed import LRS as EMBED_LRS
from agentladder.train.embed import EmbedConfig, train_embed
from agentladder.train.judge import JudgeConfig, train_judge
from agentladder.train.loop import TrainConfig, TrainResult
from agentladder.train.lora_classifier import LRS, train_lora_classifier
from agentladder.train.preference import RENAMED, PreferenceConfig, preference
from agentladder.train.reward_model import RewardConfig, train_reward_model
from agentladder.train.rl_config import RLConfig, load_rl_config
from agentladder.train.sft import SFTConfig, sft

RegistryOption = Annotated[str | None, typer.Option(
    help="Registry file the version is written to \\[default: $AGENTLADDER_DB, else agentladder.db].")]

train_app = typer.Typer(no_args_is_help=True, help="Train a rung of the ladder.")


def _train(trainer: Callable[..., TrainResult], config: type[TrainConfig], settings: dict[str, Any],
           resume: str | None, quiet: bool, **fixed: Any) -> TrainResult:
    """Resume the run in ``resume``, or start one with the options given."""
    if resume:
        return trainer(out_dir=resume, resume=True, progress=not quiet)
    if not settings.get("data") or not settings.get("out_dir"):
        raise ConfigError("--data and --out are required (or --resume RUN_FOLDER)")
    return trainer(make_config(config, settings, progress=not quiet, **fixed))


def _episode_runtime(out_dir: str) -> Runtime:
    """Agent RL from the command line: every episode's traces go to ``traces.db`` in the run folder."""
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    return Runtime(str(Path(out_dir) / "traces.db"))


def _main_process() -> bool:
    return os.environ.get("RANK", "0") == "0"


@train_app.command("sft")
@friendly_errors
@config_options(SFTConfig, *RUN, *LORA, "max_length", "packing", *LOOP)
def train_sft(resume: ResumeOption = None, quiet: QuietOption = False, **settings: Any) -> None:
    """Supervised fine-tuning (assistant-only loss) or continued pre-training on text rows."""
    result = _train(sft, SFTConfig, settings, resume, quiet)
    if _main_process():
        stderr.print(f"[green]done[/]: {result.steps} steps, final loss {result.final_loss:.4f} -> {result.out_dir}")


def _preference_done(result: TrainResult) -> None:
    if _main_process():
        last = result.history[-1] if result.history else {}
        acc = f", reward accuracy {last['reward_accuracy']:.2f}" if "reward_accuracy" in last else ""
        stderr.print(f"[green]done[/]: {result.steps} steps, final loss {result.final_loss:.4f}{acc} -> {result.out_dir}")


@train_app.command("dpo")
@friendly_errors
@config_options(PreferenceConfig, *RUN, "loss", "beta", "label_smoothing", "nll_alpha", "rpo_temperature",
                "simpo_gamma", "reference", *LORA, "max_length", "share_prompt", *LOOP)
def train_dpo(resume: ResumeOption = None, quiet: QuietOption = False,
              rpo_alpha: Annotated[float | None, typer.Option(hidden=True)] = None, **settings: Any) -> None:
    """Preference optimisation on pairs: DPO (conservative with --label-smoothing), IPO, DPO+NLL, RPO (Relative
    Preference Optimization), SimPO or ORPO."""
    if rpo_alpha is not None:
        raise ConfigError(f"--rpo-alpha: {RENAMED.replace('loss: dpo_nll', '--loss dpo_nll')} (--nll-alpha)")
    if settings["loss"] == "kto":
        raise ConfigError("KTO trains on marked responses: use `agentladder train kto`")
    _preference_done(_train(preference, PreferenceConfig, settings, resume, quiet))


@train_app.command("kto")
@friendly_errors
@config_options(PreferenceConfig, *RUN, "beta", Opt("kto_desirable_weight", ("--desirable-weight",)),
                Opt("kto_undesirable_weight", ("--undesirable-weight",)), Opt("kto_kl", ("--kl/--no-kl",)),
                "reference", *LORA, "max_length", *LOOP)
def train_kto(resume: ResumeOption = None, quiet: QuietOption = False, **settings: Any) -> None:
    """KTO on single responses marked desirable or undesirable (a pairs file is split into both)."""
    _preference_done(_train(preference, PreferenceConfig, settings, resume, quiet, loss="kto"))


@train_app.command("rl")
@friendly_errors
@config_options(RLConfig, "preset", "model", "task", "data", Opt("out_dir", ("--out",)), "group_size", "batch_size",
                "max_steps", "max_minutes", "n_prompts", "max_new_tokens", "temperature", "kl_coef", Opt("learning_rate", ("--lr",)),
                Opt("lora", ("--lora/--full",)), "rollout_backend", "seed", "save_every", "agent", "episode_reward",
                "episode_timeout", "episode_max_calls", "episode_max_tokens", "failed_episode_reward", "stratify_by",
                given_only=True)
def train_rl(
    config: Annotated[str | None, typer.Option(help="YAML file of RLConfig settings; options given here win.")] = None,
    tasks: Annotated[str | None, typer.Option(
        help="Agent RL: JSONL of task rows (the agent gets a row's input, or the row); same as --data.")] = None,
    train_agent: Annotated[list[str] | None, typer.Option(
        help="Agent RL: a name whose policy calls are trained (repeat; default: every policy call).")] = None,
    reward_model: Annotated[str | None, typer.Option(
        help="A reward model folder (agentladder train reward) as the reward, normalised by its training "
             "rewards; replaces the configured rewards.")] = None,
    resume: ResumeOption = None,
    quiet: QuietOption = False,
    **settings: Any,
) -> None:
    """Reinforcement learning with verifiable, judged or learned rewards: PPO, GRPO, DAPO, GSPO, Dr. GRPO, RLOO,
    REINFORCE++."""
    if reward_model:
        if resume:
            raise ConfigError("--reward-model: a resumed run keeps the rewards it was started with")
        settings["rewards"] = [{"type": "reward_model", "path": reward_model}]
    if tasks:
        settings["data"] = tasks
    if train_agent:
        settings["train_agents"] = list(train_agent)
    if resume:
        result = rl(out_dir=resume, resume=True, progress=not quiet,
                    runtime=_episode_runtime(resume) if saved_agent(resume) else None)
    elif config:
        cfg = load_rl_config(config, **given(settings), progress=not quiet)
        result = rl(cfg, runtime=_episode_runtime(cfg.out_dir) if cfg.agent else None)
    elif settings.get("out_dir") is None:
        raise ConfigError("--out is required (or --config FILE with out_dir, or --resume RUN_FOLDER)")
    else:
        cfg = make_config(RLConfig, settings, progress=not quiet)
        result = rl(cfg, runtime=_episode_runtime(cfg.out_dir) if cfg.agent else None)
    if _main_process():
        last = result.history[-1] if result.history else {}
        reward = f", reward {last['reward']:.3f}" if "reward" in last else ""
        stderr.print(f"[green]done[/]: {result.steps} steps{reward} -> {result.out_dir} "
                  f"(curves: {result.out_dir / 'reward.png'})")


@train_app.command("reward")
@friendly_errors
@config_options(RewardConfig, *RUN, "validation", "validation_share", "margin", "grade_min", "grade_max",
                "grade_weight",
                "max_length", *LORA, *LOOP)
def train_reward(resume: ResumeOption = None, quiet: QuietOption = False, registry: RegistryOption = None,
                 **settings: Any) -> None:
    """A reward model: a scalar head on a causal LM, Bradley-Terry on pairs and regression on 1-5 grades;
    held-out pairwise accuracy and calibration in its manifest; the result registered."""
    if resume:
        result = train_reward_model(out_dir=resume, resume=True, progress=not quiet)
    elif not settings.get("data") or not settings.get("out_dir"):
        raise ConfigError("--data and --out are required (or --resume RUN_FOLDER)")
    else:
        result = train_reward_model(make_config(RewardConfig, settings, progress=not quiet))
    v = (result.validation or {}).get("pairs")
    held = (f", held-out pairwise accuracy {v['accuracy']:.3f} on {v['pairs']} pairs (ECE {v['ece']:.3f})"
            if v else "")
    finished = is_reward_model_folder(result.out_dir) and _main_process()
    version = register_reward_model(result.out_dir, registry) if finished else None
    where = f", registered as {version.id}" if version else ""
    stderr.print(f"[green]done[/]: {result.steps} steps, final loss {result.final_loss:.4f}{held} -> {result.out_dir}"
                 f"{where}", soft_wrap=True)


@train_app.command("judge")
@friendly_errors
@config_options(JudgeConfig, *RUN, "rubric", "validation", "validation_share", "grade_min", "grade_max",
                Opt("compare_untuned", ("--compare-untuned/--no-compare-untuned",)), "max_new_tokens", *LORA,
                "max_length", *LOOP)
def train_judge_command(resume: ResumeOption = None, quiet: QuietOption = False, registry: RegistryOption = None,
                        **settings: Any) -> None:
    """A tuned judge: SFT on graded answers (grade and reasons) against a rubric file, in the judge format the
    evals parse; its agreement with held-out grades next to the untuned model's in judge.json; the result
    registered."""
    if resume:
        result = train_judge(out_dir=resume, resume=True, progress=not quiet)
    elif not settings.get("data") or not settings.get("out_dir") or not settings.get("rubric"):
        raise ConfigError("--data, --rubric and --out are required (or --resume RUN_FOLDER)")
    else:
        result = train_judge(make_config(JudgeConfig, settings, progress=not quiet))
    text = ""
    for who, f in (result.agreement or {}).items():
        kappa = "n/a" if f["quadratic_kappa"] is None else f"{f['quadratic_kappa']:.3f}"
        text += (f"\n  {who}: exact {f['exact']:.3f}, within one {f['within_one']:.3f}, quadratic kappa {kappa}, "
                 f"parsed {f['parsed']:.3f} on {f['rows']} held-out rows")
    finished = (result.out_dir / "judge.json").exists() and _main_process()
    version = register_judge(result.out_dir, registry) if finished else None
    where = f", registered as {version.id}" if version else ""
    stderr.print(f"[green]done[/]: {result.steps} steps -> {result.out_dir}{where}{text}", soft_wrap=True)


@train_app.command("classifier")
@friendly_errors
def train_classifier_command(
    data: Annotated[str, typer.Option(help="JSONL of {\"text\", \"label\"} training rows.")],
    out: Annotated[str, typer.Option(help="Folder to write the classifier to (a manifest and the head).")],
    method: Annotated[str, typer.Option(
        help="features (a head on a frozen model's features) or lora (a LoRA sequence-classification fine-tune).")] = "features",
    features: Annotated[str, typer.Option(
        help="Feature model: a causal LM (alias, folder, hub id) or sentence:minilm / sentence:PATH.")] = "smollm2-135m",
    model: Annotated[str, typer.Option(help="--method lora: the causal LM to fine-tune (alias, folder, hub id).")] = "smollm2-135m",
    layer: Annotated[list[int] | None, typer.Option(
        help="Hidden-states index to use (repeat to choose on validation) \\[default: 1/4, 1/2, 3/4 and all of the depth].")] = None,
    pooling: Annotated[str, typer.Option(help="mean (over the tokens) or last (the last token).")] = "mean",
    validation: Annotated[str | None, typer.Option(
        help="JSONL rows that choose the settings \\[default: 20% of --data held out].")] = None,
    task: Annotated[str | None, typer.Option(help="Classification task whose label set the rows use (log-triage).")] = None,
    labels: Annotated[str | None, typer.Option(help="The label set, comma-separated \\[default: the labels in --data].")] = None,
    c: Annotated[list[float] | None, typer.Option(
        "--c", help=f"Regularisation strength to try (repeat) \\[default: {', '.join(map(str, C_VALUES))}].")] = None,
    head: Annotated[list[str] | None, typer.Option(
        help="Head to try (repeat): logistic (balanced logistic regression, each --c) or mlp \\[default: logistic].")] = None,
    concat: Annotated[bool, typer.Option(
        help="Also try the candidate layers side by side (their features concatenated).")] = False,
    calibrate: Annotated[bool, typer.Option(help="Calibrate the probabilities (Platt, 3 folds).")] = True,
    lr: Annotated[list[float] | None, typer.Option(
        help=f"--method lora: learning rate to try (repeat) \\[default: {', '.join(map(str, LRS))}].")] = None,
    rank: Annotated[int, typer.Option(help="--method lora: the adapters' rank.")] = 8,
    epochs: Annotated[int, typer.Option(help="--method lora: passes over the training rows.")] = 1,
    max_rows: Annotated[int | None, typer.Option(help="--method lora: train on at most this many rows (seeded draw).")] = None,
    max_length: Annotated[int | None, typer.Option(help="Tokens kept of each text \\[default: 256; lora 128].")] = None,
    batch_size: Annotated[int, typer.Option(help="Texts per forward pass.")] = 16,
    cache: Annotated[str | None, typer.Option(help="Feature cache folder \\[default: $AGENTLADDER_HOME/features].")] = None,
    seed: int = 0,
    overwrite: Annotated[bool, typer.Option(help="Replace a classifier already in --out.")] = False,
    quiet: QuietOption = False,
) -> None:
    """A classifier: a scikit-learn head on a frozen model's features (layer and C chosen on validation,
    probabilities calibrated), or a LoRA sequence-classification fine-tune (--method lora)."""
    label_list = [x.strip() for x in labels.split(",") if x.strip()] if labels else None
    if method == "lora":
        result = train_lora_classifier(
            data, out, model=model, validation=validation, task=task, labels=label_list, lrs=lr or LRS, rank=rank,
            epochs=epochs, max_rows=max_rows, max_length=max_length or 128, batch_size=batch_size, seed=seed,
            overwrite=overwrite, progress=not quiet)
        where = f"learning rate {result.c:g} chosen of {len(result.tried)}"
    elif method == "features":
        result = train_classifier(
            data, out, features=features, layers=layer or None, pooling=pooling, validation=validation, task=task,
            labels=label_list, c_values=c or C_VALUES, heads=head or ("logistic",), concat=concat, calibrate=calibrate, max_length=max_length or 256,
            batch_size=batch_size, cache_dir=cache, seed=seed, overwrite=overwrite, progress=not quiet)
        layer = result.layer if not isinstance(result.layer, list) else "+".join(map(str, result.layer))
        head_text = f"C {result.c}" if result.head == "logistic" else "the MLP head"
        where = ("" if layer is None else f"layer {layer}, ") + f"{head_text} chosen of {len(result.tried)}"
    else:
        raise ConfigError(f"--method {method!r}: choose features or lora")
    v = result.validation
    recall = ", ".join(f"{k} {x:.3f}" for k, x in v["recall"].items() if x is not None)
    stderr.print(f"[green]done[/]: {where} configurations on validation: "
                 f"accuracy {v['accuracy']:.3f}, macro-F1 {v['macro_f1']:.3f}, recall {recall} -> {result.out_dir}",
                 soft_wrap=True)


@train_app.command("embed")
@friendly_errors
def train_embed_command(
    data: Annotated[str, typer.Option(help="Training query file of a knowledge base (kb/train.jsonl).")],
    out: Annotated[str, typer.Option(help="Folder to write the tuned sentence-transformers model to.")],
    model: Annotated[str, typer.Option(
        help="Base encoder: minilm (the packaged all-MiniLM-L6-v2) or a sentence-transformers / Hugging Face folder.")] = "minilm",
    validation: Annotated[str | None, typer.Option(
        help="Query file that chooses the settings \\[default: validation.jsonl beside --data].")] = None,
    corpus: Annotated[str | None, typer.Option(help="The corpus \\[default: corpus.jsonl beside --data].")] = None,
    lr: Annotated[list[float] | None, typer.Option(
        help=f"Learning rate to try (repeat) \\[default: {', '.join(map(str, EMBED_LRS))}].")] = None,
    epochs: Annotated[int, typer.Option(help="Passes over the training queries.")] = 1,
    batch_size: Annotated[int, typer.Option(help="Queries per batch (each one's positive is the others' negative).")] = 32,
    hard_negatives: Annotated[int, typer.Option(help="Negatives per query mined with the base model (0: in-batch only).")] = 1,
    max_rows: Annotated[int | None, typer.Option(help="Train on at most this many queries (seeded draw).")] = None,
    seed: int = 0,
    registry: Annotated[str | None, typer.Option(
        help="Registry file the version is written to \\[default: $AGENTLADDER_DB, else agentladder.db].")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an embedder already in --out.")] = False,
    quiet: QuietOption = False,
) -> None:
    """Fine-tune an embedding model on a knowledge base (in-batch and mined hard negatives); the learning rate
    chosen on validation by recall@5; the result registered."""
    config = EmbedConfig(model=model, data=data, out_dir=out, validation=validation, corpus=corpus,
                         lrs=tuple(lr or EMBED_LRS), epochs=epochs, batch_size=batch_size, hard_negatives=hard_negatives,
                         max_rows=max_rows, seed=seed, overwrite=overwrite, progress=not quiet)
    result = train_embed(config)
    version = register_embedder(result, config, registry)
    v, b = result.validation, result.base_validation
    stderr.print(f"[green]done[/]: learning rate {result.learning_rate:g} chosen of {len(result.tried)} on validation: "
                 f"recall@5 {v['recall@5']:.3f} (base {b['recall@5']:.3f}), MRR {v['mrr']:.3f} (base {b['mrr']:.3f}) "
                 f"-> {result.out_dir}, registered as {version.id}", soft_wrap=True)


__all__ = ["train_app"]
