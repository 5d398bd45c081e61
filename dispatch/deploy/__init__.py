"""Deployment of trained students: load them in any of their three forms, enhance files, export
them to ONNX, and stream causal Conv-TasNet students chunk by chunk.

* :mod:`dispatch.deploy.loading`   one :class:`~dispatch.deploy.loading.Enhancer` for an export
  dir (``config.yaml`` + ``model.pth``), a packed ESPnet zip or an ``.onnx`` file
* :mod:`dispatch.deploy.files`     enhancement of a WAV file, a folder of WAVs or an scp, with
  resampling to the model's rate and back and one-line errors per bad file
* :mod:`dispatch.deploy.onnx_export`  the ``[1, L] -> [1, L]`` ONNX graph, its export, its check
  against PyTorch and its onnxruntime real-time factor
* :mod:`dispatch.deploy.streaming` an exact chunked runner for causal Conv-TasNet with bounded
  state, its algorithmic latency and its per-chunk real-time factor
* :mod:`dispatch.deploy.pack`      ESPnet model archives of any trained system
"""
