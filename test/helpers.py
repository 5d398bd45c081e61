"""Shared test helpers: tiny ESPnet enhancement configs and models, speech pairs (real VoiceBank
p232 or synthetic), Kaldi data dirs, ESPnet training options, a reference DISPatch selection.

Tests import them with ``from helpers import ...``: ``test/`` is on ``sys.path`` through
``pythonpath = test`` in setup.cfg. Pytest fixtures live in ``test/conftest.py``.
"""

from __future__ import annotations

import functools
import math
import os
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import soundfile as sf
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
#: Real speech for the reference-answer tests: $DISPATCH_TEST_DATA, default ../shared/data.
#: Every other test falls back to the synthetic mini corpus when it is absent (``real_pairs``).
SHARED_DATA = Path(os.environ.get("DISPATCH_TEST_DATA", REPO.parent / "shared" / "data"))


def tiny_tasnet_config(channel: int = 16, layer: int = 2, hidden: int = 32) -> Dict:
    """A Conv-TasNet of a few thousand parameters, trained with SI-SNR, at 16 kHz."""
    return {
        "encoder": "conv",
        "encoder_conf": {"channel": channel, "kernel_size": 16, "stride": 8},
        "separator": "tcn",
        "separator_conf": {"num_spk": 1, "layer": layer, "stack": 1, "bottleneck_dim": channel,
                           "hidden_dim": hidden, "kernel": 3, "nonlinear": "relu"},
        "decoder": "conv",
        "decoder_conf": {"channel": channel, "kernel_size": 16, "stride": 8},
        "criterions": [{"name": "si_snr", "conf": {"eps": 1.0e-7},
                        "wrapper": "fixed_order", "wrapper_conf": {"weight": 1.0}}],
        "sample_rate": 16000,
        "init": None,
    }


def full_args(config: Dict, task=None):
    """The argparse Namespace that ESPnet's parser produces for ``config`` (all defaults filled)."""
    from espnet2.tasks.enh import EnhancementTask

    task = task or EnhancementTask
    parser = task.get_parser()
    defaults = vars(parser.parse_args([]))
    defaults.update(config)
    import argparse

    return argparse.Namespace(**defaults)


def write_enh_model(directory: Path, config: Dict, seed: int = 0) -> Dict[str, Path]:
    """Write ``config.yaml`` + ``model.pth`` of a randomly initialised ESPnet enh model."""
    from espnet2.tasks.enh import EnhancementTask

    directory.mkdir(parents=True, exist_ok=True)
    args = full_args(config)
    torch.manual_seed(seed)
    model = EnhancementTask.build_model(args)
    cfg = directory / "config.yaml"
    cfg.write_text(yaml.safe_dump(vars(args), sort_keys=False))
    pth = directory / "model.pth"
    torch.save(model.state_dict(), pth)
    return {"config": cfg, "model_file": pth}


def real_pairs(count: int, seconds: float = 1.0, offset: int = 0) -> List[tuple]:
    """(utt_id, noisy, clean) float32 arrays cut from the real VoiceBank+DEMAND p232 pairs, or,
    where that data is absent (a fresh clone), from the synthetic mini corpus (dispatch.data.mini)."""
    folder = SHARED_DATA / "vbd_test_p232"
    if not folder.is_dir():
        from dispatch.data.mini import MiniConfig, synth_mixture

        cfg = MiniConfig(duration=seconds)
        return [(utt, noisy.astype(np.float32), clean.astype(np.float32))
                for utt, _, noisy, clean, _ in (synth_mixture(cfg, "test", offset + i)
                                                for i in range(count))]
    names = sorted(p.stem for p in (folder / "clean").glob("*.wav"))[offset:offset + count]
    out = []
    for name in names:
        clean, fs = sf.read(folder / "clean" / f"{name}.wav", dtype="float32")
        noisy, _ = sf.read(folder / "noisy" / f"{name}.wav", dtype="float32")
        n = min(len(clean), int(seconds * fs))
        out.append((name, noisy[:n], clean[:n]))
    return out


@functools.lru_cache(maxsize=None)
def speech_folder(count: int = 10) -> Path:
    """A folder laid out like ``vbd_test_p232`` (``clean/`` and ``noisy/`` p232_NNN.wav at 16 kHz):
    the real one under SHARED_DATA, else ``count`` synthetic mini-corpus pairs of 1.5 s and up (0.25 s
    steps) written on the first call in a test process. Call it inside a test or fixture, not at
    import. For tests that need speech-like files, not reference answers."""
    real = SHARED_DATA / "vbd_test_p232"
    if real.is_dir():
        return real
    import atexit
    import shutil
    import tempfile

    from dispatch.data.mini import MiniConfig, synth_mixture

    folder = Path(tempfile.mkdtemp(prefix="dispatch_speech_"))
    atexit.register(shutil.rmtree, folder, True)
    for i in range(count):
        _, _, noisy, clean, _ = synth_mixture(MiniConfig(duration=1.5 + 0.25 * i), "test", i)
        for kind, x in (("clean", clean), ("noisy", noisy)):
            (folder / kind).mkdir(exist_ok=True)
            sf.write(folder / kind / f"p232_{i + 1:03d}.wav", x, 16000, subtype="PCM_16")
    return folder


def write_data_dir(directory: Path, pairs: List[tuple], fs: int = 16000) -> Path:
    """A Kaldi-style enh data dir (wav.scp, spk1.scp, utt2spk, spk2utt) with wavs inside."""
    (directory / "wav").mkdir(parents=True, exist_ok=True)
    wav, spk1, utt2spk = [], [], []
    for utt, noisy, clean in sorted(pairs, key=lambda p: p[0]):
        sf.write(directory / "wav" / f"{utt}_noisy.wav", noisy, fs)
        sf.write(directory / "wav" / f"{utt}_clean.wav", clean, fs)
        wav.append(f"{utt} {directory / 'wav' / (utt + '_noisy.wav')}")
        spk1.append(f"{utt} {directory / 'wav' / (utt + '_clean.wav')}")
        utt2spk.append(f"{utt} {utt}")
    for name, lines in (("wav.scp", wav), ("spk1.scp", spk1), ("utt2spk", utt2spk),
                        ("spk2utt", utt2spk)):
        (directory / name).write_text("\n".join(lines) + "\n")
    return directory


def batch_from_pairs(pairs: List[tuple]) -> Dict[str, torch.Tensor]:
    """A zero-padded ESPnet enh batch from (utt, noisy, clean) pairs."""
    lengths = [len(p[1]) for p in pairs]
    mix = np.zeros((len(pairs), max(lengths)), dtype=np.float32)
    ref = np.zeros_like(mix)
    for i, (_, noisy, clean) in enumerate(pairs):
        mix[i, : len(noisy)] = noisy
        ref[i, : len(clean)] = clean
    return {"speech_mix": torch.from_numpy(mix), "speech_ref1": torch.from_numpy(ref),
            "speech_mix_lengths": torch.tensor(lengths)}


def run_module(args, cwd: Path = REPO, timeout: int = 600):
    """``python -m ARGS...`` with the test's interpreter; fails the test with stderr's tail."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m"] + [str(a) for a in args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{args[0]} failed ({proc.returncode}):\n{proc.stderr[-4000:]}"
    return proc


def make_training_dirs(work: Path, splits: Dict[str, List[tuple]]) -> Path:
    """Data dirs ``work/data/<split>`` and shape files ``work/stats/<split>`` from real pairs."""
    from dispatch.bin.collect_shapes import collect_shapes

    for split, pairs in splits.items():
        write_data_dir(work / "data" / split, pairs)
        collect_shapes(work / "data" / split, work / "stats" / split)
    return work


def make_student_workdir(work: Path, num_train: int, num_valid: int, seconds: float = 1.0,
                         student_config: Optional[dict] = None) -> Path:
    """``make_training_dirs`` from the first real pairs, plus ``work/student.yaml`` (the tiny
    Conv-TasNet ``tiny_tasnet_config(8, 1, 16)`` unless ``student_config`` is given)."""
    pairs = real_pairs(num_train + num_valid, seconds=seconds)
    make_training_dirs(work, {"train": pairs[:num_train], "valid": pairs[num_train:]})
    config = student_config if student_config is not None else tiny_tasnet_config(8, 1, 16)
    (work / "student.yaml").write_text(yaml.safe_dump(config))
    return work


def espnet_data_opts(work: Path) -> List[str]:
    """ESPnet training options that read ``make_training_dirs`` output (train and valid)."""
    opts: List[str] = []
    for split in ("train", "valid"):
        opts += [f"--{split}_data_path_and_name_and_type", f"{work}/data/{split}/wav.scp,speech_mix,sound",
                 f"--{split}_data_path_and_name_and_type", f"{work}/data/{split}/spk1.scp,speech_ref1,sound",
                 f"--{split}_shape_file", f"{work}/stats/{split}/speech_mix_shape"]
    return opts


def naive_select(kgs, valid, k, mode):
    """Python-loop reference of the DISPatch selection rule (``dispatch.kd.select_patches``)."""
    out = torch.zeros_like(valid)
    for b in range(kgs.shape[0]):
        ids = [p for p in range(kgs.shape[1]) if valid[b, p]]
        keep = min(len(ids), max(1, math.floor(k * len(ids))))
        ranked = sorted(ids, key=lambda p: (-float(kgs[b, p]), p))
        top = set(ranked[:keep])
        for p in ids:
            positive = float(kgs[b, p]) > 0
            if mode == "topk":
                out[b, p] = p in top
            elif mode == "positive":
                out[b, p] = positive
            else:
                out[b, p] = positive and p in top
    return out
