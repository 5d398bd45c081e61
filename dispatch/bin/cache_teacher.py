#!/usr/bin/env python3
"""Teacher-output cache: run the frozen teacher once per training utterance and store its estimate.

    python -m dispatch.bin.cache_teacher --teacher_config T.yaml --teacher_model_file T.pth \
        --data_dir dump/raw/train --out_dir exp/teacher_cache/train [--ngpu 0] [--batch_size 1]

Writes, each atomically (temporary names, then renamed):

``OUT/teacher.ark``      the estimates, float32 vectors [L] (Kaldi ark, kaldiio)
``OUT/teacher1.scp``     ``utt_id OUT/teacher.ark:offset``
``OUT/teacher1_shape``   ``utt_id L`` (checked against the mixture at training start-up)
``OUT/cache_info.json``  teacher files, data dir, sample rate

The estimate is the one ``ESPnetEnhDistillModel`` reads online (ESPnet's forward, read at
``forward_loss``), computed on the *whole* utterance. ``--batch_size 1`` (default) is exact; a larger
batch zero-pads shorter utterances, which changes the output of models with utterance-level
normalisation. KD training reads the cache as one more data stream::

    --train_data_path_and_name_and_type OUT/teacher1.scp,teacher_ref1,kaldi_ark

(``kaldi_ark`` loads float vectors as they are; ESPnet's chunk iterator cuts every stream of an
utterance with the same window, so chunks of ``teacher_ref1`` stay aligned with the mixture and the
reference.) Validation batches have no ``teacher_ref1`` and run the teacher online.

The cache is refused at start-up (:func:`check_teacher_cache`) when it cannot be valid: augmentation
or preprocessing that changes the mixture (``preprocessor: dynamic_mixing``, or ``enh`` with
``rir_scp``, ``noise_scp``, ``speech_volume_normalize`` or ``speech_segment``), a speed-perturbed
train set (directory name ending in ``_sp``), utterances missing from the cache, a cached length
different from the mixture's, or ``kd_loss: atkl`` (it needs the teacher's features).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch

from dispatch.data.scp import read_scp_dict
from dispatch.utils.io import atomic_write, atomic_write_text

CACHE_NAME = "teacher_ref1"
AUGMENTING_OPTIONS = ("rir_scp", "noise_scp", "speech_volume_normalize", "speech_segment")


# ----------------------------------------------------------------------------- writing the cache


def batches(items: List[str], size: int) -> Iterator[List[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def teacher_estimates(teacher: torch.nn.Module, waves: List[np.ndarray], device: str
                      ) -> List[np.ndarray]:
    """The teacher's estimate of every waveform (zero-padded into one batch).  -> list of [L_i]"""
    from dispatch.models.enh_distill import capture_estimate

    lengths = torch.tensor([len(w) for w in waves])  # [B]
    mix = torch.zeros(len(waves), int(lengths.max()))  # [B, L]
    for i, wave in enumerate(waves):
        mix[i, :len(wave)] = torch.from_numpy(wave)
    mix, lengths = mix.to(device), lengths.to(device)
    with torch.no_grad(), capture_estimate(teacher) as cap:
        teacher(mix, lengths, speech_ref1=torch.zeros_like(mix))
    estimate = cap.speech_pre[0].float().cpu()  # [B, L']
    out = []
    for i, wave in enumerate(waves):
        est = np.zeros(len(wave), dtype=np.float32)  # an estimate shorter than L is zero-padded
        n = min(len(wave), estimate.shape[-1])
        est[:n] = estimate[i, :n].numpy()
        out.append(est)
    return out


def write_cache(out_dir: Path, estimates: Iterator[Tuple[str, np.ndarray]]) -> int:
    """Write teacher.ark, teacher1.scp and teacher1_shape under ``out_dir`` atomically."""
    import kaldiio

    out_dir.mkdir(parents=True, exist_ok=True)
    ark, scp, shape = out_dir / "teacher.ark", out_dir / "teacher1.scp", out_dir / "teacher1_shape"
    scp_lines, shape_lines = [], []

    def write_ark(tmp: str) -> None:
        with open(tmp, "wb") as f:
            for utt, est in estimates:
                start = f.tell()
                kaldiio.save_ark(f, {utt: est.astype(np.float32)}, scp=None)
                # the header is "utt " then the binary marker: data starts after the key and a space
                scp_lines.append(f"{utt} {ark}:{start + len(utt.encode()) + 1}")
                shape_lines.append(f"{utt} {len(est)}")

    atomic_write(ark, write_ark)
    for path, lines in ((scp, scp_lines), (shape, shape_lines)):
        atomic_write_text(path, "\n".join(lines) + "\n")
    return len(scp_lines)


def cache_teacher(teacher_config: str, teacher_model_file: str, data_dir: str, out_dir: str,
                  ngpu: int = 0, batch_size: int = 1) -> int:
    """Compute and store the teacher's estimate of every utterance of ``data_dir/wav.scp``."""
    from espnet2.fileio.sound_scp import SoundScpReader

    from dispatch.tasks.enh_distill import load_teacher, teacher_sample_rate

    device = "cuda" if ngpu > 0 else "cpu"
    teacher, teacher_args = load_teacher(teacher_config, teacher_model_file, device)
    teacher.eval()
    wav_scp = Path(data_dir) / "wav.scp"
    if not wav_scp.is_file():
        raise SystemExit(f"cache_teacher: error: {wav_scp} does not exist (pass --data_dir with "
                         "a Kaldi-style data dir holding wav.scp)")
    reader = SoundScpReader(str(wav_scp), dtype="float32", always_2d=False)
    utts = sorted(read_scp_dict(wav_scp))

    def estimates() -> Iterator[Tuple[str, np.ndarray]]:
        for group in batches(utts, max(1, batch_size)):
            waves = [np.asarray(reader[u][1], dtype=np.float32) for u in group]
            if any(w.ndim != 1 for w in waves):
                raise SystemExit("cache_teacher: error: multi-channel mixtures are not supported")
            yield from zip(group, teacher_estimates(teacher, waves, device))

    out = Path(out_dir)
    count = write_cache(out, estimates())
    info = {"teacher_config": str(teacher_config), "teacher_model_file": str(teacher_model_file),
            "data_dir": str(data_dir), "fs": teacher_sample_rate(argparse.Namespace(),
                                                                  teacher_args),
            "utterances": count, "batch_size": batch_size}
    atomic_write_text(out / "cache_info.json", json.dumps(info, indent=2) + "\n")
    return count


# ----------------------------------------------------------------------------- start-up checks


def cache_stream(args: argparse.Namespace) -> Optional[Tuple[str, str, str]]:
    """The (path, name, type) of the ``teacher_ref1`` train stream, or None."""
    for entry in getattr(args, "train_data_path_and_name_and_type", None) or []:
        if len(entry) >= 2 and entry[1] == CACHE_NAME:
            return tuple(entry)
    return None


def _first_int(text: str) -> int:
    return int(text.split(",")[0])


def mixture_lengths(args: argparse.Namespace, mix_scp: str) -> Dict[str, int]:
    """Mixture length of every train utterance: the speech_mix shape file, else the wav headers."""
    for shape_file in getattr(args, "train_shape_file", None) or []:
        if Path(shape_file).name.startswith("speech_mix") and Path(shape_file).is_file():
            return {u: _first_int(v) for u, v in read_scp_dict(Path(shape_file)).items()}
    from dispatch.bin.collect_shapes import num_samples

    return {u: num_samples(p) for u, p in read_scp_dict(Path(mix_scp)).items()}


def cached_lengths(cache_scp: str) -> Dict[str, int]:
    shape = Path(cache_scp).parent / "teacher1_shape"
    if shape.is_file():
        return {u: _first_int(v) for u, v in read_scp_dict(shape).items()}
    import kaldiio

    return {u: len(kaldiio.load_mat(p)) for u, p in read_scp_dict(Path(cache_scp)).items()}


def check_teacher_cache(args: argparse.Namespace) -> None:
    """Refuse (``DistillSetupError``, one line) a teacher cache that cannot be valid for ``args``."""
    from dispatch.tasks.enh_distill import DistillSetupError

    stream = cache_stream(args)
    if stream is None:
        return
    cache_scp = stream[0]
    prefix = f"teacher cache '{cache_scp}' cannot be used: "
    if getattr(args, "kd_loss", None) == "atkl":
        raise DistillSetupError(prefix + "kd_loss atkl needs the teacher's intermediate features, "
                                "which a cache of its outputs does not hold; drop the "
                                f"{CACHE_NAME} stream to run the teacher online")
    preprocessor = getattr(args, "preprocessor", None)
    if preprocessor == "dynamic_mixing":
        raise DistillSetupError(prefix + "preprocessor dynamic_mixing makes new mixtures every "
                                "epoch; drop the cache stream or the dynamic mixing")
    if preprocessor is not None:
        conf = dict(getattr(args, "preprocessor_conf", None) or {})
        for option in AUGMENTING_OPTIONS:
            value = conf.get(option, getattr(args, option, None))
            if value not in (None, False, "", "none"):
                raise DistillSetupError(prefix + f"the {preprocessor} preprocessor changes the "
                                        f"mixture ({option}: {value}); turn it off or drop the cache")
    mix = [e for e in args.train_data_path_and_name_and_type if e[1] == "speech_mix"]
    for entry in args.train_data_path_and_name_and_type:
        if entry[1] != CACHE_NAME and Path(entry[0]).parent.name.endswith("_sp"):
            raise DistillSetupError(prefix + f"the train set '{Path(entry[0]).parent}' is speed "
                                    "perturbed (_sp); cache the teacher on that set's own "
                                    "utterances without perturbation, or drop the cache")
    if not Path(cache_scp).is_file():
        raise DistillSetupError(prefix + "the file does not exist; run dispatch.bin.cache_teacher")
    if not mix:
        return
    want = mixture_lengths(args, mix[0][0])
    have = cached_lengths(cache_scp)
    missing = sorted(set(want) - set(have))
    if missing:
        raise DistillSetupError(prefix + f"{len(missing)} of {len(want)} train utterances are not "
                                f"in it (e.g. {', '.join(missing[:3])}); re-run "
                                "dispatch.bin.cache_teacher on this train set")
    wrong = sorted(u for u in want if have[u] != want[u])
    if wrong:
        u = wrong[0]
        raise DistillSetupError(prefix + f"{len(wrong)} cached lengths differ from the mixture's "
                                f"(e.g. {u}: cached {have[u]}, mixture {want[u]} samples); "
                                "re-run dispatch.bin.cache_teacher on this train set")


# ----------------------------------------------------------------------------- entry point


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher_config", required=True, help="the teacher's config.yaml")
    parser.add_argument("--teacher_model_file", required=True, help="the teacher's .pth")
    parser.add_argument("--data_dir", required=True, help="train data dir (wav.scp)")
    parser.add_argument("--out_dir", required=True, help="where teacher.ark/teacher1.scp go")
    parser.add_argument("--ngpu", type=int, default=0, help="0: CPU, 1: the first GPU")
    parser.add_argument("--batch_size", type=int, default=1,
                        help="utterances per forward pass (1 is exact, see above)")
    return parser


def main(cmd: Optional[Sequence[str]] = None) -> int:
    import sys

    from dispatch.tasks.enh_distill import DistillSetupError

    args = get_parser().parse_args(cmd)
    try:
        count = cache_teacher(args.teacher_config, args.teacher_model_file, args.data_dir,
                              args.out_dir, args.ngpu, args.batch_size)
    except DistillSetupError as exc:
        print(f"cache_teacher: error: {exc}", file=sys.stderr)
        sys.exit(2)
    print(f"cache_teacher: {count} utterances -> {Path(args.out_dir) / 'teacher1.scp'}")
    return count


if __name__ == "__main__":
    main()
