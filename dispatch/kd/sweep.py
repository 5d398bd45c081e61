"""KD option sweeps: one KD overlay per grid point of ``--kd_sweep``, named after its values.

A sweep spec is whitespace-separated ``key=v1,v2,...`` items, e.g. ``"kd_weight=1,10,100 k=0.5,0.8"``.
Over a base overlay ``conf/kd/mssp_dfkd.yaml`` it gives the Cartesian product of the values, in the
order written (the last key varies fastest), one overlay per point::

    mssp_dfkd__kd_weight1_k0.5.yaml   mssp_dfkd__kd_weight1_k0.8.yaml   ...   mssp_dfkd__kd_weight100_k0.8.yaml

which the recipe driver trains as ``exp/kd_mssp_dfkd__kd_weight1_k0.5`` and so on.

Where a key goes (:func:`resolve_key`), first match wins:
  1. a dotted key is an explicit path: ``kd_loss_conf.k`` sets ``kd_loss_conf: {k: ...}``;
  2. a key the overlay already sets at its top level (``kd_weight``) stays there, and a key already in
     its ``kd_loss_conf`` (``k``, ``patch_bins``, ...) goes there; a key in both is an error;
  3. a keyword argument of the overlay's ``kd_loss`` class (see :func:`dispatch.kd.accepted_conf_keys`)
     goes into ``kd_loss_conf``;
  4. any other ``kd_*`` key is a top-level KD training option (``kd_weight``, ...);
  5. anything else is an error: an overlay never changes the student it is compared against.
Values are read as YAML scalars (``10`` an int, ``0.5`` a float, ``true`` a bool, ``adaptive`` a string);
names use the values as written. Every point's ``kd_loss_conf`` is checked by building the loss, so a bad
value stops the sweep before any training.
"""

from __future__ import annotations

import copy
import itertools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import yaml

from dispatch.utils.io import atomic_write_text

NAME_SEPARATOR = "__"  # between the base overlay's name and the point's values
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


@dataclass(frozen=True)
class SweepAxis:
    """One swept option: its key as written and its values (as written, and parsed)."""

    key: str
    texts: tuple[str, ...]
    values: tuple[object, ...]


def parse_sweep(spec: str) -> list[SweepAxis]:
    """``"kd_weight=1,10 k=0.5,0.8"`` -> one :class:`SweepAxis` per key; a bad spec raises ValueError."""
    axes: list[SweepAxis] = []
    for item in spec.split():
        key, sep, values = item.partition("=")
        texts = tuple(v.strip() for v in values.split(","))
        if not sep or not _KEY.match(key) or not all(texts):
            raise ValueError(f"kd_sweep item {item!r} is not key=v1,v2,... "
                             "(e.g. --kd_sweep \"kd_weight=1,10,100 k=0.5,0.8\")")
        if any(a.key == key for a in axes):
            raise ValueError(f"kd_sweep sets {key!r} twice; give all its values in one item ({key}=a,b,c)")
        if len(set(texts)) != len(texts):
            raise ValueError(f"kd_sweep item {item!r} repeats a value")
        axes.append(SweepAxis(key, texts, tuple(_scalar(t, item) for t in texts)))
    if not axes:
        raise ValueError("kd_sweep is empty; give key=v1,v2,... items, e.g. \"kd_weight=1,10,100\"")
    return axes


def _scalar(text: str, item: str) -> object:
    """A value as YAML reads it; lists and mappings are not sweep values."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        value = None
    if value is None or isinstance(value, (list, dict)):
        raise ValueError(f"kd_sweep item {item!r}: value {text!r} is not a number, word or true/false")
    return value


def resolve_key(key: str, overlay: dict, overlay_name: str = "overlay") -> tuple[str, ...]:
    """The path of ``key`` inside ``overlay``: ``("kd_weight",)`` or ``("kd_loss_conf", "k")``."""
    if "." in key:
        return tuple(key.split("."))
    conf = overlay.get("kd_loss_conf") or {}
    if key in overlay and key in conf:
        raise ValueError(f"kd_sweep key {key!r} is both a top-level option and a kd_loss_conf key of "
                         f"{overlay_name}; write {key}=... as kd_loss_conf.{key}=... or keep one of them")
    if key in overlay:
        return (key,)
    if key in conf:
        return ("kd_loss_conf", key)
    from dispatch.kd.registry import KD_LOSSES, accepted_conf_keys

    loss = overlay.get("kd_loss")
    accepted = accepted_conf_keys(loss) if loss in KD_LOSSES else []
    if key in accepted:
        return ("kd_loss_conf", key)
    if key.startswith("kd_"):
        return (key,)
    raise ValueError(f"kd_sweep key {key!r} is neither a KD training option (kd_weight, ...) nor a "
                     f"kd_loss_conf key of kd_loss {loss!r} in {overlay_name} (accepted: "
                     f"{', '.join(accepted) or 'none'}); other training options belong in the student config")


def point_name(axes: Sequence[SweepAxis], texts: Sequence[str]) -> str:
    """``kd_weight10_k0.5``: each key (dots as ``-``) followed by its value as written."""
    parts = []
    for axis, text in zip(axes, texts):
        safe = re.sub(r"[^A-Za-z0-9.+-]", "-", text)
        parts.append(axis.key.replace(".", "-") + safe)
    return "_".join(parts)


def _set_path(data: dict, path: Sequence[str], value: object, overlay_name: str) -> None:
    node = data
    for part in path[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ValueError(f"kd_sweep key {'.'.join(path)!r}: {part!r} in {overlay_name} is not a mapping")
        node = child
    node[path[-1]] = value


@dataclass
class SweepPoint:
    """One grid point of a base overlay: its name, its settings as written, and the overlay itself."""

    name: str
    settings: str
    overlay: dict


def expand_overlay(overlay: dict, axes: Sequence[SweepAxis], overlay_name: str = "overlay"
                   ) -> list[SweepPoint]:
    """Every grid point of ``axes`` applied to ``overlay``, in grid order."""
    paths = [resolve_key(a.key, overlay, overlay_name) for a in axes]
    points = []
    for combo in itertools.product(*(range(len(a.values)) for a in axes)):
        point = copy.deepcopy(overlay)
        for axis, path, i in zip(axes, paths, combo):
            _set_path(point, path, axis.values[i], overlay_name)
        texts = [a.texts[i] for a, i in zip(axes, combo)]
        settings = ", ".join(f"{a.key}={t}" for a, t in zip(axes, texts))
        _check_point(point, f"{overlay_name} with {settings}")
        points.append(SweepPoint(point_name(axes, texts), settings, point))
    names = [p.name for p in points]
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash:
        raise ValueError(f"kd_sweep gives two points the name {clash[0]!r}; use values that differ "
                         "in letters, digits, '.', '+' or '-'")
    return points


def _check_point(overlay: dict, where: str) -> None:
    """Build the point's KD loss once, so a bad value fails here rather than in a training job."""
    from dispatch.kd.registry import build_kd_loss

    conf = overlay.get("kd_loss_conf") or {}
    if not isinstance(conf, dict):
        raise ValueError(f"{where}: kd_loss_conf is not a mapping")
    try:
        build_kd_loss(str(overlay.get("kd_loss")), **conf)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: {str(exc).splitlines()[0]}") from None


def write_sweep(base_overlays: Sequence[Path], spec: str, out_dir: Path, dry_run: bool = False
                ) -> list[Path]:
    """Write ``out_dir/<base>__<point>.yaml`` for every base overlay and grid point; return the paths.

    ``dry_run`` computes and checks the same paths without writing anything.
    """
    if not base_overlays:
        raise ValueError("kd_sweep needs at least one base KD overlay in --kd_configs")
    axes = parse_sweep(spec)
    bases = [Path(p).name.rsplit(".", 1)[0] for p in base_overlays]
    twice = sorted({b for b in bases if bases.count(b) > 1})
    if twice:
        raise ValueError(f"kd_configs has two overlays named {twice[0]!r}; swept students would share "
                         "a directory, so rename one")
    out: list[Path] = []
    for path, base in zip(base_overlays, bases):
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"KD overlay {path} does not exist; check --kd_configs")
        try:
            overlay = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ValueError(f"KD overlay {path} is not valid YAML ({str(exc).splitlines()[0]})") from None
        if not isinstance(overlay, dict):
            raise ValueError(f"KD overlay {path} is not a YAML mapping")
        for point in expand_overlay(overlay, axes, str(path)):
            target = Path(out_dir) / f"{base}{NAME_SEPARATOR}{point.name}.yaml"
            if not dry_run:
                header = f"# {path} with {point.settings} (written by dispatch.bin.kd_sweep)\n"
                atomic_write_text(target, header + yaml.safe_dump(point.overlay, sort_keys=False))
            out.append(target)
    return out
