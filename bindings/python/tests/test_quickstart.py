"""examples/quickstart.py (the example docs/SDK.md shows) runs as written."""

from __future__ import annotations

import os
import subprocess
import sys

HERE = os.path.dirname(__file__)
EXAMPLE = os.path.join(HERE, "..", "examples", "quickstart.py")


def test_quickstart_runs_against_the_server(bank, tmp_path):
    env = dict(os.environ)
    env.update(
        OFFPAY_SERVER=bank.server.url,
        OFFPAY_DATA_DIR=bank.server.data_dir,
        OFFPAY_BIN=bank.server.bin,
    )
    p = subprocess.run(
        [sys.executable, EXAMPLE, str(tmp_path / "qs")],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    lines = p.stdout.splitlines()
    assert lines[-1].startswith("bob redeemed 5.00 EUR: offline 2.50 EUR, online 55.00 EUR"), p.stdout
    assert "paid 7.50 EUR offline: alice 12.50 EUR, bob 7.50 EUR" in lines, p.stdout
    assert any(l.startswith("refused as expected: ") for l in lines), p.stdout
    assert bank.server.invariants_ok()
