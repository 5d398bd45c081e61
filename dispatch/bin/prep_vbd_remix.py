"""Data preparation of egs/vbd_remix: VoiceBank+DEMAND noisy/clean pairs remixed into train/valid/test
sets that share no utterance and no noise (see dispatch.data.vbd_remix).

    python -m dispatch.bin.prep_vbd_remix --pairs_dir /path/to/pairs --data_dir data \\
        --audio_dir downloads/vbd_remix [--fractions 0.6,0.1,0.3 --mixtures 16,4,2 --snr_low -5 --snr_high 10]
"""
from __future__ import annotations

import argparse

from dispatch.data.mixing import MixConfig
from dispatch.data.preparation import comma_numbers, run_preparation
from dispatch.data.scp import DataError
from dispatch.data.vbd_remix import SETS, prepare_vbd_remix


def get_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pairs_dir", default="", help="folder with noisy/ and clean/ wavs of the same names")
    p.add_argument("--data_dir", default="data", help="data dirs go to DATA_DIR/{train,valid,test}")
    p.add_argument("--audio_dir", default="downloads/vbd_remix", help="mixtures and noises are written here")
    p.add_argument("--fs", type=int, default=16000, help="sample rate in Hz (input is resampled)")
    p.add_argument("--snr_low", type=float, default=-5.0, help="lowest SNR of a remix in dB")
    p.add_argument("--snr_high", type=float, default=10.0, help="highest SNR of a remix in dB")
    p.add_argument("--fractions", default="0.6,0.1,0.3", help="train,valid,test shares of the pairs")
    p.add_argument("--mixtures", default="16,4,2",
                   help="remixes per clean utterance in train,valid,test (test also keeps the recorded pair)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the split and the remixes")
    p.add_argument("--nj", type=int, default=1, help="parallel processes (the output does not depend on it)")
    return p


def main(cmd: list[str] | None = None) -> int:
    """Prepare the data dirs; returns the exit status."""
    a = get_parser().parse_args(cmd)

    def prepare() -> dict:
        fractions = comma_numbers(a.fractions, "--fractions", 3)
        mixtures = comma_numbers(a.mixtures, "--mixtures", 3, int)
        if min(mixtures) < 0 or a.snr_low > a.snr_high:
            raise DataError("need --mixtures of at least 0 each and --snr_low <= --snr_high")
        cfg = MixConfig(a.fs, (a.snr_low, a.snr_high), None, seed=a.seed, write_noise=True)
        return prepare_vbd_remix(a.pairs_dir, a.data_dir, a.audio_dir, cfg, fractions,
                                 dict(zip(SETS, mixtures)), max(1, a.nj))

    return run_preparation("vbd_remix data", a.data_dir, prepare)


if __name__ == "__main__":
    raise SystemExit(main())
