"""One enhancer for every form a trained student leaves the toolkit in.

``load_enhancer(PATH)`` accepts
  * an export dir: ``config.yaml`` + ``model.pth`` (``dispatch.bin.export_student``, or any stock
    ESPnet enh config with its weights),
  * a packed ESPnet archive (``.zip``/``.tar.gz`` from ``dispatch.bin.pack_student`` or
    ``espnet2.bin.pack enh``), unpacked by ESPnet's own ``unpack`` into a temporary dir,
  * an ``.onnx`` file from ``dispatch.bin.export_onnx``, run by onnxruntime.
Each gives an :class:`Enhancer`: a callable ``[L] float32 -> [L] float32`` at its ``fs``.
"""
from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import Dict, Iterator, Optional, Tuple, Union

import numpy as np
import torch

PathLike = Union[str, Path]
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")
#: Sample rate assumed for an ESPnet config without ``sample_rate`` (ESPnet's own default is 8 kHz,
#: which is never what a speech-enhancement student of this toolkit was trained at).
DEFAULT_FS = 16000


class ModelLoadError(ValueError):
    """A model that cannot be loaded; the message is one line that says what to do."""


def model_form(path: PathLike) -> str:
    """``"dir"``, ``"archive"`` or ``"onnx"`` for a ``--model`` argument; raises ModelLoadError."""
    path = Path(path)
    name = path.name.lower()
    if path.is_dir():
        return "dir"
    if not path.exists():
        raise ModelLoadError(f"model '{path}' does not exist: give an export dir (config.yaml + "
                             "model.pth), a packed .zip or an .onnx file")
    if name.endswith(".onnx"):
        return "onnx"
    if name.endswith(ARCHIVE_SUFFIXES):
        return "archive"
    raise ModelLoadError(f"model '{path}' is neither a folder, a packed .zip nor an .onnx file")


def load_model_files(config_file: PathLike, model_file: PathLike
                     ) -> Tuple[torch.nn.Module, int]:
    """(ESPnet enh model in eval mode, its sample rate) from a config and a weights file, loaded
    by the toolkit's one loader (:func:`dispatch.models.teacher.build_enh_model`)."""
    from dispatch.models.teacher import (EnhModelError, WeightsMismatchError, build_enh_model,
                                         read_config)
    from dispatch.utils.weights import UnsafeWeightsError

    config_file, model_file = Path(config_file), Path(model_file)
    for f in (config_file, model_file):
        if not f.is_file():
            raise ModelLoadError(f"'{f}' is missing: a model dir holds config.yaml and model.pth "
                                 "(dispatch.bin.export_student writes them)")
    try:
        config = read_config(config_file)
        model = build_enh_model(config, model_file).eval()
    except WeightsMismatchError as exc:
        raise ModelLoadError(f"the weights do not fit the config ({exc.detail}); a distillation "
                             "checkpoint needs dispatch.bin.export_student first") from None
    except (EnhModelError, UnsafeWeightsError) as exc:
        raise ModelLoadError(str(exc).strip().splitlines()[0]) from None
    return model, int(config.get("sample_rate") or DEFAULT_FS)


@contextlib.contextmanager
def unpacked_archive(archive: PathLike) -> Iterator[Dict[str, str]]:
    """ESPnet's ``unpack`` of a packed model into a temporary dir, which is removed on exit.

    Yields ESPnet's file mapping, e.g. ``{"train_config": ".../config.yaml", "model_file": ...}``.
    """
    from espnet2.main_funcs.pack_funcs import unpack

    with tempfile.TemporaryDirectory(prefix="dispatch_unpack_") as tmp:
        try:
            files = unpack(archive, tmp, use_cache=False)
        except Exception as exc:  # tarfile/zipfile/yaml raise several types for a bad archive
            raise ModelLoadError(f"'{archive}' is not an ESPnet model archive ({type(exc).__name__}"
                                 f": {str(exc).strip()[:120]}); pack it with "
                                 "dispatch.bin.pack_student") from None
        if "train_config" not in files or "model_file" not in files:
            raise ModelLoadError(f"'{archive}' has no train_config/model_file in its meta.yaml: "
                                 "it is not an enhancement model archive")
        yield files


def load_espnet_model(path: PathLike) -> Tuple[torch.nn.Module, int]:
    """(model, sample rate) from an export dir or a packed archive."""
    form = model_form(path)
    if form == "dir":
        return load_model_files(Path(path) / "config.yaml", Path(path) / "model.pth")
    if form == "archive":
        with unpacked_archive(path) as files:
            return load_model_files(files["train_config"], files["model_file"])
    raise ModelLoadError(f"'{path}' is an ONNX file, not a PyTorch model: use load_enhancer")


def min_input_samples(model: torch.nn.Module) -> int:
    """The shortest input the model's encoder accepts: one conv window, or more than half an FFT
    for a centred (reflect-padded) STFT."""
    encoder = getattr(model, "encoder", None)
    stft = getattr(encoder, "stft", None)
    if stft is not None and getattr(stft, "center", False):
        return int(stft.n_fft) // 2 + 1
    return int(getattr(encoder, "kernel_size", 1) or 1)


class Enhancer:
    """A single-channel enhancer at a fixed sample rate: ``enhancer(wave [L]) -> [L]``.

    Inputs shorter than ``min_samples`` are zero-padded for the model and cut back afterwards.
    """

    fs: int = DEFAULT_FS
    min_samples: int = 1
    form: str = ""

    def run(self, wave: np.ndarray) -> np.ndarray:
        """[1, L] float32 (L >= min_samples) -> [1, L] float32."""
        raise NotImplementedError

    def __call__(self, wave: np.ndarray) -> np.ndarray:
        wave = np.asarray(wave, dtype=np.float32).reshape(-1)  # [L]
        length = wave.shape[0]
        padded = np.pad(wave, (0, max(0, self.min_samples - length)))[None]  # [1, L']
        return self.run(padded)[0, :length]


class TorchEnhancer(Enhancer):
    """An ESPnet enh model's first estimate from ``forward_enhance``, on ``device``."""

    def __init__(self, model: torch.nn.Module, fs: int, device: str = "cpu", form: str = "dir"):
        self.model = model.to(device).eval()
        self.fs, self.device, self.form = int(fs), device, form
        self.min_samples = min_input_samples(model)

    @torch.inference_mode()
    def run(self, wave: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(wave).to(self.device)  # [1, L]
        lengths = torch.full((1,), x.shape[1], dtype=torch.long, device=self.device)
        est = self.model.forward_enhance(x, lengths, additional={}, fs=self.fs)[0][0]  # [1, L]
        return est.float().cpu().numpy()


def onnx_session(path: Union[PathLike, bytes], threads: Optional[int] = 1, device: str = "cpu"):
    """An onnxruntime session; ``threads`` intra-op threads (None: onnxruntime's default)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
    providers = ["CPUExecutionProvider"]
    if device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    model = path if isinstance(path, bytes) else str(path)  # serialized bytes or a file
    return ort.InferenceSession(model, options, providers=providers)


def onnx_metadata(session) -> Dict[str, str]:
    """The custom metadata written by ``dispatch.deploy.onnx_export.export_onnx`` (sample_rate,
    min_samples, ...)."""
    return dict(session.get_modelmeta().custom_metadata_map)


class OnnxEnhancer(Enhancer):
    """An onnxruntime session of a graph from ``dispatch.bin.export_onnx``."""

    def __init__(self, path: PathLike, device: str = "cpu", threads: Optional[int] = None):
        self.session = onnx_session(path, threads=threads, device=device)
        meta = onnx_metadata(self.session)
        self.fs = int(meta.get("sample_rate", DEFAULT_FS))
        self.min_samples = int(meta.get("min_samples", 1))
        self.input_name = self.session.get_inputs()[0].name
        self.form = "onnx"

    def run(self, wave: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: wave})[0]


class StreamingEnhancer(Enhancer):
    """A causal Conv-TasNet run chunk by chunk (dispatch.deploy.streaming), as a device would."""

    def __init__(self, model: torch.nn.Module, fs: int, chunk_ms: float, form: str = "dir"):
        from dispatch.deploy.streaming import StreamingTasNet, chunk_samples_for

        self.runner = StreamingTasNet(model.to("cpu").eval())  # NotStreamable says why not
        self.fs, self.form = int(fs), f"{form}, streamed"
        self.chunk = chunk_samples_for(model, chunk_ms, self.fs)

    def run(self, wave: np.ndarray) -> np.ndarray:
        return self.runner.run(wave[0], self.chunk)[None]  # [1, L]


def load_enhancer(path: PathLike, device: str = "cpu", threads: Optional[int] = None,
                  stream_chunk_ms: Optional[float] = None) -> Enhancer:
    """An :class:`Enhancer` for an export dir, a packed archive or an ``.onnx`` file; with
    ``stream_chunk_ms``, a causal student run through the chunked streaming runner on CPU."""
    form = model_form(path)
    if stream_chunk_ms is not None and form == "onnx":
        raise ModelLoadError("the ONNX graph takes whole signals; stream the export dir or zip")
    if form == "onnx":
        try:
            return OnnxEnhancer(path, device=device, threads=threads)
        except ModelLoadError:
            raise
        except Exception as exc:  # onnxruntime raises its own exception types for bad files
            raise ModelLoadError(f"onnxruntime cannot load '{path}' "
                                 f"({str(exc).strip().splitlines()[0][:160]})") from None
    if threads is not None:
        torch.set_num_threads(threads)
    model, fs = load_espnet_model(path)
    if stream_chunk_ms is not None:
        from dispatch.deploy.streaming import NotStreamable

        try:
            return StreamingEnhancer(model, fs, stream_chunk_ms, form=form)
        except NotStreamable as exc:
            raise ModelLoadError(f"'{path}' cannot stream: {exc}") from None
    return TorchEnhancer(model, fs, device=device, form=form)
