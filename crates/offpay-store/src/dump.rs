//! A canonical dump of the whole database: every table, every column, rows in
//! a deterministic order, so that two runs that did the same thing give the
//! same text byte for byte (the simulator's replay test compares them).
//!
//! Each table is a header line `table NAME (COLUMNS): N rows` followed by one
//! line per row: the values separated by ` | `, integers in decimal, text
//! JSON-escaped in double quotes, bytes as lowercase hex prefixed `x`, NULL as
//! `NULL`. Rows are sorted by their rendered line (byte order), which does not
//! depend on the backend's collation. The one value left out is
//! `schema_migrations.applied`: the wall-clock time a migration ran.

use std::fmt::Write as _;

use offpay_issuer::store::StoreError;

use crate::sql::{Conn, Value};

/// Every table and its columns, in schema order.
pub const TABLES: &[(&str, &str)] = &[
    ("schema_migrations", "version"),
    ("settings", "key, value"),
    ("accounts", "id, book, kind, balance, created"),
    (
        "postings",
        "id, book, debit, credit, amount, kind, reference, time",
    ),
    ("customers", "id, name, created"),
    (
        "enrollment_tokens",
        "hash, customer, expires, wallet, profile",
    ),
    (
        "wallets",
        "id, customer, cert_der, cert_serial, cert_not_after, state, reason, load_seq, checkpoint, report_seq, policy_epoch, unlock_pending, clawed_back, guaranteed, created, key_generation, prev_cert_der, rekey_suite",
    ),
    ("certificates", "serial, wallet, der"),
    ("vouchers", "wallet, load_seq, amount, bytes, created"),
    (
        "entries",
        "payer, seq, hash, prev, kind, payee, amount, time, bytes, recorded",
    ),
    ("settlements", "payer, hash, payee, amount, time"),
    (
        "checkpoints",
        "wallet, number, seq, head, balance, load_seq, time",
    ),
    ("reports", "wallet, report_seq, hash, response, time"),
    (
        "double_spends",
        "payer, seq, entry_a, entry_b, proof, detected",
    ),
    (
        "revocations",
        "serial, wallet, reason_code, reason, time, not_after, crl_added, crl_removed",
    ),
    ("idempotency", "key, request, response, time"),
    (
        "claims",
        "id, counterparty, direction, amount, state, refusal, cycle, payer, seq, bytes, created",
    ),
    ("claim_refusals", "id, code, bytes, time"),
    ("statements", "cycle, hash, net, bytes, posted"),
    (
        "cases",
        "id, kind, state, payer, seq, entry, opened_at, opened_by, note, decision, resolved_at, amount, paid, window_closed_at, bundle",
    ),
    (
        "case_events",
        "case_id, n, at, from_state, to_state, actor, note",
    ),
    ("case_refunds", "payer, seq, case_id, amount"),
];

fn render(out: &mut String, v: &Value) {
    match v {
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Text(s) => {
            out.push('"');
            for c in s.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    c if (c as u32) < 0x20 => {
                        let _ = write!(out, "\\u{:04x}", c as u32);
                    }
                    c => out.push(c),
                }
            }
            out.push('"');
        }
        Value::Bytes(b) => {
            out.push('x');
            for x in b {
                let _ = write!(out, "{x:02x}");
            }
        }
        Value::Null => out.push_str("NULL"),
    }
}

/// The canonical dump over an open connection (read inside its transaction).
pub fn dump(conn: &mut dyn Conn) -> Result<String, StoreError> {
    let mut out = String::new();
    for (table, columns) in TABLES {
        let rows = conn.query(&format!("SELECT {columns} FROM {table}"), &[])?;
        let mut lines: Vec<String> = rows
            .iter()
            .map(|r| {
                let mut line = String::new();
                for (i, v) in r.iter().enumerate() {
                    if i > 0 {
                        line.push_str(" | ");
                    }
                    render(&mut line, v);
                }
                line
            })
            .collect();
        lines.sort_unstable();
        let _ = writeln!(out, "table {table} ({columns}): {} rows", lines.len());
        for l in lines {
            out.push_str(&l);
            out.push('\n');
        }
    }
    Ok(out)
}

impl<C: Conn> crate::sql::SqlTx<C> {
    /// The canonical dump of the database as this transaction sees it.
    pub fn dump(&mut self) -> Result<String, StoreError> {
        dump(&mut self.conn)
    }
}
