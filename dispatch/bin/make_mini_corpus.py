"""Make the seeded synthetic mini corpus: data/{train,valid,test} with wav.scp, spk1.scp, noise1.scp,
utt2spk, spk2utt. Downloads nothing. Same options -> byte-identical files.

    python -m dispatch.bin.make_mini_corpus --data_dir data --audio_dir data/wav \\
        [--n_train 240 --n_valid 40 --n_test 30 --duration 2.0 --fs 16000 --seed 0 --nj 1]
"""
from __future__ import annotations

import argparse
import sys
import time

from dispatch.data.mini import MiniConfig, make_mini_corpus
from dispatch.data.scp import DataError


def get_parser() -> argparse.ArgumentParser:
    """Command-line options (defaults from MiniConfig)."""
    d = MiniConfig()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data_dir", default="data", help="data dirs go to DATA_DIR/{train,valid,test}")
    p.add_argument("--audio_dir", default="data/wav", help="wav files go to AUDIO_DIR/<set>/{noisy,clean,noise}")
    p.add_argument("--n_train", type=int, default=d.n_train, help="training utterances")
    p.add_argument("--n_valid", type=int, default=d.n_valid, help="validation utterances")
    p.add_argument("--n_test", type=int, default=d.n_test, help="test utterances")
    p.add_argument("--duration", type=float, default=d.duration, help="seconds per utterance")
    p.add_argument("--fs", type=int, default=d.fs, help="sample rate in Hz")
    p.add_argument("--seed", type=int, default=d.seed, help="random seed")
    p.add_argument("--n_speakers", type=int, default=d.n_speakers, help="number of target speakers")
    p.add_argument("--snr_low", type=float, default=d.snr_low, help="lowest SNR in dB")
    p.add_argument("--snr_high", type=float, default=d.snr_high, help="highest SNR in dB")
    p.add_argument("--nj", type=int, default=1, help="parallel processes (the output does not depend on it)")
    return p


def main(cmd: list[str] | None = None) -> int:
    """Generate the corpus; returns the exit status."""
    a = get_parser().parse_args(cmd)
    try:
        if min(a.n_train, a.n_valid, a.n_test) < 0 or a.duration < 0.5 or a.fs < 8000 or a.snr_low > a.snr_high:
            raise DataError("need set sizes >= 0, --duration >= 0.5 s, --fs >= 8000 and --snr_low <= --snr_high")
        if a.n_speakers < 1 or a.nj < 1:
            raise DataError("--n_speakers and --nj must be at least 1")
        cfg = MiniConfig(a.n_train, a.n_valid, a.n_test, a.duration, a.fs, a.seed, a.n_speakers,
                         snr_low=a.snr_low, snr_high=a.snr_high)
        start = time.time()
        sizes = make_mini_corpus(cfg, a.data_dir, a.audio_dir, nj=a.nj)
    except DataError as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return 1
    print(f"mini corpus in {a.data_dir}: " + ", ".join(f"{s} {n}" for s, n in sizes.items())
          + f" utterances of {a.duration} s ({time.time() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
