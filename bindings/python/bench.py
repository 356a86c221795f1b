"""A payment through the Python bindings next to the same round in Rust.

Both sides: two enrolled wallets on in-memory host storage; one round is
``payee.request`` + ``payer.pay`` + ``payee.receive`` + ``payer.confirm``,
alternating directions, with an untimed sync of both wallets every
``--batch`` rounds (the offline count and spend limits). The Rust side is
``offpay.rust_payment_baseline(n)``, run in the same process, interleaved
batch by batch with the Python rounds so that both see the same machine.

    python bench.py [--rounds 400] [--batch 50] [--json]

Prints the median and p99 of each side and their ratio (target: the Python
median at most 1.15 times the Rust one). A benchmark, not a test: it always
exits 0 once it has measured.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "tests"))

import offpay  # noqa: E402
from hosts import MemoryCounter, MemoryPlatform, MemoryStorage  # noqa: E402
from offpay_server import OffpayServer  # noqa: E402

AMOUNT_MINOR = 100
TARGET_RATIO = 1.15


def percentile(xs, q):
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def wallet(server, client, root_der, name):
    storage, counter, platform = MemoryStorage(), MemoryCounter(), MemoryPlatform()
    w = offpay.OffpayWallet.create(
        storage, counter, platform, "1234", root_der, offpay.KdfSettings(memory_kib=8, passes=1)
    )
    server.customer(name, "500.00")
    client.enroll(w, server.enrollment_token(name))
    server.load(w.wallet_id(), "300.00")
    client.sync(w)
    return w


def python_round(payer, payee):
    t0 = time.perf_counter_ns()
    request = payee.request(AMOUNT_MINOR, "EUR", 300)
    payment = payer.pay(request)
    receipt = payee.receive(payment)
    payer.confirm(receipt)
    return (time.perf_counter_ns() - t0) / 1000.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=400)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    if a.rounds < 1 or not 1 <= a.batch <= 100:
        ap.error("--rounds >= 1, 1 <= --batch <= 100")

    with OffpayServer() as server:
        client = offpay.SyncClient(server.url)
        root = server.root_der()
        a_w = wallet(server, client, root, "bench-a")
        b_w = wallet(server, client, root, "bench-b")
        for _ in range(10):  # warm-up, untimed
            python_round(a_w, b_w)
            python_round(b_w, a_w)
        offpay.rust_payment_baseline(10)
        py, rust_medians, rust_p99s = [], [], []
        done = 0
        while done < a.rounds:
            client.sync(a_w)
            client.sync(b_w)
            n = min(a.batch, a.rounds - done)
            for i in range(n):
                payer, payee = (a_w, b_w) if i % 2 == 0 else (b_w, a_w)
                py.append(python_round(payer, payee))
            base = offpay.rust_payment_baseline(n)
            rust_medians.append(base.median_us)
            rust_p99s.append(base.p99_us)
            done += n
        assert server.invariants_ok()

    py_median, py_p99 = statistics.median(py), percentile(py, 0.99)
    rust_median, rust_p99 = statistics.median(rust_medians), max(rust_p99s)
    ratio = py_median / rust_median
    result = {
        "rounds": a.rounds,
        "python_median_us": round(py_median, 1),
        "python_p99_us": round(py_p99, 1),
        "rust_median_us": round(rust_median, 1),
        "rust_p99_us": round(rust_p99, 1),
        "ratio_median": round(ratio, 3),
        "target_ratio": TARGET_RATIO,
        "target_met": ratio <= TARGET_RATIO,
    }
    if a.json:
        print(json.dumps(result))
        return
    print(f"payment round ({a.rounds} rounds, request+pay+receive+confirm, in-memory host storage)")
    print(f"  rust (rust_payment_baseline): median {rust_median:8.1f} us   p99 {rust_p99:8.1f} us")
    print(f"  python bindings:              median {py_median:8.1f} us   p99 {py_p99:8.1f} us")
    verdict = "met" if ratio <= TARGET_RATIO else "MISSED"
    print(f"  ratio python/rust (median): {ratio:.3f} (target <= {TARGET_RATIO}: {verdict})")


if __name__ == "__main__":
    main()
