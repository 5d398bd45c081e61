"""The experiment layout: which systems an ``exp/`` folder holds, and where each one's files live.

This module is the one place that knows the folder names of doc/DESIGN.md ("Experiment
layout"); the recipe driver (through ``python -m dispatch.bin.query``), ``make_results`` and
``pack_student`` ask it instead of rebuilding paths.

Systems, each a folder ``exp/<system>/`` (or one folder per seed run, ``exp/<system>_seed<N>/``):

* ``noisy``          the unprocessed input, scored only (no folder of its own but its scores);
* ``teacher``        the frozen teacher, trained or imported;
* ``student_nokd``   the student trained without KD;
* ``kd_<config>``    one KD student per overlay; a sweep point is ``kd_<config>__<key><value>_...``.

A run folder holds ``config.yaml`` and model files (ESPnet's exp dir); a KD student also holds
``export/`` (``config.yaml`` + ``model.pth``: the student alone, the model that stock ESPnet
loads); every system gets ``enhanced_<test_set>/spk1.scp``, ``scoring_<test_set>/`` (``per_utt.csv``,
``summary.json``) and ``model_stats.json``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional

import yaml

from dispatch.utils.checkpoints import DEFAULT_MODEL_FILES

NOISY, TEACHER, NOKD = "noisy", "teacher", "student_nokd"
KD_PREFIX = "kd_"
#: Model files tried, in order, for a trained folder that is not a KD student.
MODEL_FILES = DEFAULT_MODEL_FILES + ("model.pth",)
SEED_RUN = re.compile(r"^(?P<system>.+)_seed(?P<seed>[0-9]+)$")


def split_seed(folder: str) -> tuple[str, Optional[int]]:
    """``"kd_x_seed2"`` -> ``("kd_x", 2)``; a folder without the suffix -> ``(folder, None)``."""
    m = SEED_RUN.match(folder)
    return (m["system"], int(m["seed"])) if m else (folder, None)


def system_of_folders(folders: Iterable[str]) -> list[str]:
    """The sorted system names behind run folders (``kd_x_seed0``, ``kd_x_seed1``, ``kd_y`` -> kd_x, kd_y)."""
    return sorted({split_seed(f)[0] for f in folders})


def glob_escape(text: str) -> str:
    """``text`` with glob's special characters matched literally."""
    return re.sub(r"([*?\[])", r"[\1]", text)


def seed_folders(exp_root: Path, system: str) -> dict[Optional[int], str]:
    """The run folders of ``system`` under ``exp_root``: ``{seed: folder}``, ordered by seed.

    Its ``<system>_seed<N>`` folders when there are any (a plain ``<system>`` folder next to them is
    then ignored), else ``{None: system}`` (which may not exist; the caller reports that).
    """
    seeded = {}
    if Path(exp_root).is_dir():
        for p in Path(exp_root).glob(f"{glob_escape(system)}_seed*"):
            name, seed = split_seed(p.name)
            if p.is_dir() and name == system and seed is not None:
                seeded[seed] = p.name
    return dict(sorted(seeded.items())) if seeded else {None: system}


@dataclass(frozen=True)
class RunFolder:
    """One run folder ``exp/<name>``: a system trained once, or one seed run of it."""

    exp_root: Path
    name: str

    @property
    def path(self) -> Path:
        return Path(self.exp_root) / self.name

    @property
    def config(self) -> Path:
        """The training config that ESPnet wrote (``config.yaml``)."""
        return self.path / "config.yaml"

    @property
    def export_dir(self) -> Path:
        """A KD student's export: the student alone, as a stock ESPnet exp dir."""
        return self.path / "export"

    @property
    def model_stats(self) -> Path:
        return self.path / "model_stats.json"

    def scoring_dir(self, test_set: str) -> Path:
        return self.path / f"scoring_{test_set}"

    def is_kd_student(self) -> bool:
        """A KD student: named ``kd_*`` (what the driver trains), or a folder trained by hand whose
        ``config.yaml`` names a ``kd_loss``."""
        if self.name.startswith(KD_PREFIX):
            return True
        if not self.config.is_file():
            return False
        try:
            options = yaml.safe_load(self.config.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            return False
        return isinstance(options, dict) and "kd_loss" in options

    def model_files(self, model_file: str) -> tuple[Path, Path]:
        """(config, weights) of the model that stock ESPnet loads, by name only (nothing is read
        but the config): a KD student's export, else ``config.yaml`` and ``model_file``."""
        if self.is_kd_student():
            return self.export_dir / "config.yaml", self.export_dir / "model.pth"
        return self.config, self.path / model_file

    def existing_model_files(self, model_file: Optional[str] = None) -> tuple[Path, Path]:
        """:meth:`model_files`, checked: the files are there. Without ``model_file``, the first of
        :data:`MODEL_FILES` present. Raises FileNotFoundError with a line on what to do."""
        if not self.config.is_file():
            raise FileNotFoundError(f"'{self.config}' does not exist: '{self.name}' is not a trained "
                                    f"system; list {self.exp_root} for the systems")
        if self.is_kd_student():
            weights = self.export_dir / "model.pth"
            if not weights.is_file():
                raise FileNotFoundError(f"'{weights}' is missing; export the student first: python "
                                        f"-m dispatch.bin.export_student {self.path} --out "
                                        f"{self.export_dir}")
            return self.export_dir / "config.yaml", weights
        names = [model_file] if model_file else list(MODEL_FILES)
        for name in names:
            if (self.path / name).is_file():
                return self.config, self.path / name
        raise FileNotFoundError(f"no model file in '{self.path}' (looked for {', '.join(names)}); "
                                "name one with --model_file")


class ExperimentLayout:
    """The systems of one ``exp/`` folder and their run folders."""

    def __init__(self, exp_root: Path, nokd: str = NOKD) -> None:
        self.exp_root = Path(exp_root)
        self.nokd = nokd

    def run(self, folder: str) -> RunFolder:
        return RunFolder(self.exp_root, folder)

    def runs(self, system: str) -> dict[Optional[int], RunFolder]:
        """``{seed: run folder}`` of ``system`` (``{None: exp/<system>}`` without seed runs)."""
        return {s: self.run(f) for s, f in seed_folders(self.exp_root, system).items()}

    def kd_folders(self) -> list[str]:
        """Every ``kd_*`` run folder (sweep points and seed runs each on their own), sorted."""
        if not self.exp_root.is_dir():
            return []
        return sorted(p.name for p in self.exp_root.glob(f"{KD_PREFIX}*") if p.is_dir())

    def kd_systems(self) -> list[str]:
        """The KD systems: ``kd_*`` folders with seed runs grouped, sorted."""
        return system_of_folders(self.kd_folders())

    def systems(self) -> list[str]:
        """The rows of RESULTS.md: noisy, teacher, the no-KD student, then every KD system."""
        return [NOISY, TEACHER, self.nokd, *self.kd_systems()]

    def test_sets(self) -> list[str]:
        """Every test set some system was scored on (``*/scoring_<test_set>`` folders), sorted."""
        found = {p.name[len("scoring_"):] for p in self.exp_root.glob("*/scoring_*") if p.is_dir()}
        return sorted(found)

    def model_files(self, folder: str, inference_model: str, teacher_model: str
                    ) -> tuple[Path, Path, Path, Path]:
        """What the driver's stages 7 and 8 use for one run folder:
        (trained config, trained weights, stock config, stock weights).

        The trained pair is ``config.yaml`` with ``teacher_model`` (the teacher) or
        ``inference_model`` (every student); the stock pair is what inference, scoring and the
        model figures load: the same for the teacher and the no-KD student, a KD student's export.
        """
        run = self.run(folder)
        name = teacher_model if folder == TEACHER else inference_model
        return (run.config, run.path / name, *run.model_files(name))
