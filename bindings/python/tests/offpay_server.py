"""A real ``offpay server`` on loopback for the tests, the bench and the
quickstart: a free port (``--listen 127.0.0.1:0``, the server's first JSON
line says which), a temporary data directory, and the operator's side through
``offpay --json admin``.

The binary is ``$OFFPAY_BIN``, else ``target/debug/offpay`` of this
repository, else ``offpay`` on PATH.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import threading
from typing import Any, Optional

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
START_TIMEOUT_S = 60
ADMIN_TIMEOUT_S = 60


def offpay_bin() -> str:
    b = os.environ.get("OFFPAY_BIN")
    if b:
        return b
    local = os.path.join(REPO, "target", "debug", "offpay")
    if os.path.exists(local):
        return local
    found = shutil.which("offpay")
    if found:
        return found
    raise RuntimeError("no offpay binary: build it (cargo build -p offpay-cli) or set OFFPAY_BIN")


class AdminError(Exception):
    """``offpay admin`` refused: its stable ``code`` and message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def pem_to_der(pem: str) -> bytes:
    """The DER of the first PEM block (a certificate)."""
    lines = pem.strip().splitlines()
    try:
        start = next(i for i, l in enumerate(lines) if l.startswith("-----BEGIN "))
        end = next(i for i, l in enumerate(lines) if i > start and l.startswith("-----END "))
    except StopIteration:
        raise ValueError("no PEM block") from None
    return base64.b64decode("".join(lines[start + 1 : end]), validate=True)


class OffpayServer:
    """``offpay --json server --listen 127.0.0.1:0 --data-dir DIR``, our child."""

    def __init__(self, workdir: Optional[str] = None, args: tuple = ()) -> None:
        self._tmp = None
        if workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="offpay-py-")
            workdir = self._tmp.name
        self.workdir = workdir
        self.data_dir = os.path.join(workdir, "server-data")
        self.bin = offpay_bin()
        self.proc = subprocess.Popen(
            [self.bin, "--json", "server", "--listen", "127.0.0.1:0", "--data-dir", self.data_dir, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        line = self._first_line()
        try:
            event = json.loads(line)
        except ValueError:
            self.stop()
            raise RuntimeError(f"offpay server's first line is not JSON: {line!r}") from None
        if event.get("event") != "listening":
            self.stop()
            raise RuntimeError(f"offpay server did not start: {line!r}")
        self.url: str = event["url"]
        # Keep draining stdout so the server never blocks on a full pipe.
        threading.Thread(target=self._drain, daemon=True).start()

    def _first_line(self) -> str:
        result: list = []
        t = threading.Thread(target=lambda: result.append(self.proc.stdout.readline()), daemon=True)
        t.start()
        t.join(START_TIMEOUT_S)
        if not result or not result[0]:
            self.stop()
            raise RuntimeError(f"offpay server gave no first line within {START_TIMEOUT_S} s")
        return result[0]

    def _drain(self) -> None:
        for _ in self.proc.stdout:
            pass

    def admin(self, *args: str) -> Any:
        """``offpay --json admin --server URL --data-dir DATA ARGS``: its JSON,
        or :class:`AdminError` with the refusal's code."""
        cmd = [self.bin, "--json", "admin", "--server", self.url, "--data-dir", self.data_dir, *args]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=ADMIN_TIMEOUT_S)
        try:
            v = json.loads(p.stdout)
        except ValueError:
            v = None
        if p.returncode != 0 or not isinstance(v, dict) or v.get("ok") is not True:
            err = v.get("error") if isinstance(v, dict) else None
            if not isinstance(err, dict):
                err = {}
            raise AdminError(
                str(err.get("code", f"exit {p.returncode}")),
                str(err.get("message", (p.stdout + p.stderr).strip())),
            )
        return v

    # The bank's side of the story.
    def customer(self, customer_id: str, deposit: str = "0") -> None:
        self.admin("create-account", customer_id, "--name", customer_id)
        if deposit != "0":
            self.admin("deposit", customer_id, deposit)

    def enrollment_token(self, customer_id: str) -> str:
        return self.admin("enrollment-token", customer_id)["token"]

    def load(self, wallet_id: str, amount: str) -> Any:
        return self.admin("load", wallet_id, amount)

    def online_minor(self, customer_id: str) -> int:
        return int(self.admin("account", customer_id)["balance_minor"])

    def wallet_info(self, wallet_id: str) -> Any:
        return self.admin("wallet", wallet_id)

    def invariants_ok(self) -> bool:
        try:
            return self.admin("invariants").get("invariants_ok") is True
        except AdminError:
            return False

    def root_der(self) -> bytes:
        """The scheme root, as the operator exports it (the app pins this)."""
        out = os.path.join(self.workdir, "pki")
        self.admin("pki", "export", out)
        with open(os.path.join(out, "root.pem"), encoding="ascii") as f:
            return pem_to_der(f.read())

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> "OffpayServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
