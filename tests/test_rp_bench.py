"""``sabre bench proof``: the JSON line carries the machine calibration and the times in MSM terms."""
import json

from rangeproof import bench


def test_json_line_reports_terms_and_calibration(capsys, monkeypatch):
    monkeypatch.setattr(bench, "msm_us_per_term",
                        lambda clock=None: 10.0 if clock is bench.time.process_time else 12.5)
    assert bench.main(["--dim", "40", "--clients", "2", "--json"]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["msm_us_per_term"] == 12.5 and line["msm_us_per_term_samples"] == [12.5] * 4
    for name in ("commit", "prove", "verify", "batch_verify"):
        # the seconds are printed rounded to 1 ms, the terms from the unrounded time
        assert abs(line[f"{name}_terms"] - line[f"{name}_s"] * 1e6 / 12.5) <= 0.0005e6 / 12.5 + 1
        assert abs(line["scaled_to_15us"][f"{name}_s"] - line[f"{name}_s"] * 15 / 12.5) < 2e-3
        # CPU time, against the CPU-time calibration
        cpu = line["cpu_s"][f"{name}_s"]
        assert 0 < cpu and abs(line["scaled_cpu_to_15us"][f"{name}_s"] - cpu * 15 / 10.0) < 2e-3
    assert line["msm_cpu_us_per_term_samples"] == [10.0] * 4
    assert line["bound_factor"] == 1.0 and "slack" not in line  # the exact L2 proof
    assert line["projections"] == 128
    assert line["cpu_model"] and line["load_avg"] is not None
    assert line["proof_bytes"] > 0 and line["soundness_bits"] >= 64
    from rangeproof import native_msm
    assert line["msm_backend"] == ("native-buckets" if native_msm.available() else "openssl")
    assert line["tables_s"] >= 0


def test_calibration_measures_a_positive_cost():
    assert 0.0 < bench.msm_us_per_term(terms=512, repeats=1) < 10_000.0
    assert 0.0 < bench.msm_us_per_term(terms=512, repeats=1, clock=bench.time.process_time) < 10_000.0


def test_without_calibration_the_term_fields_are_null(capsys):
    assert bench.main(["--dim", "8", "--norm", "linf", "--bound", "0.01", "--json", "--no-calibration"]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["msm_us_per_term"] is None and line["verify_terms"] is None
    assert line["bound_factor"] == 1.0
