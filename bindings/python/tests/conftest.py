"""Fixtures: one real ``offpay server`` per test module, and file-backed
wallets enrolled with it through the SDK's SyncClient."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field


import pytest

sys.path.insert(0, os.path.dirname(__file__))

import offpay  # noqa: E402
from hosts import SkewedPlatform  # noqa: E402
from offpay_server import OffpayServer  # noqa: E402

PIN = "4321"
# The smallest Argon2id cost the vault accepts: tests only.
TEST_KDF = offpay.KdfSettings(memory_kib=8, passes=1)


@dataclass
class Host:
    """One wallet's host side: its files, counter and platform."""

    root: str
    storage: offpay.FileStorage = field(init=False)
    counter: offpay.FileCounter = field(init=False)
    platform: SkewedPlatform = field(init=False)

    def __post_init__(self) -> None:
        self.storage = offpay.FileStorage(os.path.join(self.root, "files"))
        # The counter outside the files directory (a phone keeps it in hardware).
        self.counter = offpay.FileCounter(os.path.join(self.root, "counter", "wallet.ctr"))
        self.platform = SkewedPlatform(os.path.join(self.root, "keystore", "device.secret"))

    def create(self, root_der: bytes, pin: str = PIN) -> offpay.OffpayWallet:
        return offpay.OffpayWallet.create(
            self.storage, self.counter, self.platform, pin, root_der, TEST_KDF
        )

    def open(self, pin: str = PIN) -> offpay.OffpayWallet:
        return offpay.OffpayWallet.open(self.storage, self.counter, self.platform, pin)


class Bank:
    """The server, its root, and helpers to make enrolled wallets."""

    def __init__(self, server: OffpayServer, tmp: str) -> None:
        self.server = server
        self.tmp = tmp
        self.root_der = server.root_der()
        self.client = offpay.SyncClient(server.url)
        self._n = 0

    def host(self) -> Host:
        self._n += 1
        return Host(os.path.join(self.tmp, f"wallet-{self._n}"))

    def enroll(self, customer: str, w: offpay.OffpayWallet, deposit: str, load: str) -> None:
        """A new customer whose wallet ``w`` enrolls (and loads ``load``)."""
        self.server.customer(customer, deposit)
        self.client.enroll(w, self.server.enrollment_token(customer))
        if load:
            self.server.load(w.wallet_id(), load)
            self.client.sync(w)

    def enrolled(self, customer: str, deposit: str = "100.00", load: str = "") -> "tuple":
        """A new customer with an enrolled file-backed wallet (loaded with
        ``load`` if given): (host, wallet)."""
        host = self.host()
        w = host.create(self.root_der)
        self.enroll(customer, w, deposit, load)
        return host, w


@pytest.fixture(scope="module")
def bank(tmp_path_factory: pytest.TempPathFactory):
    tmp = str(tmp_path_factory.mktemp("offpay"))
    server = OffpayServer(os.path.join(tmp, "server"))
    try:
        yield Bank(server, tmp)
    finally:
        server.stop()


def minor(w: offpay.OffpayWallet) -> int:
    b = w.balance()
    assert b is not None, "an enrolled wallet has a balance"
    return b.minor




def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ARG001
    stats = terminalreporter.stats
    passed = len(stats.get("passed", []))
    failed = len(stats.get("failed", [])) + len(stats.get("error", []))
    terminalreporter.write_line(f"python: {passed} passed, {failed} failed")
