#!/usr/bin/env python3
"""Stage 4 (import): take an already-trained ESPnet enhancement teacher into ``exp/teacher``.

    python -m dispatch.bin.import_teacher SRC --out exp/teacher [--model_file valid.si_snr_loss.best.pth]

SRC is an ESPnet exp dir (``config.yaml`` + ``*.pth``, e.g. from stock ``enh.sh``), an export dir
of this toolkit (``config.yaml`` + ``model.pth``), or an ESPnet packed model (``.zip`` holding a
config and a ``.pth``). The weights are checked strictly against the config before anything is
written; the result is ``OUT/config.yaml`` and ``OUT/<model_file>``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Optional, Sequence, Tuple

from dispatch.utils.checkpoints import DEFAULT_CHECKPOINT, checkpoints_in
from dispatch.utils.io import atomic_write


def locate(src: Path, model_file: str, workdir: Path) -> Tuple[Path, Path]:
    """The (config.yaml, model.pth) pair inside SRC."""
    if src.is_file() and src.suffix == ".zip":
        with zipfile.ZipFile(src) as archive:
            archive.extractall(workdir)
        configs = sorted(workdir.rglob("config.yaml")) or sorted(workdir.rglob("*.yaml"))
        models = sorted(workdir.rglob("*.pth"))
        if not configs or not models:
            raise FileNotFoundError(f"'{src}' holds no config.yaml and .pth; is it an ESPnet packed enh model?")
        return configs[0], models[0]
    if not src.is_dir():
        raise FileNotFoundError(f"teacher dir '{src}' does not exist; set --teacher_dir to an ESPnet "
                                "enh exp dir, an export dir or a packed .zip")
    config = src / "config.yaml"
    for candidate in (src / model_file, src / "model.pth"):
        if config.is_file() and candidate.is_file():
            return config, candidate
    raise FileNotFoundError(f"'{src}' needs config.yaml and {model_file} (or model.pth); it has "
                            f"{checkpoints_in(src)}: set --teacher_model to one of them")


def import_teacher(src: Path, out: Path, model_file: str) -> None:
    from dispatch.models.teacher import load_teacher

    with tempfile.TemporaryDirectory() as tmp:
        config, model = locate(Path(src), model_file, Path(tmp))
        load_teacher(str(config), str(model))  # strict check, one-line error on mismatch
        out.mkdir(parents=True, exist_ok=True)
        atomic_write(out / "config.yaml", lambda p: shutil.copyfile(config, p))
        atomic_write(out / model_file, lambda p: shutil.copyfile(model, p))


def main(cmd: Optional[Sequence[str]] = None) -> None:
    from dispatch.models.teacher import DistillSetupError

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("src", type=Path,
                        help="the teacher: an ESPnet enh exp dir, an export dir or a packed .zip")
    parser.add_argument("--out", type=Path, required=True, help="where the teacher goes (exp/teacher)")
    parser.add_argument("--model_file", default=DEFAULT_CHECKPOINT,
                        help="the model file inside SRC, also its name under OUT (a stock ESPnet "
                        "teacher trained with the default criteria has valid.loss.best.pth)")
    args = parser.parse_args(cmd)
    try:
        import_teacher(args.src, args.out, args.model_file)
    except (FileNotFoundError, DistillSetupError, zipfile.BadZipFile) as exc:
        print(f"import_teacher: error: {exc}", file=sys.stderr)
        sys.exit(2)
    print(f"import_teacher: {args.out}/config.yaml and {args.out}/{args.model_file} are ready")


if __name__ == "__main__":
    main()
