"""--kd_sweep and --seeds through the real driver: the mini recipe at a tiny size.

One real run, stages 1-9: a one-point sweep over l2_mag and two seeds (a teacher, two no-KD and two
KD students), then a dry run of a 2 x 2 grid over the same recipe, which must give one training job
per grid point and seed.
"""

from __future__ import annotations

import itertools
import json

import yaml

from test_recipe_mini import SMALL, copy_of_mini, sh


def test_kd_sweep_and_seeds_end_to_end(tmp_path):
    recipe = copy_of_mini(tmp_path)
    sh(["./run.sh", *SMALL, "--stop_stage", "9", "--kd_configs", "conf/kd/l2_mag.yaml",
        "--kd_sweep", "kd_weight=10", "--seeds", "0 1"], cwd=recipe)
    exp = recipe / "exp"
    point = "kd_l2_mag__kd_weight10"
    runs = [f"{name}_seed{s}" for name in ("student_nokd", point) for s in (0, 1)]
    trained = sorted(p.name for p in exp.iterdir() if (p / "train.log").is_file())
    assert trained == sorted(["teacher", *runs])  # the teacher once, every student once per seed
    for run in runs:
        config = yaml.safe_load((exp / run / "config.yaml").read_text())
        assert config["seed"] == int(run[-1]), run
        assert json.loads((exp / run / "scoring_test" / "summary.json").read_text())["num_scored"] == 3
    assert yaml.safe_load((exp / f"{point}_seed1" / "config.yaml").read_text())["kd_weight"] == 10
    nokd = [json.loads((exp / f"student_nokd_seed{s}" / "scoring_test" / "summary.json").read_text())
            for s in (0, 1)]
    assert nokd[0]["SI_SNR"] != nokd[1]["SI_SNR"]  # two seeds, two different students

    lines = (recipe / "RESULTS.md").read_text().splitlines()
    rows = {ln.split(" | ")[0].lstrip("| "): ln for ln in lines if ln.startswith("| ") and "[" not in ln}
    assert {"noisy", "teacher", "student_nokd", point} <= set(rows)
    assert not [r for r in rows if "_seed" in r]
    assert "6 over 2 seeds" in rows["student_nokd"] and " ± " in rows["student_nokd"]
    assert "6 over 2 seeds" in rows[point] and "over" not in rows["teacher"]
    delta = [ln for ln in lines if ln.startswith(f"| {point} |") and "[" in ln]
    assert len(delta) == 1 and delta[0].endswith("| 3 × 2 seed pairs |")

    # a 2 x 2 grid and two seeds: one KD training job per point and seed, named after the point
    proc = sh(["./run.sh", "--stage", "5", "--stop_stage", "6", "--dry_run", "true", "--force", "true",
               "--kd_configs", "conf/kd/l2_mag.yaml", "--kd_sweep", "kd_weight=1,10 scale_to_ref=true,false",
               "--seeds", "0 1"], cwd=recipe)
    jobs = [ln for ln in proc.stdout.splitlines() if " -m dispatch.bin.enh_distill_train " in ln]
    assert len(jobs) == 8
    for w, r, s in itertools.product((1, 10), ("true", "false"), (0, 1)):
        name = f"kd_l2_mag__kd_weight{w}_scale_to_ref{r}_seed{s}"
        match = [ln for ln in jobs if f"{name}/config_in.yaml" in ln]
        assert len(match) == 1 and f" --seed {s} " in match[0] + " ", name
    nokd_jobs = [ln for ln in proc.stdout.splitlines() if " -m dispatch.bin.enh_train " in ln]
    assert len(nokd_jobs) == 2 and all(f"student_nokd_seed{s}" in nokd_jobs[s] and
                                       nokd_jobs[s].rstrip().endswith(f"--seed {s}") for s in (0, 1))
