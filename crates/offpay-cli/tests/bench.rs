//! `offpay bench` at a tiny scale: the report's fields, its exact sizes, the
//! correctness checks of every reconciliation run, and usage errors. No
//! timing assertions: a benchmark is never a timed test. PostgreSQL is
//! skipped when it does not answer, unless `OFFPAY_REQUIRE_POSTGRES=1`.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // Test code: a failed unwrap is a failed test.

mod common;

use common::{ok, run};
use serde_json::Value;

/// The fields docs/PERFORMANCE.md promises.
const REQUIRED: [&str; 14] = [
    "payment_bytes",
    "payment_bytes_with_cert",
    "request_bytes",
    "receipt_bytes",
    "offline_payment_p50_us",
    "offline_payment_durable_p50_us",
    "offline_payment_bound_us",
    "verify_batch_per_s",
    "sync_payments_per_s_sqlite",
    "sync_payments_per_s_postgres",
    "sync_payments_per_s_http",
    "sync_ratio_to_verify_bound_sqlite",
    "sync_ratio_to_verify_bound_postgres",
    "sync_peak_rss_mib",
];

fn positive(v: &Value, k: &str) -> f64 {
    let x = v[k]
        .as_f64()
        .unwrap_or_else(|| panic!("{k} is not a number: {v}"));
    assert!(x > 0.0 && x.is_finite(), "{k} = {x}");
    x
}

/// The crypto distributions and the offline payment of every suite, each
/// offline figure against its own suite's bound.
fn suites_against_their_bounds(v: &Value) {
    // Each suite's single signatures: median ≤ p99 ≤ max, over many
    // messages; ML-DSA-44's median is the one its bounds use.
    for p in ["ed25519", "p256", "mldsa44"] {
        assert!(v[format!("{p}_dist_samples")].as_u64().unwrap() >= 200);
        for op in ["sign", "verify"] {
            let f = |q: &str| positive(v, &format!("{p}_{op}_{q}_us"));
            assert!(f("p50") <= f("p99") && f("p99") <= f("max"), "{p} {op}");
        }
    }
    assert_eq!(v["mldsa44_sign_us"], v["mldsa44_sign_p50_us"]);
    assert_eq!(v["mldsa44_verify_us"], v["mldsa44_verify_p50_us"]);
    // The offline payment per suite, each against its own suite's bound.
    let by_suite = v["offline_by_suite"].as_array().unwrap();
    let names: Vec<&str> = by_suite
        .iter()
        .map(|o| o["suite"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ed25519", "p256", "ml-dsa-44"]);
    for (o, (sign, verify)) in by_suite.iter().zip([
        ("ed25519_sign_us", "ed25519_verify_us"),
        ("p256_sign_us", "p256_verify_us"),
        ("mldsa44_sign_us", "mldsa44_verify_us"),
    ]) {
        assert_eq!(o["payments"], 20);
        let bound = 3.0 * positive(v, sign) + 3.0 * positive(v, verify);
        assert!((positive(o, "bound_us") - bound).abs() < 0.1, "{o}");
        let durable = positive(o, "bound_us") + 8.0 * positive(o, "atomic_write_us");
        assert!(
            (positive(o, "durable_bound_us") - durable).abs() < 0.1,
            "{o}"
        );
        for k in [
            "p50_us",
            "p99_us",
            "durable_p50_us",
            "durable_p99_us",
            "ratio_to_bound",
            "durable_ratio_to_bound",
        ] {
            positive(o, k);
        }
    }
    assert_eq!(by_suite[0]["p50_us"], v["offline_payment_p50_us"]);
}

#[test]
fn a_tiny_run_reports_every_field() {
    // PostgreSQL from OFFPAY_TEST_POSTGRES_URL (or the default URL); skipped
    // with a reason when it does not answer, unless OFFPAY_REQUIRE_POSTGRES=1.
    let mut args = vec![
        "bench",
        "--payments",
        "200",
        "--wallets",
        "20",
        "--offline-payments",
        "20",
        "--suite-payments",
        "20",
    ];
    if std::env::var("OFFPAY_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
        args.push("--require-postgres");
    }
    let v = ok(&args);
    assert_eq!(v["schema"], "offpay-bench/1");
    for k in REQUIRED {
        assert!(v.get(k).is_some(), "{k} missing: {v}");
    }
    assert_eq!(v["parameters"]["payments"], 200);
    assert_eq!(v["parameters"]["wallets"], 20);
    assert_eq!(v["parameters"]["threads"], 2);

    // Sizes are exact (docs/PERFORMANCE.md, "Message sizes"): the default
    // issuer CA names, first payment of 12.50.
    assert_eq!(v["payment_bytes_with_cert"], 548);
    assert_eq!(v["payment_bytes"], 239);
    assert_eq!(v["request_bytes"], 481);
    assert_eq!(v["receipt_bytes"], 159);
    assert_eq!(v["voucher_bytes"], 115);
    assert_eq!(v["qr_version"], 18);
    assert_eq!(v["qr_version_p256"], 19);
    let p256 = v["payment_bytes_with_cert_p256"].as_u64().unwrap();
    assert!((608..=614).contains(&p256), "{p256}");

    for k in [
        "ed25519_sign_us",
        "ed25519_verify_us",
        "ed25519_verify_batch_us",
        "p256_sign_us",
        "p256_verify_us",
        "verify_batch_per_s",
        "offline_payment_p50_us",
        "offline_payment_p99_us",
        "offline_payment_durable_p50_us",
        "offline_payment_durable_p99_us",
        "offline_payment_bound_us",
        "offline_payment_durable_bound_us",
        "atomic_write_us",
        "offline_payment_ratio_to_bound",
        "offline_payment_durable_ratio_to_bound",
        "sync_payments_per_s_sqlite",
        "sync_payments_per_s_http",
        "sync_ratio_to_verify_bound_sqlite",
        "sync_ratio_to_verify_bound_http",
        "sync_verify_bound_per_s",
        "sync_peak_rss_mib",
        "sync_report_bytes_per_payment",
    ] {
        positive(&v, k);
    }
    // The bounds are what they say they are.
    let bound = 3.0 * positive(&v, "ed25519_sign_us") + 3.0 * positive(&v, "ed25519_verify_us");
    assert!((positive(&v, "offline_payment_bound_us") - bound).abs() < 0.1);
    let durable = positive(&v, "offline_payment_bound_us") + 8.0 * positive(&v, "atomic_write_us");
    assert!((positive(&v, "offline_payment_durable_bound_us") - durable).abs() < 0.1);
    assert_eq!(v["offline_payments"], 20);

    suites_against_their_bounds(&v);

    // Every payment settled exactly once, on every backend that ran.
    assert_eq!(v["sync_settled_sqlite"], 200);
    let per_suite: Vec<&Value> = v["sync_by_suite"].as_array().unwrap().iter().collect();
    assert_eq!(per_suite.len(), 3, "{v}");
    assert_eq!(per_suite[0]["payments"], 200);
    assert_eq!(
        per_suite[0]["verify_bound_per_s"],
        v["sync_verify_bound_per_s"]
    );
    assert_eq!(per_suite[2]["payments"], 20);
    assert_eq!(v["sync_settled_http"], 200);
    // 20 wallets × 50 payments each per round / 2 = 500 per round: one round.
    assert_eq!(
        v["sync_rss_mib_by_round"]["sqlite"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    match v["postgres_skipped"].as_str() {
        Some(why) => {
            assert!(why.contains("PostgreSQL"), "{why}");
            assert!(v["sync_payments_per_s_postgres"].is_null());
            assert!(v["sync_ratio_to_verify_bound_postgres"].is_null());
            assert!(v["sync_rss_mib_by_round"]["postgres"].is_null());
        }
        None => {
            assert_eq!(v["sync_settled_postgres"], 200);
            positive(&v, "sync_payments_per_s_postgres");
            positive(&v, "sync_ratio_to_verify_bound_postgres");
        }
    }
}

#[test]
fn parts_can_be_left_out_and_are_null() {
    let v = ok(&["bench", "--only", "sizes"]);
    assert_eq!(v["payment_bytes_with_cert"], 548);
    // Per chain (wallet suite, CA suite), each QR-carried message with its
    // code version and count, really encoded: one code up to 666 bytes
    // (version 20-M), else multi-part codes of at most 666 bytes each.
    let by_suite = v["sizes_by_suite"].as_array().unwrap();
    let chains: Vec<(&str, &str)> = by_suite
        .iter()
        .map(|x| {
            (
                x["suite"].as_str().unwrap(),
                x["ca_suite"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        chains,
        [
            ("ed25519", "ed25519"),
            ("p256", "p256"),
            ("ml-dsa-44", "ml-dsa-44"),
            ("ml-dsa-44", "ed25519"),
            ("ed25519", "ml-dsa-44"),
        ],
        "{v}"
    );
    assert_eq!(by_suite[0]["payment_inline"]["bytes"], 548);
    assert_eq!(by_suite[0]["payment_inline"]["qr_version"], 18);
    assert_eq!(
        by_suite[1]["payment_inline"]["qr_version"],
        v["qr_version_p256"]
    );
    let msgs = ["request", "payment_inline", "payment_reference", "receipt"];
    for x in by_suite {
        for m in msgs {
            let bytes = x[m]["bytes"].as_u64().unwrap();
            let codes = x[m]["qr_codes"].as_u64().unwrap();
            let version = x[m]["qr_version"].as_u64().unwrap();
            assert_eq!(codes == 1, bytes <= 666, "{m}: {x}");
            // Each part carries at most 666 bytes (header included).
            assert!(codes * 666 >= bytes && codes <= 64, "{m}: {x}");
            assert!((1..=20).contains(&version), "{m}: {x}");
        }
        assert!(x["payment_reference"]["bytes"].as_u64() < x["payment_inline"]["bytes"].as_u64());
    }
    // The classical pure chains fit one code each; an ML-DSA-44 signature
    // (2,420 bytes) never does.
    for x in &by_suite[..2] {
        for m in msgs {
            assert_eq!(x[m]["qr_codes"], 1, "{m}: {x}");
        }
    }
    for x in &by_suite[2..4] {
        for m in msgs {
            assert!(x[m]["qr_codes"].as_u64().unwrap() > 1, "{m}: {x}");
        }
    }
    // An Ed25519 wallet under an ML-DSA-44 CA: only the messages carrying
    // its certificate (signed by the CA) grow; the others are Ed25519's.
    for m in ["payment_reference", "receipt"] {
        assert_eq!(by_suite[4][m], by_suite[0][m], "{m}");
    }
    assert!(by_suite[4]["payment_inline"]["qr_codes"].as_u64().unwrap() > 1);
    // The ML-DSA-44 certificate under an Ed25519 CA is smaller than under
    // an ML-DSA-44 CA (its signature is 64 bytes, not 2,420).
    assert!(
        by_suite[3]["payment_inline"]["bytes"].as_u64()
            < by_suite[2]["payment_inline"]["bytes"].as_u64()
    );
    for k in [
        "verify_batch_per_s",
        "offline_payment_p50_us",
        "sync_payments_per_s_sqlite",
        "sync_payments_per_s_postgres",
        "sync_payments_per_s_http",
        "sync_peak_rss_mib",
    ] {
        assert!(v[k].is_null(), "{k}: {v}");
    }
    // Several rounds: the RSS is sampled after each.
    let v = ok(&[
        "bench",
        "--only",
        "sqlite",
        "--payments",
        "300",
        "--wallets",
        "4",
        "--per-round",
        "50",
        "--threads",
        "3",
    ]);
    assert_eq!(v["sync_settled_sqlite"], 300);
    assert_eq!(
        v["sync_rss_mib_by_round"]["sqlite"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert!(v["sync_rss_mib_by_round"]["http"].is_null());
    positive(&v, "verify_batch_per_s");
    // The text table names what it measured.
    let r = run(&["bench", "--only", "sizes"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("Payment (cert inline)"), "{r:?}");
    assert!(r.stdout.contains("548"), "{r:?}");
}

#[test]
fn extra_suites_reconcile_against_their_own_bound() {
    let v = ok(&[
        "bench",
        "--only",
        "suites",
        "--suite-payments",
        "40",
        "--wallets",
        "4",
        "--threads",
        "1",
    ]);
    assert_eq!(v["parameters"]["suite_payments"], 40);
    let runs = v["sync_by_suite"].as_array().unwrap();
    let names: Vec<&str> = runs.iter().map(|r| r["suite"].as_str().unwrap()).collect();
    assert_eq!(names, ["p256", "ml-dsa-44"], "{v}");
    for (r, verify) in runs.iter().zip(["p256_verify_us", "mldsa44_verify_us"]) {
        // Every payment settled exactly once (checked by the run too).
        assert_eq!(r["payments"], 40, "{r}");
        // No batch equation: one core's single-verify rate × min(1, cores) / 2.
        let rate = 1e6 / positive(&v, verify);
        assert!(
            (positive(r, "verify_rate_per_s") / rate - 1.0).abs() < 1e-3,
            "{r}"
        );
        let bound = positive(r, "verify_bound_per_s");
        assert!((bound - rate / 2.0).abs() / bound < 1e-3, "{r}");
        let ratio = positive(r, "payments_per_s") / bound;
        assert!(
            (positive(r, "ratio_to_verify_bound") - ratio).abs() < 1e-3,
            "{r}"
        );
        positive(r, "report_bytes_per_payment");
    }
    // The Ed25519 runs were left out.
    assert!(v["sync_payments_per_s_sqlite"].is_null());
}

#[test]
fn hsm_part_runs_on_softhsm_or_says_why_not() {
    let v = ok(&[
        "bench",
        "--only",
        "hsm",
        "--suite-payments",
        "40",
        "--wallets",
        "4",
    ]);
    let fields = [
        "hsm_ed25519_sign_per_s",
        "hsm_p256_sign_per_s",
        "in_process_ed25519_sign_per_s",
        "in_process_ed25519_sign_verify_per_s",
        "in_process_p256_sign_per_s",
        "in_process_p256_sign_verify_per_s",
        "hsm_ed25519_ratio_to_in_process",
        "hsm_p256_ratio_to_in_process",
        "hsm_sync_payments_per_s",
        "hsm_sealed_sync_payments_per_s",
        "hsm_sync_ratio_to_sealed",
    ];
    match v["hsm_skipped"].as_str() {
        Some(why) => {
            assert!(why.contains("PKCS#11 module"), "{why}");
            for k in fields {
                assert!(v[k].is_null(), "{k}: {v}");
            }
        }
        None => {
            for k in fields {
                positive(&v, k);
            }
            // Every payment settled exactly once through the token-keyed issuer.
            assert_eq!(v["hsm_payments"], 40);
            let r = positive(&v, "hsm_sync_payments_per_s")
                / positive(&v, "hsm_sealed_sync_payments_per_s");
            assert!((positive(&v, "hsm_sync_ratio_to_sealed") - r).abs() < 1e-3);
        }
    }
    // A module that is not there: skipped, with the reason, not a failure.
    let mut c = common::offpay();
    c.env("OFFPAY_HSM_MODULE", "/nonexistent/libsofthsm2.so");
    let r = common::run_with(c, &["--json", "bench", "--only", "hsm"]);
    assert_eq!(r.code, 0, "{r:?}");
    let v = r.json();
    assert!(
        v["hsm_skipped"]
            .as_str()
            .unwrap()
            .contains("/nonexistent/libsofthsm2.so"),
        "{v}"
    );
    assert!(v["hsm_sync_payments_per_s"].is_null());
}

#[test]
fn an_unreachable_required_postgres_is_refused() {
    let args = [
        "bench",
        "--only",
        "postgres",
        "--postgres",
        "postgres://postgres@127.0.0.1:9/none",
    ];
    let r = run(&args);
    assert_eq!(r.code, 0, "skipped, not failed: {r:?}");
    assert!(r.stdout.contains("skipped"), "{r:?}");
    let mut a = args.to_vec();
    a.push("--require-postgres");
    let r = run(&a);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("does not answer"), "{r:?}");
}

#[test]
fn bad_flags_exit_2_and_say_why() {
    for (args, says) in [
        (vec!["bench", "--wallets", "1"], "wallets must be 2 to"),
        (vec!["bench", "--threads", "0"], "threads must be 1 to"),
        (vec!["bench", "--payments", "0"], "payments must be 1 to"),
        (
            vec!["bench", "--suite-payments", "0"],
            "suite-payments must be 1 to",
        ),
        (vec!["bench", "--per-round", "100000"], "per-round must be"),
        (
            vec!["bench", "--offline-payments", "2"],
            "offline-payments must be",
        ),
        (
            vec!["bench", "--only", "crypto,warp"],
            "unknown part \"warp\"",
        ),
        (vec!["bench", "--only", ""], "unknown part"),
        (vec!["bench", "--threads", "two"], "invalid value"),
        (vec!["bench", "--wallets", "-5"], "unexpected argument"),
        (vec!["bench", "--frobnicate"], "unexpected argument"),
        (
            vec![
                "bench",
                "--only",
                "postgres",
                "--postgres",
                "postgres://h:notaport/x",
            ],
            "PostgreSQL URL",
        ),
        (
            vec!["bench", "--temp-dir", "/nonexistent/offpay-bench"],
            "is not a directory",
        ),
    ] {
        let r = run(&args);
        assert_eq!(r.code, 2, "{args:?}: {r:?}");
        assert!(
            r.stderr.contains(says),
            "{args:?} should say {says:?}: {r:?}"
        );
        let mut j = vec!["--json"];
        j.extend_from_slice(&args);
        let r = run(&j);
        assert_eq!(r.code, 2, "{args:?}: {r:?}");
        assert_eq!(r.json()["error"]["code"], "usage", "{args:?}");
    }
}
