# Measurement script behind a table in egs/vbd_remix/enh_distill1/README.md (run in that recipe folder).
"""kd_grad_ratio at kd_weight 1 for every KD overlay, on training chunks, with a given student checkpoint."""
import sys, yaml, torch, numpy as np, soundfile as sf
torch.set_num_threads(1)
from espnet2.tasks.enh import EnhancementTask
from dispatch.kd import build_kd_loss
from dispatch.models.enh_distill import ESPnetEnhDistillModel
exp, student_dir = sys.argv[1], sys.argv[2]
def load(d):
    m, _ = EnhancementTask.build_model_from_file(f"{d}/config.yaml", f"{d}/valid.si_snr_loss.best.pth", "cpu")
    return m
rng = np.random.default_rng(0)
lines = [l.split() for l in open(f"{exp}/../dump/raw/train/wav.scp")]
refs = dict(l.split() for l in open(f"{exp}/../dump/raw/train/spk1.scp"))
batches = []
for b in range(6):
    xs, ys = [], []
    for i in rng.choice(len(lines), 8):
        u, p = lines[i]; x, _ = sf.read(p, dtype="float32"); y, _ = sf.read(refs[u], dtype="float32")
        s = rng.integers(0, len(x) - 8000); xs.append(x[s:s+8000]); ys.append(y[s:s+8000])
    batches.append((torch.tensor(np.stack(xs)), torch.tensor(np.stack(ys))))
for conf in sys.argv[3:]:
    c = yaml.safe_load(open(conf))
    model = ESPnetEnhDistillModel(load(student_dir), load(f"{exp}/teacher"), build_kd_loss(c["kd_loss"], **(c.get("kd_loss_conf") or {})),
                                  kd_weight=1.0, grad_ratio_interval=1)
    model.train()
    r, lk, lt = [], [], []
    for x, y in batches:
        _, st, _ = model(x, torch.full((8,), 8000), speech_ref1=y)
        r.append(st["kd_grad_ratio"].item()); lk.append(st["loss_kd"].item()); lt.append(st["loss_task"].item())
    print(f"{conf.split('/')[-1]:22s} ratio@w1 median {np.median(r):.4f}  loss_kd {np.mean(lk):.4f}  loss_task {np.mean(lt):.2f}", flush=True)
