"""Data preparation for DNS Challenge 2020 (egs/dns_ins20): synthesised train/valid mixtures and the
synthetic no_reverb test set, in data/{train,valid,test}.

    python -m dispatch.bin.prep_dns --dns_root "${DNS2020}" --data_dir data --audio_dir downloads/dns \\
        [--train_hours 100 --valid_hours 1 --segment 10 --snr_low 0 --snr_high 40 --seed 0 --nj 4]
"""
from __future__ import annotations

import argparse

from dispatch.data.dns import prepare_dns
from dispatch.data.mixing import MixConfig
from dispatch.data.preparation import run_preparation
from dispatch.data.scp import DataError


def get_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dns_root", default="", help="corpus root (DNS2020 in db.sh)")
    p.add_argument("--data_dir", default="data", help="data dirs go to DATA_DIR/{train,valid,test}")
    p.add_argument("--audio_dir", default="downloads/dns", help="synthesised wav files go here")
    p.add_argument("--fs", type=int, default=16000, help="sample rate in Hz")
    p.add_argument("--train_hours", type=float, default=100.0, help="hours of training mixtures")
    p.add_argument("--valid_hours", type=float, default=1.0, help="hours of validation mixtures")
    p.add_argument("--segment", type=float, default=10.0, help="seconds per mixture")
    p.add_argument("--snr_low", type=float, default=0.0, help="lowest SNR in dB (challenge synthesizer: 0)")
    p.add_argument("--snr_high", type=float, default=40.0, help="highest SNR in dB (challenge synthesizer: 40)")
    p.add_argument("--level_low", type=float, default=-35.0, help="lowest clean level in dBFS")
    p.add_argument("--level_high", type=float, default=-15.0, help="highest clean level in dBFS")
    p.add_argument("--valid_fraction", type=float, default=0.02, help="share of clean/noise files kept for valid")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--write_noise", default="false", choices=["true", "false"], help="also write noise1.scp")
    p.add_argument("--nj", type=int, default=1, help="parallel processes (the output does not depend on it)")
    return p


def main(cmd: list[str] | None = None) -> int:
    """Prepare the data dirs; returns the exit status."""
    a = get_parser().parse_args(cmd)

    def prepare() -> dict:
        if a.snr_low > a.snr_high or a.level_low > a.level_high or a.segment <= 0:
            raise DataError("need --snr_low <= --snr_high, --level_low <= --level_high and --segment > 0")
        if not 0 < a.valid_fraction < 1:
            raise DataError(f"--valid_fraction must be between 0 and 1, got {a.valid_fraction}")
        cfg = MixConfig(a.fs, (a.snr_low, a.snr_high), (a.level_low, a.level_high), seed=a.seed,
                        write_noise=a.write_noise == "true")
        return prepare_dns(a.dns_root, a.data_dir, a.audio_dir, a.train_hours, a.valid_hours,
                           a.segment, cfg, a.valid_fraction, max(1, a.nj))

    return run_preparation("dns_ins20", a.data_dir, prepare)


if __name__ == "__main__":
    raise SystemExit(main())
