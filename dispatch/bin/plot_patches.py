"""Draw which spectrogram patches DISPatch / MSSP would distil for one noisy/clean pair.

Usage::

    python -m dispatch.bin.plot_patches \
        --teacher_config exp/teacher/config.yaml \
        --teacher_model_file exp/teacher/valid.loss.best.pth \
        --student_config exp/student_nokd/config.yaml \
        --student_model_file exp/student_nokd/valid.loss.best.pth \
        --noisy noisy.wav --clean clean.wav --kd_loss mssp --kd_loss_conf '{split: adaptive}' \
        --out patches.png

Both models are ESPnet enhancement models (``config.yaml`` + ``.pth``) and are run with
``forward_enhance``. The figure has the noisy log-magnitude spectrogram, then for every band (one
for ``dispatch``, low and high for ``mssp``) the Knowledge Gap Score of each patch and the mask of
the selected patches, computed by :func:`dispatch.kd.patch_selection_map`.
"""
from __future__ import annotations

import argparse
import os
from typing import Optional, Sequence

import numpy as np
import torch
import yaml

from dispatch.kd import build_kd_loss, patch_selection_map
from dispatch.kd.spectral import complex_stft
from dispatch.utils.io import atomic_write


def parse_conf(text: Optional[str]) -> dict:
    """A YAML/JSON mapping given inline or as a file path; empty for None."""
    if not text:
        return {}
    if os.path.isfile(text):
        with open(text, encoding="utf-8") as f:
            text = f.read()
    conf = yaml.safe_load(text)
    if conf is None:
        return {}
    if not isinstance(conf, dict):
        raise ValueError(f"--kd_loss_conf must be a mapping, got {type(conf).__name__}")
    return conf


def read_mono(path: str) -> tuple[torch.Tensor, int]:
    """Read a mono wav as float32.  -> ([L], fs)"""
    import soundfile

    data, fs = soundfile.read(path, dtype="float32", always_2d=True)
    if data.shape[1] != 1:
        raise ValueError(f"{path}: expected mono audio, got {data.shape[1]} channels")
    return torch.from_numpy(data[:, 0].copy()), int(fs)


def load_model(config: str, model_file: str, device: str = "cpu") -> torch.nn.Module:
    """Load an ESPnet enhancement model from its ``config.yaml`` and ``.pth``."""
    from espnet2.tasks.enh import EnhancementTask

    from dispatch.utils.weights import load_weights

    model, _ = EnhancementTask.build_model_from_file(config, None, device)
    model.load_state_dict(load_weights(model_file, map_location=device))  # weights only
    return model.eval()


@torch.no_grad()
def enhance(model: torch.nn.Module, noisy: torch.Tensor, fs: Optional[int] = None) -> torch.Tensor:
    """First-speaker estimate of an ESPnet enhancement model.  noisy: [B, L] -> [B, L]"""
    lengths = torch.full((noisy.shape[0],), noisy.shape[-1], dtype=torch.long, device=noisy.device)
    speech_pre, *_ = model.forward_enhance(noisy, lengths, fs=fs)
    estimate = speech_pre[0]  # [B, L']
    length = noisy.shape[-1]
    if estimate.shape[-1] < length:
        estimate = torch.nn.functional.pad(estimate, (0, length - estimate.shape[-1]))
    return estimate[..., :length]


def draw_patch_figure(noisy_logmag: np.ndarray, maps: dict, out: str, fs: int, hop_length: int,
                      title: str = "") -> None:
    """Write the figure: noisy log-spectrogram, then KGS map and selection mask of every band.

    noisy_logmag: [F, N]; maps: {band: {"kgs": [F, N] (NaN outside the band), "mask": [F, N]}}
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    num_bins, num_frames = noisy_logmag.shape
    extent = (0.0, num_frames * hop_length / fs, 0.0, fs / 2000.0)  # seconds, kHz
    panels = [("noisy log-magnitude (dB)", noisy_logmag, "magma", None)]
    for band, band_maps in maps.items():
        label = "" if band == "all" else f" ({band} band)"
        kgs = np.asarray(band_maps["kgs"], dtype=np.float64)
        bound = np.nanmax(np.abs(kgs)) if np.isfinite(kgs).any() else 1.0
        panels.append((f"Knowledge Gap Score{label}", kgs, "coolwarm", (-bound, bound)))
        mask = np.where(np.isnan(kgs), np.nan, np.asarray(band_maps["mask"], dtype=np.float64))
        panels.append((f"selected patches{label} (grey: outside the band)", mask, "Greys",
                       (0.0, 1.0)))
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 2.2 * len(panels)), squeeze=False)
    for ax, (name, image, cmap, limits) in zip(axes[:, 0], panels):
        vmin, vmax = limits if limits else (None, None)
        colours = matplotlib.colormaps[cmap].copy()
        colours.set_bad("#b0b0b0")
        shown = ax.imshow(image, origin="lower", aspect="auto", cmap=colours, extent=extent,
                          vmin=vmin, vmax=vmax, interpolation="nearest")
        ax.set_title(name, fontsize=9)
        ax.set_ylabel("kHz")
        fig.colorbar(shown, ax=ax, pad=0.01)
    axes[-1, 0].set_xlabel("time (s)")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    suffix = os.path.splitext(out)[1] or ".png"
    atomic_write(out, lambda tmp: fig.savefig(tmp, dpi=100, format=suffix[1:]), suffix=suffix)
    plt.close(fig)


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Plot the Knowledge Gap Score and the patches DISPatch/MSSP select for one "
        "utterance.", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--teacher_config", required=True, help="teacher ESPnet config.yaml")
    parser.add_argument("--teacher_model_file", required=True, help="teacher .pth")
    parser.add_argument("--student_config", required=True, help="student ESPnet config.yaml")
    parser.add_argument("--student_model_file", required=True, help="student .pth")
    parser.add_argument("--noisy", required=True, help="noisy mono wav")
    parser.add_argument("--clean", required=True, help="clean mono wav (same length and rate)")
    parser.add_argument("--kd_loss", default="dispatch", choices=["dispatch", "mssp"],
                        help="selective KD method whose patches to draw")
    parser.add_argument("--kd_loss_conf", default=None,
                        help="conf of the KD method: a YAML/JSON mapping or a file holding one")
    parser.add_argument("--out", required=True, help="output PNG")
    parser.add_argument("--device", default="cpu", help="torch device for the two models")
    return parser


def main(cmd: Optional[Sequence[str]] = None) -> None:
    args = get_parser().parse_args(cmd)
    kd_loss = build_kd_loss(args.kd_loss, **parse_conf(args.kd_loss_conf))
    noisy, fs = read_mono(args.noisy)
    clean, fs_clean = read_mono(args.clean)
    if fs != fs_clean:
        raise ValueError(f"sample rates differ: {args.noisy} {fs} Hz, {args.clean} {fs_clean} Hz")
    length = min(noisy.shape[-1], clean.shape[-1])
    noisy = noisy[None, :length].to(args.device)  # [1, L]
    clean = clean[None, :length].to(args.device)  # [1, L]
    try:
        teacher = load_model(args.teacher_config, args.teacher_model_file, args.device)
        student = load_model(args.student_config, args.student_model_file, args.device)
    except ValueError as exc:  # dispatch.utils.weights.UnsafeWeightsError: one line
        raise SystemExit(f"plot_patches: error: {exc}") from None
    teacher_wav = enhance(teacher, noisy, fs)  # [1, L]
    student_wav = enhance(student, noisy, fs)  # [1, L]
    lengths = torch.tensor([length], device=noisy.device)
    maps = patch_selection_map(kd_loss, student_wav, teacher_wav, clean, lengths)
    maps = {band: {key: value[0].float().cpu().numpy() for key, value in m.items()}
            for band, m in maps.items()}
    spec = complex_stft(noisy.float(), kd_loss.n_fft, kd_loss.hop_length, kd_loss.win_length)
    noisy_logmag = (20.0 * torch.log10(spec[0].abs() + 1e-8)).cpu().numpy()  # [F, N]
    draw_patch_figure(noisy_logmag, maps, args.out, fs, kd_loss.hop_length,
                      title=f"{args.kd_loss}: {os.path.basename(args.noisy)}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
