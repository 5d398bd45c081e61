"""Name -> KD loss class registry and the builder that validates ``kd_loss_conf``."""
from __future__ import annotations

import inspect

from dispatch.kd.atkl import ATKLLoss
from dispatch.kd.base import KDLoss
from dispatch.kd.dfkd import DFKDLoss
from dispatch.kd.dispatch_kd import DISPatchLoss
from dispatch.kd.mssp import MSSPLoss
from dispatch.kd.output_kd import L2MagLoss, NoKDLoss, SISNRLoss

KD_LOSSES: dict[str, type[KDLoss]] = {
    "none": NoKDLoss,
    "l2_mag": L2MagLoss,
    "sisnr": SISNRLoss,
    "dfkd": DFKDLoss,
    "dispatch": DISPatchLoss,
    "mssp": MSSPLoss,
    "atkl": ATKLLoss,
}


def list_kd_losses() -> list[str]:
    """Registered KD loss names, in registry order."""
    return list(KD_LOSSES)


def accepted_conf_keys(name: str) -> list[str]:
    """The keyword arguments the KD loss ``name`` accepts."""
    params = inspect.signature(KD_LOSSES[name].__init__).parameters
    return [p for p in params if p != "self"]


def build_kd_loss(name: str, **conf) -> KDLoss:
    """Build the KD loss ``name`` from its conf; unknown names and keys raise a one-line ValueError."""
    if name not in KD_LOSSES:
        raise ValueError(f"unknown kd_loss {name!r}; choose one of: {', '.join(KD_LOSSES)}")
    accepted = accepted_conf_keys(name)
    bad = sorted(set(conf) - set(accepted))
    if bad:
        raise ValueError(f"unknown kd_loss_conf key(s) for kd_loss {name!r}: {', '.join(bad)}; "
                         f"accepted: {', '.join(accepted) if accepted else '(none)'}")
    return KD_LOSSES[name](**conf)


def needs_teacher_features(name: str, **conf) -> bool:
    """Whether the KD loss ``name`` with this conf taps the teacher's intermediate features
    (non-empty ``feature_pairs``, e.g. AT-KL): such a student cannot train from the teacher cache,
    which holds the teacher's outputs only."""
    return bool(build_kd_loss(name, **conf).feature_pairs)
