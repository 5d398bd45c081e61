"""What a training entry point arranges before ESPnet's trainer starts.

* The log: run by hand, training writes ``OUTPUT_DIR/train.log`` as well as the console; the
  console leaves out known-harmless dependency noise (:mod:`dispatch.recipe.joblog`), the log keeps
  it. Under the stage driver, whose job runner already sends stderr to that file, nothing changes.
* Steps per epoch: with ESPnet's chunk iterator ``num_iters_per_epoch`` counts *utterances*, each
  cut into ``(L - W) // S + 1`` chunks of ``W`` samples (shift ``S = W * chunk_shift_ratio``) and
  batched ``batch_size`` chunks at a time. The estimate is logged next to what was asked for.
* Progress: when ``--log_interval`` is not given, ESPnet logs every 100 steps under the chunk
  iterator (it cannot count its steps); here it becomes a tenth of an epoch, at most 10 steps on
  CPU and 100 on GPU, so a CPU run shows progress within a minute.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path
from typing import Dict, Optional, Tuple

from dispatch.recipe.joblog import ConsoleTee, install_console_tee
from dispatch.recipe.preflight import chunk_lengths, chunks_per_utterance, utterance_lengths


def estimate_steps(args: argparse.Namespace, lengths: Dict[str, int]) -> Tuple[Optional[int], str]:
    """(optimizer steps per epoch or None, a one-line account of how they come about)."""
    asked = getattr(args, "num_iters_per_epoch", None)
    batch = max(int(getattr(args, "batch_size", 1) or 1), 1)
    if getattr(args, "iterator_type", "sequence") != "chunk":
        if asked:
            return int(asked), f"{asked} (num_iters_per_epoch)"
        if not lengths:
            return None, "unknown (no shape file)"
        steps = math.ceil(len(lengths) / batch)
        return steps, f"about {steps} ({len(lengths)} utterances, batch_size {batch})"
    widths = chunk_lengths(args.chunk_length)
    per_utt = [chunks_per_utterance(n, widths, float(args.chunk_shift_ratio)) for n in lengths.values()]
    if not per_utt:
        return None, "unknown (no shape file)"
    utts = int(asked) if asked else len(per_utt)
    chunks = utts * sum(per_utt) / len(per_utt)
    steps = int(chunks // batch)
    text = (f"about {steps} ({utts} utterances x {chunks / max(utts, 1):.1f} chunks of "
            f"{args.chunk_length} samples / batch_size {batch})")
    if asked:
        text += (f"; num_iters_per_epoch {asked} was asked for, which ESPnet's chunk iterator "
                 "counts in utterances, not steps")
    return steps, text


def log_interval(steps: Optional[int], ngpu: int) -> int:
    """Steps between progress lines: a tenth of an epoch, at most 10 on CPU and 100 on GPU."""
    cap = 10 if ngpu == 0 else 100
    return max(1, min(cap, (steps or cap * 10) // 10))


def _same_file(stream, path: Path) -> bool:
    try:
        return path.exists() and os.path.samestat(os.fstat(stream.fileno()), os.stat(path))
    except (OSError, ValueError, AttributeError):
        return False


def attach_train_log(output_dir: str) -> Optional[Path]:
    """Send stderr to ``OUTPUT_DIR/train.log`` too (from when ESPnet creates OUTPUT_DIR, with
    everything written before), unless stderr already is that file or this process is not rank 0
    of an external launcher (torchrun sets ``RANK``)."""
    if os.environ.get("RANK", "0") != "0":  # an external launcher's other ranks: rank 0 writes the log
        return None
    path = Path(output_dir) / "train.log"
    tee = sys.stderr if isinstance(sys.stderr, ConsoleTee) else None
    if _same_file(tee.console if tee else sys.stderr, path):
        if tee is not None:  # the file is the log itself: keep everything, filter nothing
            sys.stderr = tee.detach()
        return None
    install_console_tee().attach(path, when_dir_exists=True)  # ESPnet makes the dir after its checks
    return path


def prepare_training(args: argparse.Namespace, prog: str) -> None:
    """The log file, the steps-per-epoch line and a sensible ``--log_interval`` for ``args``."""
    if getattr(args, "print_config", False) or not getattr(args, "output_dir", None):
        return
    attach_train_log(args.output_dir)
    shapes = list(getattr(args, "train_shape_file", None) or [])
    try:
        lengths = utterance_lengths("", shapes[0]) if shapes else {}
    except (OSError, ValueError):
        lengths = {}
    steps, text = estimate_steps(args, lengths)
    if getattr(args, "log_interval", None) is None:
        args.log_interval = log_interval(steps, int(getattr(args, "ngpu", 0) or 0))
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    print(f"[{os.uname()[1]}] {stamp} ({prog}) INFO: optimizer steps per epoch: {text}; "
          f"a progress line every {args.log_interval} steps (--log_interval)", file=sys.stderr)
