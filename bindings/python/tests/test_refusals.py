"""Each refusal arrives as its own typed exception (a subclass of
OffpayError) and moves no money."""

from __future__ import annotations

import pytest

import offpay
from conftest import PIN, minor
from test_story import pay_round

E = offpay.OffpayError


@pytest.fixture(scope="module")
def pair(bank):
    """Carol (40.00 offline) and Dave (10.00 offline), enrolled and loaded."""
    carol = bank.enrolled("carol", "100.00", load="40.00")
    dave = bank.enrolled("dave", "100.00", load="10.00")
    return carol, dave


def test_wrong_pin_counts_down_and_the_right_pin_still_opens(bank, pair):
    (carol_host, carol), _ = pair
    with pytest.raises(E.WrongPin) as e:
        carol_host.open("0000")
    assert e.value.attempts_left == 4
    with pytest.raises(E.WrongPin) as e:
        carol_host.open("9999")
    assert e.value.attempts_left == 3
    assert minor(carol_host.open(PIN)) == minor(carol)


def test_pin_attempts_exhausted(bank):
    host = bank.host()
    host.create(bank.root_der, "2468")
    for left in (4, 3, 2, 1, 0):
        with pytest.raises(E.WrongPin) as e:
            host.open("1111")
        assert e.value.attempts_left == left
    # Now even the right PIN is refused until the issuer unlocks the wallet.
    with pytest.raises(E.PinAttemptsExhausted):
        host.open("2468")


def test_insufficient_funds(pair):
    (_, carol), (_, dave) = pair
    before = (minor(carol), minor(dave))
    with pytest.raises(E.InsufficientFunds):
        carol.pay(dave.request(before[0] + 1, "EUR", 300))
    assert (minor(carol), minor(dave)) == before


def test_limit_per_payment(pair):
    (_, carol), (_, dave) = pair
    before = minor(carol)
    with pytest.raises(E.LimitPerPayment):
        carol.pay(dave.request(500_01, "EUR", 300))
    assert minor(carol) == before


def test_replayed_payment_moves_money_once(bank, pair):
    (_, carol), (_, dave) = pair
    c0, d0 = minor(carol), minor(dave)
    request = dave.request(300, "EUR", 300)
    payment = carol.pay(request)
    receipt = dave.receive(payment)
    # A retry of the same bytes is answered with the same receipt, once credited.
    assert dave.receive(payment) == receipt
    assert (minor(carol), minor(dave)) == (c0 - 300, d0 + 300)
    carol.confirm(receipt)
    # Paying the same request again returns the same payment (no second debit).
    assert carol.pay(request) == payment
    assert minor(carol) == c0 - 300
    # The payment shown to another wallet is refused.
    _, erin = bank.enrolled("erin")
    with pytest.raises(E.WrongPayee):
        erin.receive(payment)
    # After the payee's sync the payment is off its log: the nonce is spent.
    bank.client.sync(dave)
    with pytest.raises(E.NonceUnknown):
        dave.receive(payment)
    assert minor(dave) == d0 + 300


def test_expired_request(pair):
    (carol_host, carol), (_, dave) = pair
    before = minor(carol)
    request = dave.request(100, "EUR", 60)
    carol_host.platform.skew = 120
    try:
        with pytest.raises(E.RequestExpired):
            carol.pay(request)
    finally:
        carol_host.platform.skew = 0
    assert minor(carol) == before


def test_self_payment_and_malformed_messages(pair):
    (_, carol), (_, dave) = pair
    with pytest.raises(E.SelfPayment):
        carol.pay(carol.request(100, "EUR", 300))
    with pytest.raises(E.Malformed):
        carol.pay(b"not a request")
    with pytest.raises(E.Malformed):
        dave.receive(b"\x00" * 40)
    with pytest.raises(E.Malformed):
        carol.confirm(b"")


def test_not_enrolled(bank):
    w = bank.host().create(bank.root_der)
    assert w.balance() is None
    with pytest.raises(E.NotEnrolled):
        w.request(100, "EUR", 300)


def test_locked_by_the_issuer(bank, pair):
    (_, carol), (_, dave) = pair
    bank.server.admin("lock", carol.wallet_id(), "--reason", "python test")
    bank.client.sync(carol)
    assert isinstance(carol.status().lock, offpay.WalletLock.ISSUER)
    with pytest.raises(E.Locked):
        carol.pay(dave.request(100, "EUR", 300))
    with pytest.raises(E.Locked):
        carol.request(100, "EUR", 300)
    bank.server.admin("unlock", carol.wallet_id())
    bank.client.sync(carol)
    assert carol.status().lock is None
    pay_round(carol, dave, 100)


def test_invalid_arguments(bank, pair):
    (_, carol), _ = pair
    with pytest.raises(E.InvalidArgument):
        offpay.SyncClient("not a url")
    with pytest.raises(E.CurrencyMismatch):
        carol.request(100, "USD", 300)
    with pytest.raises(E.ZeroAmount):
        carol.request(0, "EUR", 300)
