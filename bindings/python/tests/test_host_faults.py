"""What the host can do wrong: roll its storage back, fail a write, call
from several threads. The wallet detects, refuses, and never loses or
creates money."""

from __future__ import annotations

import threading

import pytest

import offpay
from conftest import PIN, TEST_KDF, minor
from hosts import MemoryCounter, MemoryPlatform, MemoryStorage
from test_story import pay_round

E = offpay.OffpayError


class MemHost:
    def __init__(self) -> None:
        self.storage = MemoryStorage()
        self.counter = MemoryCounter()
        self.platform = MemoryPlatform()

    def create(self, root_der: bytes) -> offpay.OffpayWallet:
        return offpay.OffpayWallet.create(
            self.storage, self.counter, self.platform, PIN, root_der, TEST_KDF
        )

    def open(self) -> offpay.OffpayWallet:
        return offpay.OffpayWallet.open(self.storage, self.counter, self.platform, PIN)


def test_rolled_back_state_blob_is_detected(bank):
    host, w = bank.enrolled("rollie", load="30.00")
    _, payee = bank.enrolled("rollie-payee")
    old = host.storage.read("state.sealed")
    assert old is not None
    pay_round(w, payee, 1000)
    assert minor(w) == 2000
    # The host (or an attacker with its files) puts the old state back: the
    # 30.00 it held before paying.
    host.storage.replace("state.sealed", old)
    del w
    again = host.open()
    assert isinstance(again.status().lock, offpay.WalletLock.ROLLED_BACK)
    with pytest.raises(E.Locked):
        again.pay(payee.request(500, "EUR", 300))


def test_failed_host_write_at_every_point_moves_money_once(bank):
    payer_host = MemHost()
    payer = payer_host.create(bank.root_der)
    bank.enroll("faulty", payer, "100.00", "50.00")
    _, payee = bank.enrolled("faulty-payee")
    total = minor(payer) + minor(payee)
    paid = 0
    n = 0
    while True:
        request = payee.request(100, "EUR", 300)
        payer_host.storage.fail_replace_at = payer_host.storage.replaces + n
        try:
            payer.pay(request)
            crashed = False
        except E.Host:
            crashed = True
        payer_host.storage.fail_replace_at = None
        # Restart the app: reopen from what the host stored.
        payer = payer_host.open()
        # Paying the same request again either pays it or returns the payment
        # already committed: exactly one debit.
        payment = payer.pay(request)
        payer.confirm(payee.receive(payment))
        paid += 100
        assert minor(payer) + minor(payee) == total
        assert minor(payee) == paid
        if not crashed:
            break  # n is past the last write of a payment
        n += 1
    assert n >= 1, "a payment writes at least once"


def test_failed_counter_leaves_the_payment_unmade(bank):
    payer_host = MemHost()
    payer = payer_host.create(bank.root_der)
    bank.enroll("stuck", payer, "100.00", "20.00")
    _, payee = bank.enrolled("stuck-payee")
    request = payee.request(700, "EUR", 300)
    payer_host.counter.fail = True
    with pytest.raises(E.Host):
        payer.pay(request)
    payer_host.counter.fail = False
    payer = payer_host.open()
    assert minor(payer) in (2000, 1300)
    payment = payer.pay(request)
    payer.confirm(payee.receive(payment))
    assert (minor(payer), minor(payee)) == (1300, 700)


def test_several_threads_on_one_wallet(bank):
    """Calls from several threads are serialized per wallet. One thread per
    direction pays: two payments of one payer to one payee must arrive in seq
    order (a later seq received first makes the earlier one look like a
    rolled-back payer, PayerRolledBack), so the others only read."""
    (_, a), (_, b) = bank.enrolled("thready-a", load="20.00"), bank.enrolled("thready-b", load="20.00")
    errors = []
    stop = threading.Event()

    def pay(payer, payee):
        try:
            for _ in range(10):
                pay_round(payer, payee, 100)
        except Exception as e:  # noqa: BLE001  (reported below)
            errors.append(e)

    def read():
        try:
            while not stop.is_set():
                for w in (a, b):
                    w.status()
                    w.history()
                    assert w.balance().minor <= 4000
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    payers = [threading.Thread(target=pay, args=p) for p in ((a, b), (b, a))]
    readers = [threading.Thread(target=read) for _ in range(2)]
    for t in payers + readers:
        t.start()
    for t in payers:
        t.join(120)
    stop.set()
    for t in readers:
        t.join(60)
    assert not errors, errors
    assert minor(a) + minor(b) == 4000
    assert minor(a) == 2000
