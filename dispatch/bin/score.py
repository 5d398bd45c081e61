"""Score enhanced speech against clean references, one row per utterance.

    python -m dispatch.bin.score --ref_scp REF.scp --inf_scp INF.scp --out_dir OUT [--nj N] [--fs 16000]

Writes (atomically, also when interrupted, then flagged ``"partial": true``):
  OUT/per_utt.csv    utt_id, PESQ_WB, PESQ_NB, STOI, ESTOI, SI_SNR, SDR, CSIG, CBAK, COVL
                     [, DNSMOS_SIG, DNSMOS_BAK, DNSMOS_OVRL, DNSMOS_P808], error
  OUT/summary.json   the means of each metric over the utterances where it is defined, counts,
                     notes, and the failed utterances with their reasons
  OUT/errors.txt     ``utt_id<TAB>reason`` for every failed utterance or failed metric
Each failure is also one line on stderr.  STOI/ESTOI are in 0..1 (espnet writes percent).
The work is dispatch.metrics.scoring.score_scp_files.
"""
from __future__ import annotations

import argparse
from typing import Sequence

from dispatch.metrics.scoring import ScoringSetupError, score_scp_files


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ref_scp", required=True, help="clean references: 'utt_id path' lines")
    parser.add_argument("--inf_scp", required=True, help="estimates: 'utt_id path' lines")
    parser.add_argument("--out_dir", required=True, help="output folder")
    parser.add_argument("--nj", type=int, default=1, help="parallel worker processes")
    parser.add_argument("--fs", type=int, default=16000, help="expected sample rate (Hz)")
    parser.add_argument(
        "--dnsmos", choices=("auto", "on", "off"), default="auto",
        help="DNSMOS P.835: auto = when onnxruntime and the speechmos models are installed",
    )
    parser.add_argument(
        "--composite_pesq", choices=("wb", "nb_raw"), default="wb",
        help="PESQ inside CSIG/CBAK/COVL: wide-band MOS-LQO (common in VoiceBank papers) "
        "or raw P.862 (Hu & Loizou's original)",
    )
    parser.add_argument("--no_progress", action="store_true", help="no progress bar")
    return parser


def main(cmd: Sequence[str] | None = None) -> dict:
    """Run scoring; returns the summary dict (also written to OUT/summary.json)."""
    args = get_parser().parse_args(cmd)
    try:
        return score_scp_files(args.ref_scp, args.inf_scp, args.out_dir, args.nj, args.fs,
                               args.dnsmos, args.composite_pesq, progress=not args.no_progress)
    except ScoringSetupError as exc:
        raise SystemExit(f"score.py: {exc}") from None


if __name__ == "__main__":
    main()
