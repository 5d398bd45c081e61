"""Data preparation for your own data (egs/custom): mixtures of a clean-speech folder and a noise folder
(wav/flac, any sample rate, nested folders) in data/{train,valid,test}.

    python -m dispatch.bin.prep_custom --clean_dir /path/clean --noise_dir /path/noise --data_dir data \\
        --audio_dir downloads/custom [--fs 16000 --snr_low -5 --snr_high 15 --fractions 0.8,0.1,0.1
        --mixtures_per_clean 1 --max_duration 0 --seed 0 --nj 4]
"""
from __future__ import annotations

import argparse

from dispatch.data.custom import prepare_custom
from dispatch.data.mixing import MixConfig
from dispatch.data.preparation import comma_numbers, run_preparation
from dispatch.data.scp import DataError


def get_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clean_dir", default="", help="folder of clean speech (searched recursively)")
    p.add_argument("--noise_dir", default="", help="folder of noise (searched recursively)")
    p.add_argument("--data_dir", default="data", help="data dirs go to DATA_DIR/{train,valid,test}")
    p.add_argument("--audio_dir", default="downloads/custom", help="mixtures are written here")
    p.add_argument("--fs", type=int, default=16000, help="sample rate in Hz (input is resampled)")
    p.add_argument("--snr_low", type=float, default=-5.0, help="lowest SNR in dB")
    p.add_argument("--snr_high", type=float, default=15.0, help="highest SNR in dB")
    p.add_argument("--level", default="keep",
                   help="clean level: 'keep' (as recorded) or 'LOW,HIGH' in dBFS, e.g. -35,-15")
    p.add_argument("--fractions", default="0.8,0.1,0.1", help="train,valid,test shares of the clean files")
    p.add_argument("--mixtures_per_clean", type=int, default=1, help="mixtures made from each clean file")
    p.add_argument("--max_duration", type=float, default=0.0, help="crop longer clean files to this (s); 0 = no")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--write_noise", default="true", choices=["true", "false"], help="also write noise1.scp")
    p.add_argument("--nj", type=int, default=1, help="parallel processes (the output does not depend on it)")
    return p


def main(cmd: list[str] | None = None) -> int:
    """Prepare the data dirs; returns the exit status."""
    a = get_parser().parse_args(cmd)

    def prepare() -> dict:
        if a.snr_low > a.snr_high or a.mixtures_per_clean < 1 or a.max_duration < 0:
            raise DataError("need --snr_low <= --snr_high, --mixtures_per_clean >= 1 and --max_duration >= 0")
        level = None if a.level == "keep" else tuple(comma_numbers(a.level, "--level", 2))
        cfg = MixConfig(a.fs, (a.snr_low, a.snr_high), level, seed=a.seed, write_noise=a.write_noise == "true")
        return prepare_custom(a.clean_dir, a.noise_dir, a.data_dir, a.audio_dir, cfg,
                              comma_numbers(a.fractions, "--fractions", 3), a.mixtures_per_clean,
                              a.max_duration, max(1, a.nj))

    return run_preparation("custom data", a.data_dir, prepare)


if __name__ == "__main__":
    raise SystemExit(main())
