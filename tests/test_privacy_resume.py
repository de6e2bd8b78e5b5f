"""A resumed run counts every noised release: rounds a killed run released after its last
checkpoint are recomputed with fresh noise, so each such round is released more than once with
the same client sample and is accounted without amplification by sampling (docs/privacy.md)."""
import shutil

import pytest

from fl.aggregation.privacy import fixed_size_rdp_epsilon
from fl.cli import find_config
from fl.config import load_config
from fl.experiment import resume_experiment, run_experiment
from fl.rundir import RunDirError
from run_records import accounting, rows

NOISE = ["data.path=synthetic:20", "run.checkpoint_every=2", "aggregation.weighting=fixed",
         "aggregation.client_clip=1.0", "aggregation.noise=central", "aggregation.noise_std=1.0"]



def test_rounds_released_before_a_resume_are_counted_again_across_two_kills(tmp_path):
    cfg = load_config(find_config("synthetic_small"), ["run.rounds=4", *NOISE])
    acct = accounting(cfg)
    out = tmp_path / "run"
    run_experiment(cfg, out=out, progress=False, stop_after=3)  # checkpoint after 2 rounds; round 2 released
    killed = rows(out / "rounds.csv")
    assert len(killed) == 3
    z = float(killed[2]["dp_noise_multiplier"])
    warnings = []
    resume_experiment(out, progress=False, stop_after=3, warn=warnings.append)  # round 2 released again, killed
    assert any("recomputed with fresh noise" in w for w in warnings)
    resume_experiment(out, progress=False)  # round 2 a third time, then round 3
    final = rows(out / "rounds.csv")
    assert [r for r, _ in _ledger(out)] == [2, 2]
    # rounds 0, 1, 3 are sampled once each; round 2 was released three times with one sample
    # (delta less the sampler support tail, docs/privacy.md)
    expect_2 = fixed_size_rdp_epsilon({z: 2}, acct.sample_size, acct.population, acct.delta,
                                      unsampled={z: 3})
    expect_3 = fixed_size_rdp_epsilon({z: 3}, acct.sample_size, acct.population, acct.delta,
                                      unsampled={z: 3})
    assert float(final[2]["dp_epsilon"]) == pytest.approx(expect_2, rel=1e-9)
    assert float(final[3]["dp_epsilon"]) == pytest.approx(expect_3, rel=1e-9)
    # what the run recorded before this fix: round 3 as four sampled rounds
    once = fixed_size_rdp_epsilon({z: 4}, acct.sample_size, acct.population, acct.delta)
    assert float(final[3]["dp_epsilon"]) > once


def _ledger(out):
    return [(int(r["round"]), float(r["dp_noise_multiplier"])) for r in rows(out / "rereleased.csv")]


def test_a_damaged_ledger_refuses_the_resume_and_changes_nothing(tmp_path):
    cfg = load_config(find_config("synthetic_small"), ["run.rounds=4", *NOISE])
    out = tmp_path / "run"
    run_experiment(cfg, out=out, progress=False, stop_after=3)
    resume_experiment(out, progress=False, stop_after=3)
    (out / "rereleased.csv").write_text("round,dp_noise_multiplier\n2,not a number\n")
    before = (out / "rounds.csv").read_bytes()
    with pytest.raises(RunDirError, match="rereleased.csv line 2 is malformed"):
        resume_experiment(out, progress=False)
    assert (out / "rounds.csv").read_bytes() == before
    (out / "rereleased.csv").unlink()
    shutil.rmtree(out / "checkpoints")  # no checkpoint: every row on disk is a release to count
    (out / "rounds.csv").write_text("round,dp_noise_multiplier\nx,1\n")
    with pytest.raises(RunDirError, match="rounds.csv has a malformed row"):
        resume_experiment(out, progress=False)


def test_seeded_noise_resumes_only_where_nothing_released_is_recomputed(tmp_path):
    """Stopped at a checkpoint, a seeded run resumes and ends as the uninterrupted one, nothing
    counted again; stopped after a release past its checkpoint, the resume is refused (the same
    noise on a recomputed sum that differs at all would publish the difference without noise)."""
    cfg = load_config(find_config("synthetic_small"), ["run.rounds=4", *NOISE, "aggregation.noise_seeded=true"])
    whole = tmp_path / "whole"
    run_experiment(cfg, out=whole, progress=False)
    late = tmp_path / "late"
    run_experiment(cfg, out=late, progress=False, stop_after=3)  # round 2 released after checkpoint 2
    with pytest.raises(RunDirError, match="released with seeded noise"):
        resume_experiment(late, progress=False)
    out = tmp_path / "run"
    run_experiment(cfg, out=out, progress=False, stop_after=2)  # stopped at checkpoint 2
    resume_experiment(out, progress=False)
    assert not (out / "rereleased.csv").exists()
    def timeless(table):
        return [{k: v for k, v in r.items() if k != "seconds"} for r in table]
    assert timeless(rows(out / "rounds.csv")) == timeless(rows(whole / "rounds.csv"))


def _tables(out):
    return {name: (out / name).read_bytes() for name in ("rounds.csv", "metrics.csv", "config.toml")
            if (out / name).exists()}


def test_a_resume_with_fewer_rounds_than_released_is_refused(tmp_path):
    """Third audit, F4: a run killed after releasing rounds 0-4 (checkpoint after 3), resumed with
    run.rounds = 3, used to drop rounds 3 and 4 from every record (no dp_epsilon counted them)."""
    cfg = load_config(find_config("synthetic_small"), ["run.rounds=6", *NOISE, "run.checkpoint_every=3"])
    out = tmp_path / "run"
    run_experiment(cfg, out=out, progress=False, stop_after=5)
    before = _tables(out)
    for rounds in (3, 4):
        with pytest.raises(RunDirError, match=rf"run.rounds = {rounds} is below the 5 rounds .*released with noise"):
            resume_experiment(out, [f"run.rounds={rounds}"], progress=False)
        assert _tables(out) == before and not (out / "rereleased.csv").exists()
    resume_experiment(out, ["run.rounds=5"], progress=False)  # rounds 3 and 4 recomputed and counted
    assert [r for r, _ in _ledger(out)] == [3, 4]
    assert [int(r["round"]) for r in rows(out / "rounds.csv")] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("seeded", [False, True])
@pytest.mark.parametrize("damage", ["missing", "cut short"])
def test_a_lost_or_stale_rounds_csv_refuses_a_noised_resume(tmp_path, seeded, damage):
    """Third audit, F6: round 2 was released after checkpoint 2 (metrics.csv records it); with
    rounds.csv removed or cut back to rounds 0-1 the resume used to forget that release (CSPRNG)
    or recompute it with the same noise (seeded)."""
    extra = ["aggregation.noise_seeded=true"] if seeded else []
    cfg = load_config(find_config("synthetic_small"), ["run.rounds=4", *NOISE, *extra])
    out = tmp_path / "run"
    run_experiment(cfg, out=out, progress=False, stop_after=3)
    assert float(rows(out / "metrics.csv")[2]["dp_noise_multiplier"]) > 0
    if damage == "missing":
        (out / "rounds.csv").unlink()
    else:
        text = (out / "rounds.csv").read_text().splitlines(keepends=True)
        (out / "rounds.csv").write_text("".join(text[:3]))  # header, rounds 0 and 1
    before = _tables(out)
    message = "rounds.csv is missing" if damage == "missing" else "rounds.csv ends at round 1 but metrics.csv"
    with pytest.raises(RunDirError, match=message):
        resume_experiment(out, progress=False)
    assert _tables(out) == before and not (out / "rereleased.csv").exists()


def test_a_noised_run_killed_before_its_first_round_resumes(tmp_path):
    """No checkpoint, no rounds.csv and no metrics.csv: nothing was released, the run starts over."""
    cfg = load_config(find_config("synthetic_small"), ["run.rounds=2", *NOISE])
    out = tmp_path / "run"
    run_experiment(cfg, out=out, progress=False, stop_after=0)
    assert not (out / "rounds.csv").exists()
    summary = resume_experiment(out, progress=False)
    assert summary.finished and len(rows(out / "rounds.csv")) == 2
