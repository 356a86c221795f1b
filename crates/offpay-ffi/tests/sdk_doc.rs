//! docs/SDK.md includes each binding's example file whole; the suites run
//! (Python, Kotlin) or check (Swift) those files, so the page shows code that
//! is exercised. This test fails when the page and a file differ.

use std::path::Path;

const EXAMPLES: &[(&str, &str)] = &[
    ("bindings/python/examples/quickstart.py", "python"),
    ("bindings/kotlin/examples/Quickstart.kt", "kotlin"),
    ("bindings/swift/Quickstart.swift", "swift"),
];

fn repo_file(path: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn sdk_doc_includes_every_example_whole() {
    let doc = repo_file("docs/SDK.md");
    for (path, lang) in EXAMPLES {
        let file = repo_file(path);
        assert!(!file.trim().is_empty(), "{path} is empty");
        let block = format!("### {path}\n\n```{lang}\n{file}```\n");
        assert!(
            doc.contains(&block),
            "docs/SDK.md does not include {path} as it is now: copy the file into its ```{lang} block"
        );
    }
}

#[test]
fn sdk_doc_names_only_exported_wallet_calls() {
    // Every `OffpayWallet` call the page's table names exists in the crate.
    let doc = repo_file("docs/SDK.md");
    let wallet = repo_file("crates/offpay-ffi/src/wallet.rs");
    let table = doc
        .split("**`OffpayWallet`**")
        .nth(1)
        .and_then(|rest| rest.split("**`SyncClient").next())
        .expect("the OffpayWallet table");
    let mut named = 0;
    for cell in table.lines().filter_map(|l| l.strip_prefix("| `")) {
        for call in cell
            .split("`, `")
            .map(|c| c.split(['(', '`']).next().unwrap_or(""))
        {
            if call.is_empty() {
                continue;
            }
            named += 1;
            assert!(
                wallet.contains(&format!("pub fn {call}(")),
                "docs/SDK.md names OffpayWallet::{call}, which wallet.rs does not export"
            );
        }
    }
    assert!(named >= 15, "only {named} calls found in the table");
}
