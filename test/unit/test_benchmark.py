"""Smoke test of dispatch.bin.benchmark at a reduced size: every method runs, JSON parses (no timing asserts)."""
from __future__ import annotations

import json

import torch
import yaml

from helpers import tiny_tasnet_config


def test_benchmark_json_all_methods(tmp_path, capsys):
    from dispatch.bin.benchmark import main
    from dispatch.perf.step_timing import DEFAULT_METHODS, PARTS

    (tmp_path / "t.yaml").write_text(yaml.safe_dump(tiny_tasnet_config(16, 2, 32)))
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(tiny_tasnet_config(8, 1, 16)))
    main(["--teacher_config", str(tmp_path / "t.yaml"), "--student_config", str(tmp_path / "s.yaml"),
          "--batch", "2", "--seconds", "0.25", "--steps", "2", "--warmup", "1", "--json",
          "--out", str(tmp_path / "bench.json")])
    out = capsys.readouterr().out
    report = json.loads(out[out.index("{\n"):])  # the JSON report is the last thing printed
    assert report == json.loads((tmp_path / "bench.json").read_text())
    by_method = {r["method"]: r for r in report["results"]}
    assert list(by_method) == list(DEFAULT_METHODS)
    for method, result in by_method.items():
        assert set(result["median_ms"]) == set(PARTS)
        assert all(v >= 0 for v in result["median_ms"].values())
        assert result["step_ms"] > 0 and result["peak_mem_MB"] >= 0
        if method != "none":
            assert result["median_ms"]["teacher"] > 0 and result["median_ms"]["kd"] > 0
            assert "kd_over_student" in result["ratios"] and "step_over_nokd" in result["ratios"]
    assert by_method["mssp"]["ratios"]["kd_over_l2_mag"] > 0
    # the teacher-output cache serves output KD only: AT-KL needs the teacher's features
    assert by_method["mssp"]["step_cached_ms"] < by_method["mssp"]["step_ms"]
    assert by_method["atkl"]["step_cached_ms"] is None
    assert "step_cached_over_nokd" not in by_method["atkl"]["ratios"]
    assert by_method["dispatch"]["kd_loss_conf"] == {"base": "dfkd"}
    # AT-KL pairs derived from the separator convs present in both models
    pairs = by_method["atkl"]["kd_loss_conf"]["layer_pairs"]
    assert pairs and all(t == s and t.startswith("separator.") for t, s in pairs)
    stats = report["model_stats"]
    assert stats["student"]["params_M"] < stats["teacher"]["params_M"]
    assert stats["student"]["macs_G_per_s"] > 0 and stats["student"]["rtf_cpu_1thread"] > 0


def test_benchmark_table_and_confs(tmp_path, capsys):
    from dispatch.bin.benchmark import main

    (tmp_path / "t.yaml").write_text(yaml.safe_dump(tiny_tasnet_config(16, 2, 32)))
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(tiny_tasnet_config(8, 1, 16)))
    (tmp_path / "atkl.yaml").write_text(yaml.safe_dump(
        {"layer_pairs": [["separator.tcn.network.1", "separator.tcn.network.1"]], "tau": 2.0}))
    (tmp_path / "kd.yaml").write_text(yaml.safe_dump({"mssp": {"split": "fixed"}}))
    report = main(["--teacher_config", str(tmp_path / "t.yaml"),
                   "--student_config", str(tmp_path / "s.yaml"), "--batch", "1",
                   "--seconds", "0.2", "--steps", "1", "--warmup", "0", "--no_model_stats",
                   "--methods", "none", "l2_mag", "mssp", "atkl", "--amp", "bf16",
                   "--atkl_conf", str(tmp_path / "atkl.yaml"), "--kd_conf", str(tmp_path / "kd.yaml")])
    out = capsys.readouterr().out
    assert "kd/stu" in out and "mssp" in out and "atkl" in out
    by_method = {r["method"]: r for r in report["results"]}
    assert by_method["mssp"]["kd_loss_conf"] == {"split": "fixed"}
    assert by_method["atkl"]["kd_loss_conf"]["tau"] == 2.0
    assert "model_stats" not in report
    assert torch.get_default_dtype() == torch.float32
