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
