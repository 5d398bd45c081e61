"""Teacher-output cache: the frozen teacher's estimate of every training utterance, stored once.

Files under the cache dir (each written atomically: temporary name, then rename):

``teacher.ark``          the estimates as Kaldi ark entries (``teacher.JOB.ark`` for ``nj > 1``)
``teacher1.scp``         ``utt_id ARK:offset``, sorted by utterance id
``teacher1_shape``       ``utt_id L`` (checked against the mixture at training start-up)
``cache_info.json``      teacher files, data dir, sample rate (of the audio), storage type, audio
                         hours, bytes, the size per hour of audio, and the wall time split into
                         start-up (processes, teacher loading) and computing (CPU time too)

Storage (``dtype``):

``float32``  Kaldi float vectors, 4 bytes per sample: 230.4 MB per hour at 16 kHz.
``float16``  numpy half-precision arrays in the ark (kaldiio's ``NPY`` entries), 2 bytes per
             sample: 115.2 MB per hour at 16 kHz. Half precision keeps 11 significant bits
             (relative error at most 2^-11 = 4.9e-4 per sample, absolute below 6e-8 near zero).
             An utterance whose estimate exceeds the float16 range (|x| > 65504: a teacher with
             a wild output scale) is stored as float32 instead, and counted in cache_info.json.
             ESPnet's data loader turns every float array into float32, so training is unchanged.

Writing: ``nj`` processes (forked on a CPU, spawned for a GPU) each take a contiguous block of
the sorted utterance list, load the teacher and write their own ark (``torch.set_num_threads(cpus
// nj)`` each); the scp files are merged in order at the end. ``batch_size > 1`` runs the teacher on zero-padded batches (for a GPU);
``batch_size 1`` is exact (padding changes models with utterance-level normalisation).

The estimate is the one ``ESPnetEnhDistillModel`` reads online (its teacher step,
:func:`dispatch.models.enh_distill.frozen_estimate`: ESPnet's forward, read at ``forward_loss``),
computed on the whole utterance; the teacher is loaded by :func:`dispatch.models.teacher.load_teacher`. KD training reads it as one more data stream:
``--train_data_path_and_name_and_type DIR/teacher1.scp,teacher_ref1,kaldi_ark``.

The cache is refused at start-up (:func:`check_teacher_cache`) when it cannot be valid: augmentation
or preprocessing that changes the mixture, a speed-perturbed train set, utterances missing from the
cache, a cached length different from the mixture's, or ``kd_loss: atkl`` (it needs features).
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Tuple

import numpy as np
import torch

from dispatch.data.scp import read_scp_dict
from dispatch.kd.registry import needs_teacher_features
from dispatch.models.enh_distill import frozen_estimate
from dispatch.models.teacher import DistillSetupError, load_teacher, teacher_sample_rate
from dispatch.utils.io import atomic_write, atomic_write_text

CACHE_NAME = "teacher_ref1"
AUGMENTING_OPTIONS = ("rir_scp", "noise_scp", "speech_volume_normalize", "speech_segment")
STORAGE_DTYPES = ("float32", "float16")
FLOAT16_MAX = float(np.finfo(np.float16).max)


class CacheError(ValueError):
    """A problem with the cache's inputs; the message is one line for the user."""


# ----------------------------------------------------------------------------- the teacher


def batches(items: List[str], size: int) -> Iterator[List[str]]:
    """Consecutive groups of ``size`` items (the last one shorter)."""
    for start in range(0, len(items), size):
        yield items[start:start + size]


def teacher_estimates(teacher: torch.nn.Module, waves: List[np.ndarray], device: str
                      ) -> List[np.ndarray]:
    """The teacher's estimate of every waveform (zero-padded into one batch).  -> list of [L_i]"""
    lengths = torch.tensor([len(w) for w in waves])  # [B]
    mix = torch.zeros(len(waves), int(lengths.max()))  # [B, L]
    for i, wave in enumerate(waves):
        mix[i, :len(wave)] = torch.from_numpy(wave)
    mix, lengths = mix.to(device), lengths.to(device)
    estimate, _ = frozen_estimate(teacher, mix, lengths, speech_ref1=torch.zeros_like(mix))
    estimate = estimate.float().cpu()  # [B, L']
    out = []
    for i, wave in enumerate(waves):
        est = np.zeros(len(wave), dtype=np.float32)  # an estimate shorter than L is zero-padded
        n = min(len(wave), estimate.shape[-1])
        est[:n] = estimate[i, :n].numpy()
        out.append(est)
    return out


# ----------------------------------------------------------------------------- storage


def stored_array(estimate: np.ndarray, dtype: str) -> Tuple[np.ndarray, Optional[str]]:
    """The array to store for one estimate [L] and the kaldiio write function it needs.

    float32: a Kaldi float vector (no write function). float16: a numpy half array ("numpy"),
    unless a sample is outside the float16 range; then the float32 vector is kept.
    """
    if dtype == "float16" and float(np.abs(estimate).max(initial=0.0)) <= FLOAT16_MAX:
        return estimate.astype(np.float16), "numpy"
    return estimate.astype(np.float32), None


def write_ark(ark: Path, estimates: Iterable[Tuple[str, np.ndarray]], dtype: str = "float32"
              ) -> dict:
    """Write ``estimates`` (utt, [L]) to one ark atomically.

    Returns {"scp": [lines], "shape": [lines], "samples": int, "fallbacks": [utt ids stored as
    float32 although float16 was asked]}. The scp offsets point past the key and its space.
    """
    import kaldiio

    out = {"scp": [], "shape": [], "samples": 0, "fallbacks": []}

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            for utt, est in estimates:
                start = f.tell()
                array, function = stored_array(est, dtype)
                if dtype == "float16" and function is None:
                    out["fallbacks"].append(utt)
                kaldiio.save_ark(f, {utt: array}, scp=None, write_function=function)
                out["scp"].append(f"{utt} {ark}:{start + len(utt.encode()) + 1}")
                out["shape"].append(f"{utt} {len(est)}")
                out["samples"] += len(est)

    atomic_write(ark, write)
    return out


def write_index(out_dir: Path, shards: List[dict]) -> None:
    """teacher1.scp and teacher1_shape from the shards' lines, in shard order."""
    for name, key in (("teacher1.scp", "scp"), ("teacher1_shape", "shape")):
        lines = [line for shard in shards for line in shard[key]]
        atomic_write_text(Path(out_dir) / name, "\n".join(lines) + "\n")


# ----------------------------------------------------------------------------- writing the cache


def _wav_scp(data_dir: str) -> Path:
    wav_scp = Path(data_dir) / "wav.scp"
    if not wav_scp.is_file():
        raise CacheError(f"{wav_scp} does not exist (pass --data_dir with a Kaldi-style data dir "
                         "holding wav.scp)")
    return wav_scp


def cache_shard(job: dict) -> dict:
    """Load the teacher and write the estimates of ``job["utts"]`` to ``job["ark"]``.

    job: teacher_config, teacher_model_file, wav_scp, utts, ark, device, batch_size, dtype,
    threads (None: leave torch's default). Also a process-pool worker (picklable in and out).
    """
    from espnet2.fileio.sound_scp import SoundScpReader

    if job.get("threads"):
        torch.set_num_threads(job["threads"])
    teacher, _ = load_teacher(job["teacher_config"], job["teacher_model_file"], job["device"])
    teacher.eval()
    reader = SoundScpReader(str(job["wav_scp"]), dtype="float32", always_2d=False)
    rates = set()
    wall, cpu = time.perf_counter(), time.process_time()

    def estimates() -> Iterator[Tuple[str, np.ndarray]]:
        for group in batches(job["utts"], max(1, job["batch_size"])):
            loaded = [reader[u] for u in group]
            rates.update(rate for rate, _ in loaded)
            waves = [np.asarray(wave, dtype=np.float32) for _, wave in loaded]
            bad = [u for u, w in zip(group, waves) if w.ndim != 1]
            if bad:
                raise CacheError(f"{bad[0]}: multi-channel mixture; run stage 2 (check_data "
                                 "--auto_fix) to downmix the train set first")
            yield from zip(group, teacher_estimates(teacher, waves, job["device"]))

    out = write_ark(Path(job["ark"]), estimates(), job["dtype"])
    if len(rates) > 1:
        raise CacheError(f"{job['wav_scp']}: mixed sample rates {sorted(rates)}; run stage 2 "
                         "(check_data --auto_fix) to resample the train set first")
    out.update(fs=rates.pop() if rates else None, compute_wall_s=time.perf_counter() - wall,
               compute_cpu_s=time.process_time() - cpu)
    return out


def shard_utts(utts: List[str], nj: int) -> List[List[str]]:
    """``nj`` contiguous blocks of ``utts`` (sizes differ by at most one; none empty)."""
    nj = max(1, min(nj, len(utts)))
    size, extra = divmod(len(utts), nj)
    blocks, start = [], 0
    for j in range(nj):
        end = start + size + (1 if j < extra else 0)
        blocks.append(utts[start:end])
        start = end
    return blocks


def cache_teacher(teacher_config: str, teacher_model_file: str, data_dir: str, out_dir: str,
                  ngpu: int = 0, batch_size: int = 1, nj: int = 1, dtype: str = "float32") -> int:
    """Compute and store the teacher's estimate of every utterance of ``data_dir/wav.scp``.

    Returns the number of utterances; ``out_dir/cache_info.json`` has the sizes and timings.
    """
    if dtype not in STORAGE_DTYPES:
        raise CacheError(f"--dtype {dtype}: choose one of {', '.join(STORAGE_DTYPES)}")
    if nj < 1 or batch_size < 1:
        raise CacheError("--nj and --batch_size must be at least 1")
    start = time.perf_counter()
    wav_scp = _wav_scp(data_dir)
    utts = sorted(read_scp_dict(wav_scp))
    if not utts:
        raise CacheError(f"{wav_scp} is empty: nothing to cache")
    # checks the teacher files (one-line errors) before any worker starts
    _, teacher_args = load_teacher(teacher_config, teacher_model_file, "cpu")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    blocks = shard_utts(utts, nj)
    device = "cuda" if ngpu > 0 else "cpu"
    threads = max(1, (os.cpu_count() or 1) // len(blocks)) if len(blocks) > 1 else None
    jobs = [dict(teacher_config=str(teacher_config), teacher_model_file=str(teacher_model_file),
                 wav_scp=str(wav_scp), utts=block, device=device, batch_size=batch_size,
                 dtype=dtype, threads=threads,
                 ark=str(out / ("teacher.ark" if len(blocks) == 1 else f"teacher.{j + 1}.ark")))
            for j, block in enumerate(blocks)]
    if len(jobs) == 1:
        shards = [cache_shard(jobs[0])]
    else:  # CUDA cannot be forked: spawn fresh interpreters there; fork (cheap) on a CPU
        import multiprocessing
        import sys

        method = "fork" if device == "cpu" and sys.platform.startswith("linux") else "spawn"
        with multiprocessing.get_context(method).Pool(len(jobs)) as pool:
            shards = pool.map(cache_shard, jobs, chunksize=1)
    write_index(out, shards)
    fs = shards[0]["fs"] or teacher_sample_rate(argparse.Namespace(), teacher_args)
    samples = sum(s["samples"] for s in shards)
    size = sum(Path(job["ark"]).stat().st_size for job in jobs)
    hours = samples / fs / 3600.0
    wall = time.perf_counter() - start
    compute = max(s["compute_wall_s"] for s in shards)  # the writers run side by side
    info = {"teacher_config": str(teacher_config), "teacher_model_file": str(teacher_model_file),
            "data_dir": str(data_dir), "fs": fs, "utterances": len(utts), "batch_size": batch_size,
            "nj": len(jobs), "dtype": dtype, "float32_fallbacks": [u for s in shards
                                                                   for u in s["fallbacks"]],
            "audio_hours": hours, "ark_bytes": size,
            "MB_per_hour": size / 1e6 / hours if hours else None,
            "wall_seconds": wall, "compute_wall_seconds": compute,
            "startup_wall_seconds": wall - compute,
            "compute_cpu_seconds": sum(s["compute_cpu_s"] for s in shards)}
    atomic_write_text(out / "cache_info.json", json.dumps(info, indent=2) + "\n")
    return len(utts)


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
    from dispatch.data.shapes import num_samples

    for shape_file in getattr(args, "train_shape_file", None) or []:
        if Path(shape_file).name.startswith("speech_mix") and Path(shape_file).is_file():
            return {u: _first_int(v) for u, v in read_scp_dict(Path(shape_file)).items()}
    return {u: num_samples(p) for u, p in read_scp_dict(Path(mix_scp)).items()}


def cached_lengths(cache_scp: str) -> Dict[str, int]:
    """Cached length of every utterance: teacher1_shape, else the ark entries themselves."""
    shape = Path(cache_scp).parent / "teacher1_shape"
    if shape.is_file():
        return {u: _first_int(v) for u, v in read_scp_dict(shape).items()}
    import kaldiio

    return {u: len(kaldiio.load_mat(p)) for u, p in read_scp_dict(Path(cache_scp)).items()}


def check_teacher_cache(args: argparse.Namespace) -> None:
    """Refuse (``DistillSetupError``, one line) a teacher cache that cannot be valid for ``args``."""
    stream = cache_stream(args)
    if stream is None:
        return
    cache_scp = stream[0]
    prefix = f"teacher cache '{cache_scp}' cannot be used: "
    kd_loss = getattr(args, "kd_loss", None)
    try:
        taps_teacher = kd_loss is not None and needs_teacher_features(
            kd_loss, **dict(getattr(args, "kd_loss_conf", None) or {}))
    except (TypeError, ValueError):  # a bad KD conf: building the KD loss says what is wrong
        taps_teacher = False
    if taps_teacher:
        raise DistillSetupError(prefix + f"kd_loss {kd_loss} needs the teacher's intermediate "
                                "features, which a cache of its outputs does not hold; drop the "
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
