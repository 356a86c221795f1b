"""offpay from Python: two wallets enroll with an issuer, load, pay each
other offline, sync and redeem.

Run it against an ``offpay server`` whose operator side you can reach:

    OFFPAY_SERVER=http://127.0.0.1:8080 OFFPAY_DATA_DIR=./offpay-data \\
        python quickstart.py [WORKDIR]

The bank's steps (accounts, enrollment tokens, loads) are ``offpay admin``
commands, run here with ``subprocess``; everything a wallet app does goes
through the ``offpay`` package.
"""

import base64
import json
import os
import subprocess
import sys
import tempfile
import urllib.request

import offpay

SERVER = os.environ.get("OFFPAY_SERVER", "http://127.0.0.1:8080")
OFFPAY = os.environ.get("OFFPAY_BIN", "offpay")


def bank(*args):
    """The bank's side: `offpay --json admin ARGS` (reads OFFPAY_SERVER and
    OFFPAY_DATA_DIR), its JSON answer."""
    out = subprocess.run([OFFPAY, "--json", "admin", *args], capture_output=True, text=True)
    answer = json.loads(out.stdout)
    if not answer.get("ok"):
        sys.exit(f"offpay admin {' '.join(args)}: {answer.get('error')}")
    return answer


def scheme_root_der():
    """The scheme root certificate. A real app ships it (pinned); here it is
    fetched from the server's /v1/roots and must be compared with the one the
    scheme publishes."""
    with urllib.request.urlopen(SERVER + "/v1/roots", timeout=10) as r:
        pem = json.load(r)["root_pem"]
    body = "".join(l for l in pem.splitlines() if l and not l.startswith("-----"))
    return base64.b64decode(body)


def open_wallet(workdir, name, root_der):
    """A wallet whose sealed state lives in WORKDIR/NAME/files."""
    home = os.path.join(workdir, name)
    storage = offpay.FileStorage(os.path.join(home, "files"))
    counter = offpay.FileCounter(os.path.join(home, "counter", "wallet.ctr"))
    platform = offpay.SystemPlatform(os.path.join(home, "keystore", "device.secret"))
    pin = "1234"
    # KdfSettings(memory_kib=19456, passes=2) is the interactive cost for a
    # real app; this demo uses the smallest the vault accepts.
    kdf = offpay.KdfSettings(memory_kib=8, passes=1)
    if storage.read("state.sealed") is None:
        return offpay.OffpayWallet.create(storage, counter, platform, pin, root_der, kdf)
    return offpay.OffpayWallet.open(storage, counter, platform, pin)


def euros(w):
    b = w.balance()
    return f"{b.minor / 100:.2f} {b.currency}"


def main():
    workdir = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="offpay-quickstart-")
    root = scheme_root_der()
    client = offpay.SyncClient(SERVER)
    suffix = os.urandom(4).hex()

    # Two customers with online money, each with a wallet enrolled at the bank.
    wallets = {}
    for name in ("alice", "bob"):
        customer = f"{name}-{suffix}"
        bank("create-account", customer, "--name", name)
        bank("deposit", customer, "50.00")
        w = open_wallet(workdir, name, root)
        client.enroll(w, bank("enrollment-token", customer)["token"])
        wallets[name] = (customer, w)
        print(f"{name}: wallet {w.wallet_id()} enrolled")
    (alice_customer, alice), (bob_customer, bob) = wallets["alice"], wallets["bob"]

    # Loading is the bank's action; the wallet applies the voucher at its sync.
    bank("load", alice.wallet_id(), "20.00")
    client.sync(alice)
    print(f"alice: offline balance {euros(alice)}")

    # Offline: Bob asks, Alice pays, Bob answers with a receipt. Each message
    # is bytes for any channel (NFC, BLE, QR codes).
    request = bob.request(750, "EUR", 300)
    payment = alice.pay(request)
    receipt = bob.receive(payment)
    alice.confirm(receipt)
    print(f"paid 7.50 EUR offline: alice {euros(alice)}, bob {euros(bob)}")

    # Every refusal is its own exception, a subclass of OffpayError.
    try:
        alice.pay(bob.request(100_00, "EUR", 300))
    except offpay.OffpayError.InsufficientFunds as e:
        print(f"refused as expected: {e}")

    # Back online: sync both, then Bob redeems to his online account.
    client.sync(alice)
    client.sync(bob)
    client.redeem(bob, 500)
    print(f"bob redeemed 5.00 EUR: offline {euros(bob)}, "
          f"online {bank('account', bob_customer)['balance_minor'] / 100:.2f} EUR")


if __name__ == "__main__":
    main()
