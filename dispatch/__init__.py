"""Knowledge distillation for speech enhancement on ESPnet (DISPatch, MSSP, DFKD, output KD, AT-KL)."""
