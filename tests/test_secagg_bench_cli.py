"""The ``sabre bench secagg`` contract: a human summary, then one JSON object as the last line."""
from __future__ import annotations

import json

import pytest

from secagg.bench import main

REQUIRED = {"clients", "dim", "client_s_mean", "server_s", "upload_bytes_per_client", "plain_sum_s", "exact"}


@pytest.mark.parametrize("extra", [[], ["--graph", "sparse", "--dropout", "0.2"], ["--active", "--bits", "20"]],
                         ids=["complete", "sparse-dropout", "active-k20"])
def test_json_last_line(capsys, extra):
    assert main(["--clients", "6", "--dim", "300", "--json", *extra]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) > 1 and "exact" in lines[0] + lines[-2]
    record = json.loads(lines[-1])
    assert REQUIRED <= record.keys()
    assert record["clients"] == 6 and record["dim"] == 300 and record["exact"] is True
    assert record["upload_bytes_per_client"] >= 4 * 300


def test_without_json_no_json_line(capsys):
    assert main(["--clients", "4", "--dim", "50"]) == 0
    assert not capsys.readouterr().out.strip().splitlines()[-1].startswith("{")


def test_sparse_active_refused_unless_unsafe_opt_in(capsys):
    """``--graph sparse --active`` is refused (exit 2, one error naming the ring cut); the research
    opt-in runs it and marks the record."""
    with pytest.raises(SystemExit) as info:
        main(["--clients", "6", "--dim", "50", "--graph", "sparse", "--active"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "uneven share delivery" in err and "Ring cut by uneven share delivery" in err
    with pytest.raises(SystemExit):
        main(["--clients", "6", "--dim", "50", "--unsafe-sparse-active"])  # meaningless without sparse + active
    capsys.readouterr()
    assert main(["--clients", "6", "--dim", "50", "--graph", "sparse", "--active", "--unsafe-sparse-active", "--json"]) == 0
    captured = capsys.readouterr()
    record = json.loads(captured.out.strip().splitlines()[-1])
    assert record["unsafe_sparse_active"] is True and record["exact"] is True
    assert "WARNING" in captured.err


def test_bad_shares_blamed_and_exact(capsys):
    """``--bad-shares K``: the K liars are named (sorted), the sum stays exact, and the same run
    measures the round without them (``honest``, ``server_s_ratio_bad_shares``)."""
    assert main(["--clients", "9", "--dim", "40", "--bad-shares", "2", "--json"]) == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert record["exact"] is True and record["bad_shares"] == 2
    assert len(record["blamed"]) == 2 and record["blamed"] == sorted(record["blamed"])
    assert record["honest"]["blamed"] == [] and record["honest"]["exact"] is True
    assert record["server_s_ratio_bad_shares"] > 0


def test_too_many_bad_shares_fail_closed(capsys):
    # 9 clients, t = 7: a liar's own secret keeps 9 - k honest shares; k = 3 leaves 6 < 7
    assert main(["--clients", "9", "--dim", "40", "--bad-shares", "3", "--json"]) == 1
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert record["failed"] == "too_few_valid_shares" and record["exact"] is False and len(record["blamed"]) == 3
    with pytest.raises(SystemExit):
        main(["--clients", "9", "--dim", "40", "--bad-shares", "10"])
