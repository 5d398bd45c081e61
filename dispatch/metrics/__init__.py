"""Per-utterance speech-enhancement metrics (numpy in, float out).

- ``intrusive``: PESQ WB/NB, STOI, ESTOI, SI-SNR, SDR (agree with ``espnet2.bin.enh_scoring``)
- ``composite``: ``composite.composite(ref, est, fs)``: CSIG, CBAK, COVL of Hu & Loizou (2008)
  from LLR, WSS, segmental SNR and PESQ
- ``dnsmos``: DNSMOS P.835 SIG/BAK/OVRL (+ P.808) with onnxruntime, when the models are installed
- ``scoring``: load, check and score one utterance, and a whole scp pair (``dispatch.bin.score``)
- ``bootstrap``: paired-bootstrap confidence interval of a mean difference
"""
from dispatch.metrics.intrusive import MetricUnavailable, estoi, pesq_nb, pesq_wb, sdr, si_snr, stoi

__all__ = ["MetricUnavailable", "estoi", "pesq_nb", "pesq_wb", "sdr", "si_snr", "stoi"]
