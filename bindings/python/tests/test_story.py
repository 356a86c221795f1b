"""The SDK's story against a real offpay server: two wallets enroll, load,
pay each other offline both ways, sync, redeem; the books balance."""

from __future__ import annotations

import offpay
from conftest import minor


def pay_round(payer, payee, amount_minor: int, valid: int = 300) -> bytes:
    """One offline payment: payee asks, payer pays, payee receipts, payer
    records the receipt. The receipt."""
    request = payee.request(amount_minor, "EUR", valid)
    payment = payer.pay(request)
    receipt = payee.receive(payment)
    payer.confirm(receipt)
    return receipt


def test_two_wallets_enroll_load_pay_both_ways_sync_redeem(bank):
    srv, client = bank.server, bank.client
    alice_host, alice = bank.enrolled("alice", "100.00")
    bob_host, bob = bank.enrolled("bob", "100.00")
    assert len(alice.wallet_id()) == 32 and alice.wallet_id() != bob.wallet_id()
    assert alice.certificate_der() is not None
    assert minor(alice) == 0 and alice.balance().currency == "EUR"

    # Load: the bank's action, picked up at the wallet's next sync.
    srv.load(alice.wallet_id(), "40.00")
    srv.load(bob.wallet_id(), "20.00")
    client.sync(alice)
    client.sync(bob)
    assert (minor(alice), minor(bob)) == (4000, 2000)
    assert srv.online_minor("alice") == 6000

    # Offline, both ways.
    pay_round(alice, bob, 1250)
    assert (minor(alice), minor(bob)) == (2750, 3250)
    pay_round(bob, alice, 500)
    assert (minor(alice), minor(bob)) == (3250, 2750)
    # Money received offline is spendable offline at once.
    pay_round(bob, alice, 2750)
    assert (minor(alice), minor(bob)) == (6000, 0)
    pay_round(alice, bob, 1000)
    assert (minor(alice), minor(bob)) == (5000, 1000)
    assert len(alice.history()) >= 5  # a load and four payments

    # Back online: the issuer's books follow the wallets.
    client.sync(alice)
    client.sync(bob)
    assert srv.wallet_info(alice.wallet_id())["offline_balance_minor"] == 5000
    assert srv.wallet_info(bob.wallet_id())["offline_balance_minor"] == 1000

    # Redeem: offline money back to the online account.
    client.redeem(bob, 600)
    assert minor(bob) == 400
    assert srv.online_minor("bob") == 8000 + 600
    assert srv.invariants_ok()

    # The state is in the host's files: a reopened wallet has it all.
    del alice
    again = alice_host.open()
    assert minor(again) == 5000
    assert again.status().enrolled
