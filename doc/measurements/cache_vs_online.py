# Measurement script behind a table in egs/vbd_remix/enh_distill1/README.md (run in that recipe folder).
"""Teacher output on whole utterances (the cache) vs on the 0.5-s training chunks (the online teacher)."""
import sys, torch, numpy as np, soundfile as sf
torch.set_num_threads(1)
from espnet2.tasks.enh import EnhancementTask
from dispatch.kd.output_kd import si_snr
exp = sys.argv[1]
teacher, _ = EnhancementTask.build_model_from_file(f"{exp}/teacher/config.yaml", f"{exp}/teacher/valid.si_snr_loss.best.pth", "cpu")
teacher.eval()
lines = [l.split() for l in open(f"{exp}/../dump/raw/train/wav.scp")][::16]
refs = dict(l.split() for l in open(f"{exp}/../dump/raw/train/spk1.scp"))
agree, whole_ref, chunk_ref = [], [], []
W, S = 8000, 4000
with torch.no_grad():
    for u, p in lines:
        x = torch.tensor(sf.read(p, dtype="float32")[0])[None]; y = torch.tensor(sf.read(refs[u], dtype="float32")[0])[None]
        whole = teacher.forward_enhance(x, torch.tensor([x.shape[1]]))[0][0]
        for s in range(0, x.shape[1] - W + 1, S):
            c = teacher.forward_enhance(x[:, s:s+W], torch.tensor([W]))[0][0]
            L = torch.tensor([W])
            agree.append(si_snr(c, whole[:, s:s+W], L).item())
            whole_ref.append(si_snr(whole[:, s:s+W], y[:, s:s+W], L).item())
            chunk_ref.append(si_snr(c, y[:, s:s+W], L).item())
print(f"{len(agree)} chunks of {len(lines)} utterances: SI-SNR(chunk output, cached slice) median {np.median(agree):.1f} dB; "
      f"vs clean: cached slice {np.mean(whole_ref):.2f} dB, chunk output {np.mean(chunk_ref):.2f} dB (means)")
