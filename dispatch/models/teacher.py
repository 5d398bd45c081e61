"""The teacher's room: loading any ESPnet enhancement model, the teacher's checks, setup errors.

One loader serves every caller that turns a config (and optionally a weights file) into a model:
the distillation task's frozen teacher (:func:`load_teacher`), the teacher-output cache, model
figures (``dispatch.bin.model_stats``), the step benchmark, the patch plot, ``import_teacher``,
``list_modules``, ``export_student`` and the deployment loaders (``dispatch.deploy.loading``)::

    model = build_enh_model("exp/teacher/config.yaml", "exp/teacher/valid.loss.best.pth")

* the config is a YAML path or a mapping; options it lacks take ESPnet's defaults, so a recipe's
  partial config builds as well as the full ``config.yaml`` ESPnet writes;
* the toolkit's extra separators (``separator: uformer``) are registered on import of this package;
* weights are read with ``weights_only`` (:func:`dispatch.utils.weights.load_weights`: a downloaded
  file cannot run code), an ESPnet ``checkpoint.pth`` is reduced to its ``model`` state, and they
  are loaded strictly: a mismatch is a :class:`WeightsMismatchError` that names the keys.

Each caller phrases a failure for its own user: the task turns them into :class:`DistillSetupError`
(one line, exit status 2 in ``enh_distill_train``), ``dispatch.deploy`` into its ``ModelLoadError``.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch
import yaml

from dispatch.utils.checkpoints import checkpoints_in
from dispatch.utils.weights import UnsafeWeightsError, load_weights, model_state

PathLike = Union[str, os.PathLike]
ConfigLike = Union[PathLike, Mapping[str, Any]]
#: ESPnet's ``--sample_rate`` default, assumed for a teacher whose config does not record its rate.
ESPNET_DEFAULT_FS = 8000


class DistillSetupError(ValueError):
    """A configuration problem found at start-up; its message is one line for the user."""


class EnhModelError(ValueError):
    """An ESPnet enhancement model that cannot be built or cannot take its weights.

    ``str()`` is one line for the user; ``detail`` is the same without the file names, for a
    caller that says it in its own words.
    """

    def __init__(self, message: str, detail: Optional[str] = None):
        super().__init__(message)
        self.detail = detail if detail is not None else message


class ConfigError(EnhModelError):
    """The config cannot be read, or ESPnet cannot build a model from it."""


class WeightsMismatchError(EnhModelError):
    """The weights do not fit the model of the config (missing, unexpected or reshaped keys)."""


def short_list(names: Sequence[str], limit: int = 2) -> str:
    """The first ``limit`` names and how many more: keeps setup errors to one short line."""
    names = list(names)
    more = f", ... ({len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def first_line(exc: BaseException, limit: int = 160) -> str:
    """The first line of an exception's message (its type when it has none), cut at ``limit``."""
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:limit]


# ----------------------------------------------------------------------------- building


def read_config(config: ConfigLike) -> Dict[str, Any]:
    """A config given as a YAML path or as a mapping, as a new dict; ConfigError if unreadable."""
    if isinstance(config, Mapping):
        return dict(config)
    if not Path(config).is_file():
        raise ConfigError(f"config '{config}' does not exist", "it does not exist")
    try:
        loaded = yaml.safe_load(Path(config).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read config '{config}' ({first_line(exc)})",
                          first_line(exc)) from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"'{config}' is not a YAML mapping", "it is not a YAML mapping")
    return loaded


def enh_options(config: Union[ConfigLike, argparse.Namespace]) -> argparse.Namespace:
    """ESPnet's enhancement training options, every default filled in, overridden by ``config``
    (a Namespace is taken as already complete)."""
    from espnet2.tasks.enh import EnhancementTask

    if isinstance(config, argparse.Namespace):
        return config
    options = vars(EnhancementTask.get_parser().parse_args([]))
    options.update(read_config(config))
    return argparse.Namespace(**options)


def weights_mismatch(model: torch.nn.Module, state: Mapping[str, Any]) -> List[str]:
    """What keeps ``state`` from loading strictly into ``model``: one phrase per kind of problem
    (missing keys, unexpected keys, shape mismatch); empty when it fits."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shape = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
             for k, v in expected.items()
             if k in state and tuple(getattr(state[k], "shape", v.shape)) != tuple(v.shape)]
    problems = []
    if missing:
        problems.append(f"missing keys: {short_list(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {short_list(unexpected)}")
    if shape:
        problems.append(f"shape mismatch (file vs config): {short_list(shape)}")
    return problems


def load_state_strictly(model: torch.nn.Module, weights: Any) -> torch.nn.Module:
    """Load ``weights`` (a state dict or an ESPnet checkpoint) into ``model``; WeightsMismatchError
    names the keys that do not fit."""
    state = model_state(weights)
    if not isinstance(state, Mapping):
        raise WeightsMismatchError("the model file holds no state dict", "it holds no state dict")
    problems = weights_mismatch(model, state)
    if problems:
        detail = "; ".join(problems)
        raise WeightsMismatchError(f"the weights do not fit the config ({detail})", detail)
    model.load_state_dict(state, strict=True)
    return model


def build_enh_model(config: Union[ConfigLike, argparse.Namespace], weights: Any = None
                    ) -> torch.nn.Module:
    """An ESPnet enhancement model from ``config`` (YAML path, mapping or :func:`enh_options`;
    ESPnet's defaults fill in what it lacks), on CPU in training mode.

    ``weights``: None (random initialisation), a ``.pth`` path (read with ``weights_only``; an
    UnsafeWeightsError says why a file is refused) or loaded weights; loaded strictly.
    """
    from espnet2.tasks.enh import EnhancementTask

    options = enh_options(config)
    try:
        model = EnhancementTask.build_model(options)
    except Exception as exc:  # noqa: BLE001 - any failure to build is the config's fault
        where = f"'{config}'" if isinstance(config, (str, os.PathLike)) else "the config"
        raise ConfigError(f"cannot build an ESPnet enh model from {where}: {first_line(exc)}",
                          first_line(exc)) from None
    if weights is None:
        return model
    if isinstance(weights, (str, os.PathLike)):
        weights = load_weights(weights)
    return load_state_strictly(model, weights)


# ----------------------------------------------------------------------------- the teacher


def load_teacher(config: Optional[PathLike], model_file: Optional[PathLike], device: str = "cpu"
                 ) -> Tuple[torch.nn.Module, argparse.Namespace]:
    """(the teacher on ``device``, its options) from its ``config.yaml`` and weights file.

    Every problem is a DistillSetupError of one line naming the option to change: a missing file,
    a config ESPnet cannot build, a refused weights file, weights that do not fit the config.
    """
    if config is None:
        raise DistillSetupError("--teacher_config is required: pass the teacher's config.yaml")
    if not Path(config).is_file():
        raise DistillSetupError(
            f"teacher config '{config}' does not exist: pass --teacher_config with the "
            "config.yaml of a trained ESPnet enh model")
    try:
        options = enh_options(config)
        teacher = build_enh_model(options)
    except ConfigError as exc:
        raise DistillSetupError(f"cannot build the teacher from '{config}': {exc.detail}; "
                                "check that it is an ESPnet enh config.yaml") from None
    if model_file is None:
        raise DistillSetupError("--teacher_model_file is required: pass the teacher's .pth")
    if not Path(model_file).is_file():
        raise DistillSetupError(
            f"teacher model file '{model_file}' does not exist: pass --teacher_model_file "
            f"with one of the .pth files next to it ({checkpoints_in(Path(model_file).parent)})")
    try:
        load_state_strictly(teacher, load_weights(model_file))
    except UnsafeWeightsError as exc:
        raise DistillSetupError(f"--teacher_model_file: {exc}") from None
    except WeightsMismatchError as exc:
        raise DistillSetupError(
            f"teacher model file '{model_file}' does not match config '{config}' ({exc.detail}); "
            "pass the .pth that was trained with this config") from None
    return teacher.to(device), options


def teacher_sample_rate(args: argparse.Namespace, teacher_args: argparse.Namespace) -> int:
    """The teacher's rate: ``--teacher_fs`` when given, else ``sample_rate`` in its config."""
    if getattr(args, "teacher_fs", None) is not None:
        return int(args.teacher_fs)
    return int(getattr(teacher_args, "sample_rate", ESPNET_DEFAULT_FS))


def check_teacher_sample_rate(args: argparse.Namespace, teacher_args: argparse.Namespace) -> int:
    """The teacher's sample rate; DistillSetupError when it is not the student's ``sample_rate``."""
    fs_teacher = teacher_sample_rate(args, teacher_args)
    fs_student = int(getattr(args, "sample_rate", ESPNET_DEFAULT_FS))
    if fs_teacher != fs_student:
        raise DistillSetupError(
            f"teacher sample rate {fs_teacher} Hz differs from the student's "
            f"--sample_rate {fs_student} Hz: use a teacher trained at {fs_student} Hz "
            "(or pass --teacher_fs if the teacher's config records the wrong rate)")
    return fs_teacher
