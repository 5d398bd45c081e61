"""The patch figure: which spectrogram patches DISPatch / MSSP distil for one noisy/clean pair.

The figure stacks, on one time axis (seconds) and one frequency axis (kHz):

- the noisy log-magnitude spectrogram (dB);
- per band (``all`` for ``dispatch``; ``low`` and ``high`` for ``mssp``) the Knowledge Gap Score
  of each patch, red where the student is further from the reference than the teacher;
- per band the selection: selected and not selected patches in two colours with a legend, and
  the cells outside the band in grey.

``dispatch.bin.plot_patches`` is the command line; :func:`selection_arrays` runs the models and
the KD loss, :func:`draw_patch_figure` only draws.
"""
from __future__ import annotations

import os
from typing import Dict, Optional, Tuple

import numpy as np
import torch

from dispatch.kd import patch_selection_map
from dispatch.kd.stft import complex_stft
from dispatch.utils.io import atomic_write

#: Colours of the selection panels: not selected, selected, outside the band.
NOT_SELECTED_COLOUR = "#fbe3c8"
SELECTED_COLOUR = "#1b5e9e"
OUTSIDE_COLOUR = "#9e9e9e"

BandArrays = Dict[str, Dict[str, np.ndarray]]


def read_mono(path: str) -> Tuple[torch.Tensor, int]:
    """Read a mono wav as float32.  -> ([L], fs)"""
    import soundfile

    data, fs = soundfile.read(path, dtype="float32", always_2d=True)
    if data.shape[1] != 1:
        raise ValueError(f"{path}: expected mono audio, got {data.shape[1]} channels")
    return torch.from_numpy(data[:, 0].copy()), int(fs)


def read_pair(noisy_path: str, clean_path: str) -> Tuple[torch.Tensor, torch.Tensor, int]:
    """A noisy/clean pair at one rate, cut to the shorter.  -> (noisy [1, L], clean [1, L], fs)"""
    noisy, fs = read_mono(noisy_path)
    clean, fs_clean = read_mono(clean_path)
    if fs != fs_clean:
        raise ValueError(f"sample rates differ: {noisy_path} {fs} Hz, {clean_path} {fs_clean} Hz")
    length = min(noisy.shape[-1], clean.shape[-1])
    return noisy[None, :length], clean[None, :length], fs


@torch.no_grad()
def first_speaker_estimate(model: torch.nn.Module, noisy: torch.Tensor,
                           fs: Optional[int] = None) -> torch.Tensor:
    """First-speaker estimate of an ESPnet enhancement model, as long as the input.

    noisy: [B, L] -> [B, L]
    """
    lengths = torch.full((noisy.shape[0],), noisy.shape[-1], dtype=torch.long, device=noisy.device)
    speech_pre, *_ = model.forward_enhance(noisy, lengths, fs=fs)
    estimate = speech_pre[0]  # [B, L']
    length = noisy.shape[-1]
    if estimate.shape[-1] < length:
        estimate = torch.nn.functional.pad(estimate, (0, length - estimate.shape[-1]))
    return estimate[..., :length]  # [B, L]


def selection_arrays(kd_loss: torch.nn.Module, teacher: torch.nn.Module, student: torch.nn.Module,
                     noisy: torch.Tensor, clean: torch.Tensor, fs: int
                     ) -> Tuple[np.ndarray, BandArrays]:
    """Run both models on one utterance and ask ``kd_loss`` which patches it would distil.

    noisy, clean: [1, L]. Returns the noisy log-magnitude (dB) [F, N] and, per band,
    {"kgs": [F, N] (NaN outside the band), "mask": [F, N] bool} (:func:`patch_selection_map`).
    """
    teacher_wav = first_speaker_estimate(teacher, noisy, fs)  # [1, L]
    student_wav = first_speaker_estimate(student, noisy, fs)  # [1, L]
    lengths = torch.tensor([noisy.shape[-1]], device=noisy.device)  # [1]
    maps = patch_selection_map(kd_loss, student_wav, teacher_wav, clean, lengths)
    arrays = {band: {key: value[0].float().cpu().numpy() for key, value in band_maps.items()}
              for band, band_maps in maps.items()}
    spec = complex_stft(noisy.float(), kd_loss.n_fft, kd_loss.hop_length, kd_loss.win_length)
    noisy_logmag = (20.0 * torch.log10(spec[0].abs() + 1e-8)).cpu().numpy()  # [F, N]
    return noisy_logmag, arrays


def selection_image(kgs: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """0 for a patch not selected, 1 for a selected one, NaN outside the band.  [F, N]"""
    return np.where(np.isnan(kgs), np.nan, np.asarray(mask, dtype=np.float64))


def _colour_map(name_or_colours, outside: str):
    """A colour map (by name, or two colours for the selection) whose NaN cells are ``outside``."""
    import matplotlib
    from matplotlib.colors import ListedColormap

    if isinstance(name_or_colours, str):
        colours = matplotlib.colormaps[name_or_colours].copy()
    else:
        colours = ListedColormap(list(name_or_colours))
    colours.set_bad(outside)
    return colours


def _selection_legend(side_ax, image: np.ndarray) -> None:
    """Legend of a selection panel in its side cell: the two colours, and grey if any cell is
    outside the band."""
    from matplotlib.patches import Patch

    handles = [Patch(facecolor=SELECTED_COLOUR, edgecolor="black", label="selected"),
               Patch(facecolor=NOT_SELECTED_COLOUR, edgecolor="black", label="not selected")]
    if np.isnan(image).any():
        handles.append(Patch(facecolor=OUTSIDE_COLOUR, edgecolor="black", label="outside band"))
    side_ax.legend(handles=handles, loc="center left", fontsize=8, frameon=False,
                   borderaxespad=0.0, handlelength=1.2)


def draw_patch_figure(noisy_logmag: np.ndarray, maps: BandArrays, out: str, fs: int,
                      hop_length: int, title: str = "") -> None:
    """Write the figure: noisy log-spectrogram, then KGS map and selection of every band.

    noisy_logmag: [F, N]; maps: {band: {"kgs": [F, N] (NaN outside the band), "mask": [F, N]}}
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    num_frames = noisy_logmag.shape[1]
    extent = (0.0, num_frames * hop_length / fs, 0.0, fs / 2000.0)  # seconds, kHz
    # (title, image [F, N], colour map, (vmin, vmax), colour bar label or None for a legend)
    panels = [("noisy log-magnitude", noisy_logmag, _colour_map("magma", OUTSIDE_COLOUR),
               (None, None), "dB")]
    for band, band_maps in maps.items():
        label = "" if band == "all" else f" ({band} band)"
        kgs = np.asarray(band_maps["kgs"], dtype=np.float64)  # [F, N]
        bound = float(np.nanmax(np.abs(kgs))) if np.isfinite(kgs).any() else 1.0
        outside = ", grey: outside the band" if np.isnan(kgs).any() else ""
        panels.append((f"Knowledge Gap Score{label}{outside}", kgs,
                       _colour_map("coolwarm", OUTSIDE_COLOUR), (-bound, bound), "KGS"))
        panels.append((f"patches distilled{label}", selection_image(kgs, band_maps["mask"]),
                       _colour_map((NOT_SELECTED_COLOUR, SELECTED_COLOUR), OUTSIDE_COLOUR),
                       (0.0, 1.0), None))
    fig, axes = plt.subplots(len(panels), 2, figsize=(9, 2.2 * len(panels)), squeeze=False,
                             gridspec_kw={"width_ratios": [7.0, 1.0]})
    for (ax, side_ax), (name, image, colours, (vmin, vmax), bar_label) in zip(axes, panels):
        shown = ax.imshow(image, origin="lower", aspect="auto", cmap=colours, extent=extent,
                          vmin=vmin, vmax=vmax, interpolation="nearest")
        ax.set_title(name, fontsize=9)
        ax.set_ylabel("frequency (kHz)")
        side_ax.axis("off")
        if bar_label is None:
            _selection_legend(side_ax, image)
        else:
            fig.colorbar(shown, cax=side_ax.inset_axes((0.0, 0.0, 0.15, 1.0)), label=bar_label)
    axes[-1, 0].set_xlabel("time (s)")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    suffix = os.path.splitext(out)[1] or ".png"
    atomic_write(out, lambda tmp: fig.savefig(tmp, dpi=100, format=suffix[1:]), suffix=suffix)
    plt.close(fig)
