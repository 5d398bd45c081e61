"""Data preparation for VoiceBank+DEMAND (egs/vctk_noisy): data/{train,valid,test} at --fs.

    python -m dispatch.bin.prep_vctk --vctk_root "${VCTK_NOISY}" --data_dir data \\
        --audio_dir downloads/vctk_16k [--fs 16000 --valid_spk p226,p287 --nj 4]
"""
from __future__ import annotations

import argparse

from dispatch.data.preparation import run_preparation
from dispatch.data.vctk import prepare_vctk


def get_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--vctk_root", default="", help="corpus root (VCTK_NOISY in db.sh)")
    p.add_argument("--data_dir", default="data", help="data dirs go to DATA_DIR/{train,valid,test}")
    p.add_argument("--audio_dir", default="downloads/vctk_16k", help="resampled wav files go here")
    p.add_argument("--fs", type=int, default=16000, help="target sample rate in Hz")
    p.add_argument("--valid_spk", default="p226,p287", help="comma-separated training speakers held out for valid")
    p.add_argument("--nj", type=int, default=1, help="parallel processes")
    return p


def main(cmd: list[str] | None = None) -> int:
    """Prepare the data dirs; returns the exit status."""
    a = get_parser().parse_args(cmd)
    valid = [s for s in a.valid_spk.split(",") if s]
    return run_preparation("vctk_noisy", a.data_dir, lambda: prepare_vctk(
        a.vctk_root, a.data_dir, a.audio_dir, a.fs, valid, max(1, a.nj)))


if __name__ == "__main__":
    raise SystemExit(main())
