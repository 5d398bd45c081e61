# Measurement script behind a table in egs/vbd_remix/enh_distill1/README.md (run in that recipe folder).
"""Distribution of the DFKD crossover on the teacher's outputs of whole training utterances."""
import sys, torch, numpy as np, soundfile as sf
torch.set_num_threads(1)
from espnet2.tasks.enh import EnhancementTask
from dispatch.kd import build_kd_loss
exp = sys.argv[1]
teacher, _ = EnhancementTask.build_model_from_file(f"{exp}/teacher/config.yaml", f"{exp}/teacher/valid.si_snr_loss.best.pth", "cpu")
teacher.eval()
lines = [l.split() for l in open(f"{exp}/../dump/raw/train/wav.scp")][::12]
outs = []
with torch.no_grad():
    for u, p in lines:
        x, _ = sf.read(p, dtype="float32"); x = torch.tensor(x)[None]
        est, *_ = teacher.forward_enhance(x, torch.tensor([x.shape[1]]))
        outs.append(est[0])
for floor in (0, 250, 500, 1000):
    loss = build_kd_loss("dfkd", crossover_floor_hz=floor, scale_to_ref=True)
    st = [loss(o, o, o, None)[1] for o in outs]
    keys = ["crossover_hz", "crossover_hz_p10", "crossover_hz_p50", "crossover_hz_p90"]
    print(f"floor {floor:5d} Hz: " + "  ".join(f"{k[10:] or 'mean'} {np.mean([s[k].item() for s in st]):7.0f}" for k in keys), flush=True)
