//! Revocation sizes: the complete CRL and its SyncResponse against a delta
//! CRL of 10 new revocations, at 1 000, 100 000 and 1 000 000 revoked
//! certificates (docs/PERFORMANCE.md, "Revocation sizes").
//!
//! `cargo run --release -p offpay-bench --example crl_sizes`

fn main() -> Result<(), String> {
    let rows = offpay_bench::sizes::crl_sizes(&[1_000, 100_000, 1_000_000])?;
    println!(
        "| revoked | complete CRL | its SyncResponse | fits (1 MiB) | build+sign | delta CRL (+{}) | its SyncResponse | unchanged SyncResponse |",
        offpay_bench::sizes::CRL_DELTA_NEW
    );
    println!("| ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |");
    for r in rows {
        println!(
            "| {} | {} B | {} B | {} | {} ms | {} B | {} B | {} B |",
            r.revoked,
            r.full_crl_bytes,
            r.full_response_bytes,
            if r.full_fits { "yes" } else { "no" },
            r.full_build_ms,
            r.delta_crl_bytes,
            r.delta_response_bytes,
            r.unchanged_response_bytes
        );
    }
    Ok(())
}
