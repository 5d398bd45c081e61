"""The deployment commands end to end: pack_student --system, export_onnx, dispatch-enhance with
an export dir, a packed zip and an .onnx file; stock ESPnet loads the packed zip."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from helpers import tiny_tasnet_config, write_enh_model


def dispatch_enhance() -> str:
    """The console script next to the test's interpreter (installed by tools/install.sh)."""
    script = Path(sys.executable).parent / "dispatch-enhance"
    if not script.exists():
        script = shutil.which("dispatch-enhance")
    assert script, "dispatch-enhance is not installed: run tools/install.sh"
    return str(script)


@pytest.fixture(scope="module")
def exp(tmp_path_factory) -> Path:
    """exp/student_nokd: a stock ESPnet Conv-TasNet exp dir; exp/kd_x: a KD student with export."""
    root = tmp_path_factory.mktemp("deploy") / "exp"
    files = write_enh_model(root / "student_nokd", tiny_tasnet_config(), seed=4)
    files["model_file"].rename(root / "student_nokd" / "valid.si_snr_loss.best.pth")
    write_enh_model(root / "kd_x" / "export", tiny_tasnet_config(), seed=5)
    config = yaml.safe_load((root / "kd_x" / "export" / "config.yaml").read_text())
    config.update(kd_loss="l2_mag", teacher_config="t.yaml")
    (root / "kd_x" / "config.yaml").write_text(yaml.safe_dump(config))
    return root


def test_pack_any_system_and_stock_espnet_loads_it(exp, tmp_path, monkeypatch, capsys):
    from dispatch.bin.pack_student import main as pack_student

    pack_student([str(exp), "--system", "student_nokd", "--out", str(exp / "packed")])
    pack_student([str(exp), "--system", "kd_x", "--out", str(exp / "packed")])
    assert (exp / "packed" / "student_nokd.zip").is_file()
    assert (exp / "packed" / "kd_x.json").is_file()
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        pack_student([str(exp), "--system", "nothing", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and len(err.strip().splitlines()) == 1
    assert "not a trained system" in err

    import espnet_model_zoo.downloader as downloader
    from espnet2.bin.enh_inference import SeparateSpeech

    stock = downloader.ModelDownloader  # keep the unpacked copy out of site-packages
    monkeypatch.setattr(downloader, "ModelDownloader", lambda *a, **k: stock(tmp_path / "zoo"))
    separate = SeparateSpeech.from_pretrained(model_tag=str(exp / "packed" / "kd_x.zip"),
                                              normalize_output_wav=False)
    x = np.random.default_rng(0).uniform(-0.5, 0.5, (1, 4000)).astype(np.float32)
    from dispatch.deploy.loading import load_enhancer

    expected = load_enhancer(exp / "kd_x" / "export")(x[0])
    got = separate(x, fs=16000)[0][0]
    assert np.max(np.abs(got - expected)) < 1e-5


def test_dispatch_enhance_with_all_three_model_forms(exp, tmp_path, capsys):
    """The console script with an export dir; its main() in-process with the zip and the .onnx
    (the same function: starting espnet three times would cost a minute on two cores)."""
    from dispatch.bin.enhance import main as enhance
    from dispatch.bin.export_onnx import main as export_onnx
    from dispatch.bin.pack_student import main as pack_student

    pack_student([str(exp), "--system", "student_nokd", "--out", str(tmp_path / "packed")])
    export_dir = tmp_path / "export"
    export_dir.mkdir()
    shutil.copy(exp / "student_nokd" / "config.yaml", export_dir / "config.yaml")
    shutil.copy(exp / "student_nokd" / "valid.si_snr_loss.best.pth", export_dir / "model.pth")
    export_onnx([str(export_dir), "--out", str(tmp_path / "m.onnx"), "--exporter", "torchscript"])
    rng = np.random.default_rng(1)
    inputs = tmp_path / "in"
    inputs.mkdir()
    sf.write(inputs / "a.wav", rng.uniform(-0.5, 0.5, 8000).astype(np.float32), 16000)
    sf.write(inputs / "b_22k.wav", rng.uniform(-0.5, 0.5, 11025).astype(np.float32), 22050)
    sf.write(inputs / "stereo.wav", rng.uniform(-0.5, 0.5, (800, 2)).astype(np.float32), 16000)
    (inputs / "broken.wav").write_bytes(b"RIFF0000WAVEjunk")

    outputs = {}
    for form, model in (("dir", export_dir), ("zip", tmp_path / "packed" / "student_nokd.zip"),
                        ("onnx", tmp_path / "m.onnx")):
        out = tmp_path / f"out_{form}"
        args = ["--model", str(model), "--input", str(inputs), "--output", str(out)]
        if form == "dir":
            proc = subprocess.run([dispatch_enhance(), *args], capture_output=True, text=True,
                                  timeout=300)
            code, err = proc.returncode, proc.stderr
        else:
            capsys.readouterr()
            with pytest.raises(SystemExit) as exit_info:
                enhance(args + ["--quiet"])
            code, err = exit_info.value.code, capsys.readouterr().err
        assert code == 1, err[-2000:]  # two bad files, reported
        skipped = [line for line in err.splitlines() if "skipped" in line]
        assert len(skipped) == 2 and any("stereo.wav" in s for s in skipped), err[-2000:]
        assert "2 of 4 files enhanced" in err
        a, fs_a = sf.read(out / "a.wav")
        b, fs_b = sf.read(out / "b_22k.wav")
        assert (fs_a, a.shape, fs_b, b.shape) == (16000, (8000,), 22050, (11025,))
        outputs[form] = (a, b)
    for form in ("zip", "onnx"):  # the same model in three forms gives the same output
        for got, ref in zip(outputs[form], outputs["dir"]):
            assert np.max(np.abs(got - ref)) <= 2 / 32768  # PCM-16 rounding

    single = tmp_path / "one.wav"
    enhance(["--model", str(tmp_path / "m.onnx"), "--input", str(inputs / "a.wav"), "--output",
             str(single)])
    assert sf.info(str(single)).frames == 8000
