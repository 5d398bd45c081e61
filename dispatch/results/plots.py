"""The two pictures of RESULTS.md: the KD gains with their intervals, and the per-utterance Δ.

Every metric here is better when higher, so a positive Δ (KD − no-KD) is a gain.
"""
from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from dispatch.metrics.bootstrap import PairedDelta
from dispatch.results.scores import SystemResult
from dispatch.utils.io import atomic_write_bytes

#: metric key -> (name on an axis, unit)
METRIC_LABELS = {
    "PESQ_WB": ("PESQ-WB", "MOS-LQO"), "PESQ_NB": ("PESQ-NB", "MOS-LQO"),
    "STOI": ("STOI", "0–1"), "ESTOI": ("ESTOI", "0–1"),
    "SI_SNR": ("SI-SNR", "dB"), "SDR": ("SDR", "dB"),
    "CSIG": ("CSIG", "MOS 1–5"), "CBAK": ("CBAK", "MOS 1–5"), "COVL": ("COVL", "MOS 1–5"),
    "DNSMOS_SIG": ("DNSMOS SIG", "MOS"), "DNSMOS_BAK": ("DNSMOS BAK", "MOS"),
    "DNSMOS_OVRL": ("DNSMOS OVRL", "MOS"), "DNSMOS_P808": ("DNSMOS P.808", "MOS"),
}
BETTER, WORSE, UNCLEAR = "tab:green", "tab:red", "tab:gray"


def metric_label(key: str) -> tuple[str, str]:
    """(readable name, unit) of a metric key; an unknown key is its own name, without unit."""
    return METRIC_LABELS.get(key, (key, ""))


def _with_unit(text: str, unit: str) -> str:
    return f"{text} ({unit})" if unit else text


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _savefig(fig, path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    atomic_write_bytes(path, buf.getvalue())


def _delta_colour(d: PairedDelta) -> str:
    if not d.significant:
        return UNCLEAR
    return BETTER if d.mean > 0 else WORSE


def plot_gains(deltas: Mapping[str, Mapping[str, PairedDelta]], metrics: Sequence[str], nokd: str,
               title: str, path: Path) -> bool:
    """One panel per metric: each KD system's mean Δ vs ``nokd`` with its 95 % interval, coloured
    by what the interval says (legend at the bottom). False when there is nothing to draw."""
    metrics = [m for m in metrics if any(m in d for d in deltas.values())]
    if not deltas or not metrics:
        return False
    plt = _pyplot()
    from matplotlib.lines import Line2D

    ncol = min(3, len(metrics))
    nrow = math.ceil(len(metrics) / ncol)
    fig, axes = plt.subplots(nrow, ncol, squeeze=False,
                             figsize=(4.4 * ncol, 0.45 * len(deltas) * nrow + 2.0 * nrow))
    names = list(deltas)
    for ax, m in zip(axes.flat, metrics):
        name, unit = metric_label(m)
        for i, system in enumerate(names):
            d = deltas[system].get(m)
            if d is not None:
                ax.errorbar(d.mean, i, xerr=[[d.mean - d.low], [d.high - d.mean]], fmt="o",
                            color=_delta_colour(d), capsize=3)
        ax.axvline(0.0, color="black", lw=0.8)
        ax.set_yticks(range(len(names)), names, fontsize=8)
        ax.set_ylim(-0.5, len(names) - 0.5)
        ax.invert_yaxis()
        ax.set_title(name, fontsize=10)
        ax.set_xlabel(_with_unit(f"Δ {name} vs {nokd}", unit), fontsize=8)
        ax.tick_params(axis="x", labelsize=8)
        ax.grid(axis="x", alpha=0.3)
    for ax in list(axes.flat)[len(metrics):]:
        ax.axis("off")
    handles = [Line2D([], [], marker="o", color=c, label=text) for c, text in (
        (BETTER, "KD better: interval above 0"), (WORSE, "KD worse: interval below 0"),
        (UNCLEAR, "no clear difference: interval contains 0"))]
    fig.suptitle(f"{title}: mean Δ (KD − {nokd}) with 95 % paired-bootstrap interval",
                 fontsize=11)
    fig.tight_layout()
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=3,
               fontsize=9, frameon=False)
    _savefig(fig, path)
    plt.close(fig)
    return True


def plot_scatter(base: SystemResult, best: SystemResult, metrics: Sequence[str], title: str,
                 path: Path) -> bool:
    """One panel per metric: each utterance's Δ (``best`` − ``base``, y) against ``base``'s score
    (x), a zero line and the mean Δ. False when the two share no scored utterance."""
    if base.per_utt is None or best.per_utt is None:
        return False
    common = sorted(set(base.per_utt) & set(best.per_utt))
    metrics = [m for m in metrics
               if any(math.isfinite(base.per_utt[u].get(m, math.nan)) for u in common)]
    if not common or not metrics:
        return False
    plt = _pyplot()

    fig, axes = plt.subplots(1, len(metrics), figsize=(4.6 * len(metrics), 4.2), squeeze=False)
    for ax, m in zip(axes.flat, metrics):
        name, unit = metric_label(m)
        x = np.array([base.per_utt[u].get(m, math.nan) for u in common])  # [N]
        y = np.array([best.per_utt[u].get(m, math.nan) for u in common]) - x  # [N]
        ok = np.isfinite(x) & np.isfinite(y)
        x, y = x[ok], y[ok]
        up = y > 0
        ax.scatter(x[up], y[up], s=14, alpha=0.75, color=BETTER, label="KD better")
        ax.scatter(x[~up], y[~up], s=14, alpha=0.75, color=WORSE, label="KD not better")
        ax.axhline(0.0, color="black", lw=0.8)
        if y.size:
            ax.axhline(float(y.mean()), color="tab:blue", lw=1.0, ls="--",
                       label=f"mean Δ {float(y.mean()):+.3g}")
        ax.set_title(f"{name}: {best.name} better on {int(up.sum())} of {int(y.size)} utterances",
                     fontsize=9)
        ax.set_xlabel(_with_unit(f"{name} of {base.name}", unit))
        ax.set_ylabel(_with_unit(f"Δ {name} vs {base.name}", unit))
        ax.legend(fontsize=8, loc="best", framealpha=0.8)
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    _savefig(fig, path)
    plt.close(fig)
    return True
