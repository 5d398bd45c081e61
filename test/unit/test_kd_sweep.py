"""dispatch.kd.sweep / dispatch.bin.kd_sweep: grid expansion, key resolution, names, errors."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dispatch.bin import kd_sweep as cli
from dispatch.kd.sweep import expand_overlay, parse_sweep, resolve_key, write_sweep

REPO = Path(__file__).resolve().parents[2]
MINI_KD = REPO / "egs" / "mini" / "enh_distill1" / "conf" / "kd"
MSSP = {"kd_loss": "mssp", "kd_loss_conf": {"base": "dfkd", "low_patch_bins": 10,
                                             "high_patch_bins": 40, "k": 0.8}, "kd_weight": 1.0}


def test_parse_sweep_reads_yaml_scalars() -> None:
    axes = parse_sweep("kd_weight=1,10,1e-3  select=topk,positive scale_to_ref=true")
    assert [a.key for a in axes] == ["kd_weight", "select", "scale_to_ref"]
    assert axes[0].texts == ("1", "10", "1e-3") and axes[0].values[:2] == (1, 10)
    assert axes[1].values == ("topk", "positive") and axes[2].values == (True,)


@pytest.mark.parametrize("spec,message", [
    ("", "empty"), ("kd_weight", "key=v1,v2"), ("kd_weight=1,,2", "key=v1,v2"),
    ("k=0.5 k=0.8", "twice"), ("k=0.5,0.5", "repeats"), ("k=[1]", "not a number"),
    ("1k=2", "key=v1,v2")])
def test_bad_specs(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_sweep(spec)


def test_resolve_key() -> None:
    assert resolve_key("kd_weight", MSSP) == ("kd_weight",)
    assert resolve_key("k", MSSP) == ("kd_loss_conf", "k")
    assert resolve_key("split", MSSP) == ("kd_loss_conf", "split")  # an MSSPLoss argument not set yet
    assert resolve_key("kd_loss_conf.k", MSSP) == ("kd_loss_conf", "k")
    assert resolve_key("kd_weight", {"kd_loss": "l2_mag"}) == ("kd_weight",)  # a KD training option
    with pytest.raises(ValueError, match="student config"):
        resolve_key("lr", MSSP)
    with pytest.raises(ValueError, match="both"):
        resolve_key("k", {"kd_loss": "mssp", "k": 1, "kd_loss_conf": {"k": 0.5}})


def test_grid_order_names_and_values() -> None:
    points = expand_overlay(MSSP, parse_sweep("kd_weight=1,10 k=0.5,0.8"))
    assert [p.name for p in points] == ["kd_weight1_k0.5", "kd_weight1_k0.8",
                                        "kd_weight10_k0.5", "kd_weight10_k0.8"]
    third = points[2].overlay
    assert third["kd_weight"] == 10 and third["kd_loss_conf"]["k"] == 0.5
    assert third["kd_loss_conf"]["low_patch_bins"] == 10  # the rest of the base is kept
    assert MSSP["kd_loss_conf"]["k"] == 0.8 and MSSP["kd_weight"] == 1.0  # the base is not touched
    assert points[2].settings == "kd_weight=10, k=0.5"
    with pytest.raises(ValueError, match="k must be in"):  # each point's loss is built once
        expand_overlay(MSSP, parse_sweep("k=0.5,2"), "mssp.yaml")


def test_write_sweep_and_cli(tmp_path: Path, capsys) -> None:
    out = tmp_path / "overlays"
    bases = [MINI_KD / "mssp_dfkd.yaml", MINI_KD / "dispatch_l2.yaml"]
    cli.main(["--sweep", "kd_weight=1,10 k=0.5", "--out_dir", str(out), *map(str, bases)])
    printed = capsys.readouterr().out.split()
    assert [Path(p).name for p in printed] == [
        "mssp_dfkd__kd_weight1_k0.5.yaml", "mssp_dfkd__kd_weight10_k0.5.yaml",
        "dispatch_l2__kd_weight1_k0.5.yaml", "dispatch_l2__kd_weight10_k0.5.yaml"]
    written = yaml.safe_load(Path(printed[3]).read_text())
    base = yaml.safe_load(bases[1].read_text())
    assert written == {**base, "kd_weight": 10, "kd_loss_conf": {**base["kd_loss_conf"], "k": 0.5}}
    assert Path(printed[3]).read_text().startswith(f"# {bases[1]} with kd_weight=10, k=0.5")
    dry = write_sweep(bases[:1], "k=0.3", tmp_path / "dry", dry_run=True)
    assert [p.name for p in dry] == ["mssp_dfkd__k0.3.yaml"] and not (tmp_path / "dry").exists()


@pytest.mark.parametrize("args,message", [
    (["--sweep", "k=0.5"], "at least one base KD overlay"),
    (["--sweep", "k=0.5", str(MINI_KD / "l2_mag.yaml")], "kd_loss_conf key of kd_loss 'l2_mag'"),
    (["--sweep", "k=0.5", "missing.yaml"], "missing.yaml does not exist"),
    (["--sweep", "k=0.5", str(MINI_KD / "dfkd.yaml"), str(MINI_KD / "dfkd.yaml")], "named 'dfkd'"),
])
def test_cli_errors_are_one_line(tmp_path: Path, capsys, args, message) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(args + ["--out_dir", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and message in err and "\n" not in err
