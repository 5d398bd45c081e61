"""dispatch.deploy: ONNX export equals PyTorch, chunked streaming equals whole-utterance inference,
latency, loading of the three model forms, file/folder/scp enhancement with bad inputs."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from helpers import full_args, speech_folder, tiny_tasnet_config, write_enh_model


def causal_config(**separator) -> dict:
    """A tiny causal Conv-TasNet (cLN, 2 stacks of 3 blocks: dilations 1, 2, 4)."""
    config = tiny_tasnet_config(channel=16, layer=3, hidden=32)
    config["separator_conf"].update(causal=True, norm_type="cLN", stack=2, **separator)
    return config


def build(config: dict, seed: int = 0) -> torch.nn.Module:
    """An ESPnet enh model with randomised weights (PReLU slopes and norm gains included)."""
    from espnet2.tasks.enh import EnhancementTask

    torch.manual_seed(seed)
    model = EnhancementTask.build_model(full_args(config)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model


def speech(seconds: float = 1.3, fs: int = 16000, seed: int = 0) -> np.ndarray:
    """Synthetic noisy speech from the mini corpus generator, peak-normalised, [L] float32."""
    from dispatch.data.mini import make_speakers, synth_speech

    rng = np.random.default_rng(seed)
    x = synth_speech(make_speakers(seed, 1, "spk", 1000)[0], int(seconds * fs), fs, rng)
    x = x + 0.01 * rng.standard_normal(x.shape[0])  # [L]
    return (x / np.max(np.abs(x))).astype(np.float32)


def torch_out(model: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    """forward_enhance's first estimate for one signal [L] -> [L]."""
    from dispatch.deploy.loading import TorchEnhancer

    return TorchEnhancer(model, 16000).run(x[None])[0]


def real_speech() -> list:
    """The first two noisy files of helpers.speech_folder (VoiceBank p232, else synthetic), peak-normalised."""
    out = []
    for path in sorted((speech_folder() / "noisy").glob("*.wav"))[:2]:
        x, _ = sf.read(path, dtype="float32")
        out.append(x / np.max(np.abs(x)))
    return out


# ---- ONNX ------------------------------------------------------------------------------------

@pytest.mark.parametrize("exporter", ["dynamo", "torchscript"])
def test_onnx_equals_pytorch_on_speech_of_several_lengths(tmp_path, exporter):
    from dispatch.deploy.loading import onnx_metadata, onnx_session
    from dispatch.deploy.onnx_export import export_onnx

    model = build(causal_config() if exporter == "dynamo" else tiny_tasnet_config(16, 3, 32))
    report = export_onnx(model, tmp_path / "m.onnx", 16000, exporter=exporter)
    assert report["max_abs_err"] <= 1e-4
    session = onnx_session(tmp_path / "m.onnx")
    assert onnx_metadata(session)["sample_rate"] == "16000"
    assert onnx_metadata(session)["min_samples"] == "16"
    signals = [speech(1.3), speech(0.71, seed=1), np.random.default_rng(5).uniform(-1, 1, 16).astype(np.float32)]
    try:
        signals += real_speech()
    except pytest.skip.Exception:
        pass
    for x in signals:
        got = session.run(None, {"wav": x[None]})[0]  # [1, L]
        assert got.shape == (1, x.shape[0])
        assert np.max(np.abs(got[0] - torch_out(model, x))) <= 1e-4


def test_stft_students_do_not_export_and_say_why():
    from dispatch.deploy.onnx_export import NotExportable, check_exportable

    config = {"encoder": "stft", "encoder_conf": {"n_fft": 64, "hop_length": 16},
              "decoder": "stft", "decoder_conf": {"n_fft": 64, "hop_length": 16},
              "separator": "dccrn", "separator_conf": {"num_spk": 1, "rnn_units": 8,
                                                       "kernel_num": [4, 8], "use_clstm": True},
              "init": None}
    with pytest.raises(NotExportable, match="complex"):
        check_exportable(build(config))


# ---- streaming ---------------------------------------------------------------------------------

@pytest.mark.parametrize("chunk", [16, 160, 333, 4000])
def test_chunked_streaming_equals_whole_utterance(chunk):
    from dispatch.deploy.streaming import StreamingTasNet

    model = build(causal_config(), seed=3)
    runner = StreamingTasNet(model)
    for x in (speech(0.4 if chunk == 16 else 1.3), speech(0.5, seed=4)[:5007]):
        y = runner.run(x, chunk)
        assert y.shape == x.shape
        assert np.max(np.abs(y - torch_out(model, x))) <= 1e-4


def test_streaming_state_is_bounded():
    from dispatch.deploy.streaming import StreamingTasNet

    runner = StreamingTasNet(build(causal_config()))
    sizes = []
    x = speech(1.0)
    for i in range(0, x.shape[0], 160):
        runner.process(x[i:i + 160])
        sizes.append(runner.state_numel())
    assert max(sizes) == max(sizes[5:]) and max(sizes) < 1000  # does not grow with the stream


@pytest.mark.parametrize("chunk", [8, 16, 160])
def test_latency_formula_matches_when_the_runner_emits(chunk):
    """Latency measured from the runner: output sample n first appears after the call that
    completes input sample count c; its latency is c - n. The worst case is the formula."""
    from dispatch.deploy.streaming import StreamingTasNet, algorithmic_latency_samples

    runner = StreamingTasNet(build(causal_config()))
    x = speech(0.15)
    emitted, worst = 0, 0
    for i in range(0, x.shape[0] - chunk + 1, chunk):
        new = runner.process(x[i:i + chunk]).shape[0]
        received = i + chunk
        if new:
            worst = max(worst, received - emitted)  # the earliest newly emitted sample waited most
        emitted += new
    kernel, stride = runner.kernel, runner.stride
    assert worst == algorithmic_latency_samples(kernel, stride, chunk)
    if chunk == stride:
        assert worst == kernel  # frame-by-frame: the encoder window
    else:
        assert worst == chunk + kernel - stride


def test_non_causal_students_do_not_stream_and_say_why():
    from dispatch.deploy.streaming import NotStreamable, StreamingTasNet, streaming_stats

    with pytest.raises(NotStreamable, match="causal: true"):
        StreamingTasNet(build(tiny_tasnet_config()))
    gln = causal_config()
    gln["separator_conf"]["norm_type"] = "gLN"
    with pytest.raises(NotStreamable, match="cLN"):
        StreamingTasNet(build(gln))
    stats = streaming_stats(build(tiny_tasnet_config()), 16000)
    assert stats["causal"] is False and stats["latency_ms"] is None


def test_streaming_stats_of_a_causal_student():
    from dispatch.deploy.streaming import streaming_stats

    stats = streaming_stats(build(causal_config()), 16000, chunk_ms=10.0, seconds=0.5)
    assert stats["causal"] is True
    assert stats["chunk_ms"] == 10.0
    assert stats["latency_ms"] == pytest.approx(1000 * (160 + 16 - 8) / 16000)
    assert stats["rtf_chunk_1thread"] > 0


# ---- loading and files -------------------------------------------------------------------------

def test_export_dir_and_archive_load_alike(tmp_path):
    from dispatch.deploy.loading import ModelLoadError, load_enhancer
    from dispatch.deploy.pack import pack_system

    write_enh_model(tmp_path / "sys", tiny_tasnet_config(), seed=2)
    zip_path = pack_system(tmp_path / "sys", tmp_path / "packed" / "sys.zip")
    x = speech(0.4)
    a = load_enhancer(tmp_path / "sys")(x)
    b = load_enhancer(zip_path)(x)
    assert a.shape == x.shape and np.array_equal(a, b)
    assert load_enhancer(tmp_path / "sys")(x[:5]).shape == (5,)  # shorter than one window
    (tmp_path / "bad.zip").write_bytes(b"not a zip")
    with pytest.raises(ModelLoadError, match="not an ESPnet model archive"):
        load_enhancer(tmp_path / "bad.zip")
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_enhancer(tmp_path / "missing")


def test_enhance_jobs_resample_and_skip_bad_files(tmp_path):
    from dispatch.deploy.files import enhance_jobs, plan_jobs
    from dispatch.deploy.loading import load_enhancer

    write_enh_model(tmp_path / "sys", tiny_tasnet_config(), seed=2)
    enhancer = load_enhancer(tmp_path / "sys")
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    sf.write(src / "a16k.wav", speech(0.5), 16000)
    sf.write(src / "sub" / "b8k.flac", speech(0.5, 8000), 8000)
    sf.write(src / "stereo.wav", np.stack([speech(0.3)] * 2, axis=1), 16000)
    sf.write(src / "empty.wav", np.zeros(0, dtype=np.float32), 16000)
    (src / "garbage.wav").write_bytes(b"RIFF....not audio")
    jobs, scp = plan_jobs(str(src), str(tmp_path / "out"))
    assert scp is None and len(jobs) == 5
    done, errors = enhance_jobs(enhancer, jobs)
    assert sorted(j.key for j in done) == ["a16k.wav", "sub/b8k.flac"]
    assert len(errors) == 3 and all("\n" not in e for e in errors)
    assert any("channels" in e and "mono" in e for e in errors)
    y8, fs8 = sf.read(tmp_path / "out" / "sub" / "b8k.wav")
    assert fs8 == 8000 and y8.shape == (4000,) and np.max(np.abs(y8)) == pytest.approx(0.9, abs=1e-3)
    y16, fs16 = sf.read(tmp_path / "out" / "a16k.wav")
    expected = enhancer(speech(0.5))
    expected = expected * 0.9 / np.max(np.abs(expected))
    assert fs16 == 16000 and np.max(np.abs(y16 - expected)) < 1e-3  # PCM-16 rounding


def test_plan_jobs_file_and_scp(tmp_path):
    from dispatch.deploy.files import InputError, plan_jobs

    wav = tmp_path / "x.wav"
    sf.write(wav, speech(0.1), 16000)
    assert plan_jobs(str(wav), str(tmp_path / "y.wav"))[0][0].target == tmp_path / "y.wav"
    assert plan_jobs(str(wav), str(tmp_path / "dir"))[0][0].target == tmp_path / "dir" / "x.wav"
    scp = tmp_path / "wav.scp"
    scp.write_text(f"u1 {wav}\nu2 {wav}\n")
    jobs, out_scp = plan_jobs(str(scp), str(tmp_path / "o"))
    assert [j.key for j in jobs] == ["u1", "u2"] and out_scp == tmp_path / "o" / "spk1.scp"
    with pytest.raises(InputError, match="does not exist"):
        plan_jobs(str(tmp_path / "nope.wav"), str(tmp_path / "o"))


def test_model_stats_reports_onnx_rtf_latency_and_chunk_rtf(tmp_path):
    import json

    import yaml

    from dispatch.bin.model_stats import main as model_stats

    (tmp_path / "causal.yaml").write_text(yaml.safe_dump(causal_config()))
    (tmp_path / "dccrn.yaml").write_text(yaml.safe_dump(
        {"encoder": "stft", "encoder_conf": {"n_fft": 64, "hop_length": 16}, "decoder": "stft",
         "decoder_conf": {"n_fft": 64, "hop_length": 16}, "separator": "dccrn",
         "separator_conf": {"num_spk": 1, "rnn_units": 8, "kernel_num": [4, 8]}, "init": None}))
    for name in ("causal", "dccrn"):
        model_stats(["--config", str(tmp_path / f"{name}.yaml"), "--out", str(tmp_path / f"{name}.json"),
                     "--seconds", "0.5", "--runs", "2"])
    causal = json.loads((tmp_path / "causal.json").read_text())
    assert causal["rtf_onnx_1thread"] > 0 and causal["rtf_chunk_1thread"] > 0
    assert causal["latency_ms"] == pytest.approx(10.5) and causal["causal"] is True
    dccrn = json.loads((tmp_path / "dccrn.json").read_text())
    assert dccrn["rtf_onnx_1thread"] is None and "complex" in dccrn["onnx_note"]
    assert dccrn["latency_ms"] is None and dccrn["rtf_cpu_1thread"] > 0


def test_results_table_shows_onnx_rtf_and_latency_of_causal_systems(tmp_path):
    import json

    from dispatch.results.report import make_results

    root = tmp_path / "recipe" / "exp"
    stats = {"student_nokd": {"params_M": 0.01, "rtf_cpu_1thread": 0.02, "rtf_onnx_1thread": 0.011,
                              "latency_ms": None},
             "kd_causal_x": {"params_M": 0.01, "rtf_cpu_1thread": 0.02, "rtf_onnx_1thread": 0.012,
                             "latency_ms": 10.5, "rtf_chunk_1thread": 0.25}}
    for name, values in stats.items():
        (root / name / "scoring_test").mkdir(parents=True)
        (root / name / "scoring_test" / "summary.json").write_text(json.dumps({"SI_SNR": 5.0}))
        (root / name / "model_stats.json").write_text(json.dumps(values))
    make_results(root, ["test"], resamples=10)
    table = (tmp_path / "recipe" / "RESULTS.md").read_text()
    header = next(line for line in table.splitlines() if line.startswith("| system"))
    assert "RTF (ONNX, 1 thread)" in header and "latency (ms)" in header
    causal = next(line for line in table.splitlines() if line.startswith("| kd_causal_x"))
    nokd = next(line for line in table.splitlines() if line.startswith("| student_nokd"))
    assert "| 10.5 |" in causal and "| 0.250 |" in causal and "| 0.012 |" in causal
    assert nokd.count("—") >= 2  # no latency, no chunk RTF for a non-causal system


@pytest.mark.parametrize("recipe", ["mini", "vctk_noisy", "dns_ins20"])
def test_causal_overlay_gives_a_streamable_student(recipe, tmp_path, monkeypatch):
    """conf/kd/causal_mssp_dfkd.yaml names the causal student; merged, it builds a model that
    the chunked runner accepts (causal, cLN), with the recipe's KD options."""
    from dispatch.bin.merge_config import load_yaml, merge_config
    from dispatch.models.teacher import build_enh_model
    from dispatch.deploy.streaming import check_streamable

    from helpers import REPO

    folder = REPO / "egs" / recipe / "enh_distill1"
    monkeypatch.chdir(tmp_path)  # found from the overlay's folder, not only from the recipe's
    overlay = folder / "conf" / "kd" / "causal_mssp_dfkd.yaml"
    merged = merge_config(load_yaml(folder / "conf" / "student.yaml"), load_yaml(overlay), str(overlay))
    assert merged["separator_conf"]["causal"] is True and "student_config" not in merged
    assert merged["kd_loss"] == load_yaml(folder / "conf" / "kd" / "mssp_dfkd.yaml")["kd_loss"]
    check_streamable(build_enh_model(merged))
    with pytest.raises(FileNotFoundError, match="student_config"):
        merge_config({}, {"kd_loss": "l2_mag", "student_config": "conf/nothing.yaml"}, str(overlay))


def test_streaming_enhancer_equals_whole_utterance_and_refuses_non_causal(tmp_path):
    from dispatch.deploy.loading import ModelLoadError, load_enhancer

    write_enh_model(tmp_path / "causal", causal_config(), seed=6)
    write_enh_model(tmp_path / "offline", tiny_tasnet_config(), seed=6)
    x = speech(0.7)
    streamed = load_enhancer(tmp_path / "causal", stream_chunk_ms=10)
    assert streamed.form == "dir, streamed"
    assert np.max(np.abs(streamed(x) - load_enhancer(tmp_path / "causal")(x))) <= 1e-4
    with pytest.raises(ModelLoadError, match="cannot stream.*causal: true"):
        load_enhancer(tmp_path / "offline", stream_chunk_ms=10)
