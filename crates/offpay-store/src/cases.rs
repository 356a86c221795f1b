//! The dispute-case part of [`SqlTx`] (migration 0006): cases, their
//! append-only events, the refunds they paid (one per payment at most), and
//! the evidence queries a case needs (a settlement's delivery state, a
//! wallet's revocations, the checkpoint covering an entry).

use offpay_issuer::store::{
    CaseCountRow, CaseEvent, CaseKind, CaseRecord, CaseState, CheckpointRecord, Delivery,
    EntryRecord, RevocationRecord, SettlementRecord, StoreError,
};
use offpay_protocol::{Hash32, UnixSeconds, WalletId};

use crate::sql::{
    Conn, ENTRY_COLUMNS, PAIRS_PER_QUERY_MAX, REVOCATION_COLUMNS, SqlTx, Value, b, bytes, corrupt,
    entry_row, hash, i, int, opt_i, opt_uint, opt_wallet, padded_chunks, revocation_row, t, text,
    time, uint, w, wallet,
};

const CASE_COLUMNS: &str = "id, kind, state, payer, seq, entry, opened_at, opened_by, note, decision, resolved_at, amount, paid, window_closed_at, bundle";

/// States in which a case holds its payment.
const HOLDING: &str = "state IN ('open', 'decided')";

fn state(v: &Value) -> Result<CaseState, StoreError> {
    CaseState::parse(&text(v)?).ok_or_else(|| corrupt("case state"))
}

fn opt_text(v: &Value) -> Result<Option<String>, StoreError> {
    match v {
        Value::Null => Ok(None),
        v => text(v).map(Some),
    }
}

fn case_row(r: &[Value]) -> Result<CaseRecord, StoreError> {
    Ok(CaseRecord {
        id: uint(&r[0])?,
        kind: CaseKind::parse(&text(&r[1])?).ok_or_else(|| corrupt("case kind"))?,
        state: state(&r[2])?,
        payer: wallet(&r[3])?,
        seq: opt_uint(&r[4])?,
        entry: match &r[5] {
            Value::Null => None,
            v => Some(hash(v)?),
        },
        opened_at: UnixSeconds(uint(&r[6])?),
        opened_by: text(&r[7])?,
        note: text(&r[8])?,
        decision: opt_text(&r[9])?,
        resolved_at: opt_uint(&r[10])?.map(UnixSeconds),
        amount: int(&r[11])?,
        paid: int(&r[12])?,
        window_closed_at: opt_uint(&r[13])?.map(UnixSeconds),
        bundle: bytes(&r[14])?,
    })
}

fn case_params(c: &CaseRecord) -> Result<Vec<Value>, StoreError> {
    Ok(vec![
        i(c.id)?,
        t(c.kind.as_str()),
        t(c.state.as_str()),
        w(&c.payer),
        opt_i(c.seq)?,
        c.entry.map_or(Value::Null, |h| b(&h.0)),
        time(c.opened_at)?,
        t(&c.opened_by),
        t(&c.note),
        c.decision.as_deref().map_or(Value::Null, t),
        opt_i(c.resolved_at.map(|x| x.0))?,
        Value::Int(c.amount),
        Value::Int(c.paid),
        opt_i(c.window_closed_at.map(|x| x.0))?,
        b(&c.bundle),
    ])
}

/// `(payer = $1 AND entry = $2) OR ...` over a chunk of keys, and its parameters.
fn entry_terms(chunk: Vec<(WalletId, Hash32)>) -> (String, Vec<Value>) {
    let terms: Vec<String> = (0..chunk.len())
        .map(|k| format!("(payer = ${} AND entry = ${})", 2 * k + 1, 2 * k + 2))
        .collect();
    let params = chunk
        .into_iter()
        .flat_map(|(p, h)| [w(&p), b(&h.0)])
        .collect();
    (terms.join(" OR "), params)
}

impl<C: Conn> SqlTx<C> {
    pub(crate) fn db_settlement(
        &mut self,
        payer: &WalletId,
        h: &Hash32,
    ) -> Result<Option<SettlementRecord>, StoreError> {
        let rows = self.conn.query(
            "SELECT payee, amount, time, delivery, pruned FROM settlements WHERE payer = $1 AND hash = $2",
            &[w(payer), b(&h.0)],
        )?;
        let Some(r) = rows.first() else {
            return Ok(None);
        };
        Ok(Some(SettlementRecord {
            payer: *payer,
            hash: *h,
            payee: opt_wallet(&r[0])?,
            amount: int(&r[1])?,
            time: UnixSeconds(uint(&r[2])?),
            delivery: Delivery::from_code(int(&r[3])?).ok_or_else(|| corrupt("delivery"))?,
            pruned: int(&r[4])? != 0,
        }))
    }

    pub(crate) fn db_entries_from(
        &mut self,
        payer: &WalletId,
        from: UnixSeconds,
        limit: u32,
    ) -> Result<Vec<EntryRecord>, StoreError> {
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM entries WHERE payer = $1 AND time >= $2 ORDER BY seq LIMIT $3"
        );
        self.conn
            .query(&sql, &[w(payer), time(from)?, Value::Int(i64::from(limit))])?
            .iter()
            .map(|r| entry_row(r))
            .collect()
    }

    pub(crate) fn db_revocations_of(
        &mut self,
        wl: &WalletId,
    ) -> Result<Vec<RevocationRecord>, StoreError> {
        let sql = format!(
            "SELECT {REVOCATION_COLUMNS} FROM revocations WHERE wallet = $1 ORDER BY serial"
        );
        self.conn
            .query(&sql, &[w(wl)])?
            .iter()
            .map(|r| revocation_row(r))
            .collect()
    }

    pub(crate) fn db_checkpoint_covering(
        &mut self,
        wl: &WalletId,
        seq: u64,
    ) -> Result<Option<CheckpointRecord>, StoreError> {
        let rows = self.conn.query(
            "SELECT number, seq, head, balance, load_seq, time FROM checkpoints \
             WHERE wallet = $1 AND seq >= $2 ORDER BY number LIMIT 1",
            &[w(wl), i(seq)?],
        )?;
        let Some(r) = rows.first() else {
            return Ok(None);
        };
        Ok(Some(CheckpointRecord {
            wallet: *wl,
            number: uint(&r[0])?,
            seq: uint(&r[1])?,
            head: hash(&r[2])?,
            balance: int(&r[3])?,
            load_seq: uint(&r[4])?,
            time: UnixSeconds(uint(&r[5])?),
        }))
    }

    pub(crate) fn db_insert_case(&mut self, c: &CaseRecord) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO cases ({CASE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
        );
        self.conn.execute(&sql, &case_params(c)?)?;
        Ok(())
    }

    pub(crate) fn db_case(
        &mut self,
        id: u64,
        for_update: bool,
    ) -> Result<Option<CaseRecord>, StoreError> {
        let lock = if for_update { self.lock() } else { "" };
        let sql = format!("SELECT {CASE_COLUMNS} FROM cases WHERE id = $1{lock}");
        match self.conn.query(&sql, &[i(id)?])?.first() {
            Some(r) => case_row(r).map(Some),
            None => Ok(None),
        }
    }

    pub(crate) fn db_update_case(&mut self, c: &CaseRecord) -> Result<(), StoreError> {
        let n = self.conn.execute(
            "UPDATE cases SET state = $2, decision = $3, resolved_at = $4, amount = $5, \
             paid = $6, window_closed_at = $7, bundle = $8 WHERE id = $1",
            &[
                i(c.id)?,
                t(c.state.as_str()),
                c.decision.as_deref().map_or(Value::Null, t),
                opt_i(c.resolved_at.map(|x| x.0))?,
                Value::Int(c.amount),
                Value::Int(c.paid),
                opt_i(c.window_closed_at.map(|x| x.0))?,
                b(&c.bundle),
            ],
        )?;
        if n != 1 {
            return Err(StoreError::Corrupt(format!("case {} vanished", c.id)));
        }
        Ok(())
    }

    pub(crate) fn db_cases(
        &mut self,
        st: Option<CaseState>,
        after: u64,
        limit: u32,
    ) -> Result<Vec<CaseRecord>, StoreError> {
        let lim = Value::Int(i64::from(limit));
        let rows = match st {
            Some(s) => self.conn.query(
                &format!(
                    "SELECT {CASE_COLUMNS} FROM cases WHERE state = $1 AND id > $2 ORDER BY id LIMIT $3"
                ),
                &[t(s.as_str()), i(after)?, lim],
            )?,
            None => self.conn.query(
                &format!("SELECT {CASE_COLUMNS} FROM cases WHERE id > $1 ORDER BY id LIMIT $2"),
                &[i(after)?, lim],
            )?,
        };
        rows.iter().map(|r| case_row(r)).collect()
    }

    pub(crate) fn db_active_case_on(
        &mut self,
        payer: &WalletId,
        seq: Option<u64>,
    ) -> Result<Option<u64>, StoreError> {
        let rows = match seq {
            Some(s) => self.conn.query(
                &format!("SELECT id FROM cases WHERE payer = $1 AND seq = $2 AND {HOLDING} ORDER BY id LIMIT 1"),
                &[w(payer), i(s)?],
            )?,
            None => self.conn.query(
                &format!("SELECT id FROM cases WHERE payer = $1 AND seq IS NULL AND {HOLDING} ORDER BY id LIMIT 1"),
                &[w(payer)],
            )?,
        };
        rows.first().map(|r| uint(&r[0])).transpose()
    }

    pub(crate) fn db_insert_case_event(&mut self, e: &CaseEvent) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO case_events (case_id, n, at, from_state, to_state, actor, note) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                i(e.case_id)?,
                i(e.n)?,
                time(e.at)?,
                e.from.map_or(Value::Null, |s| t(s.as_str())),
                t(e.to.as_str()),
                t(&e.actor),
                t(&e.note),
            ],
        )?;
        Ok(())
    }

    pub(crate) fn db_case_events(&mut self, id: u64) -> Result<Vec<CaseEvent>, StoreError> {
        self.conn
            .query(
                "SELECT n, at, from_state, to_state, actor, note FROM case_events WHERE case_id = $1 ORDER BY n",
                &[i(id)?],
            )?
            .iter()
            .map(|r| {
                Ok(CaseEvent {
                    case_id: id,
                    n: uint(&r[0])?,
                    at: UnixSeconds(uint(&r[1])?),
                    from: match &r[2] {
                        Value::Null => None,
                        v => Some(state(v)?),
                    },
                    to: state(&r[3])?,
                    actor: text(&r[4])?,
                    note: text(&r[5])?,
                })
            })
            .collect()
    }

    pub(crate) fn db_held_by_cases(
        &mut self,
        keys: &[(WalletId, Hash32)],
    ) -> Result<Vec<(WalletId, Hash32)>, StoreError> {
        let mut out = Vec::new();
        for chunk in padded_chunks(keys, PAIRS_PER_QUERY_MAX) {
            let (terms, params) = entry_terms(chunk);
            let sql = format!("SELECT payer, entry FROM cases WHERE {HOLDING} AND ({terms})");
            for r in self.conn.query(&sql, &params)? {
                out.push((wallet(&r[0])?, hash(&r[1])?));
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    pub(crate) fn db_note_case_window_closed(
        &mut self,
        keys: &[(WalletId, Hash32)],
        at: UnixSeconds,
    ) -> Result<(), StoreError> {
        for chunk in padded_chunks(keys, PAIRS_PER_QUERY_MAX) {
            let n = chunk.len();
            let (terms, mut params) = entry_terms(chunk);
            params.push(time(at)?);
            let sql = format!(
                "UPDATE cases SET window_closed_at = ${} WHERE window_closed_at IS NULL AND {HOLDING} AND ({terms})",
                2 * n + 1
            );
            self.conn.execute(&sql, &params)?;
        }
        Ok(())
    }

    pub(crate) fn db_entries_held_by_cases(&mut self) -> Result<Vec<(WalletId, u64)>, StoreError> {
        self.conn
            .query(
                &format!(
                    "SELECT payer, seq FROM cases WHERE {HOLDING} AND seq IS NOT NULL \
                     UNION SELECT payer, seq FROM entries WHERE payer IN \
                     (SELECT payer FROM cases WHERE {HOLDING} AND seq IS NULL) \
                     ORDER BY 1, 2"
                ),
                &[],
            )?
            .iter()
            .map(|r| Ok((wallet(&r[0])?, uint(&r[1])?)))
            .collect()
    }

    pub(crate) fn db_insert_case_refund(
        &mut self,
        payer: &WalletId,
        seq: u64,
        case_id: u64,
        amount: i64,
    ) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "INSERT INTO case_refunds (payer, seq, case_id, amount) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (payer, seq) DO NOTHING",
            &[w(payer), i(seq)?, i(case_id)?, Value::Int(amount)],
        )?;
        Ok(n == 1)
    }

    pub(crate) fn db_case_refund(
        &mut self,
        payer: &WalletId,
        seq: u64,
    ) -> Result<Option<u64>, StoreError> {
        let rows = self.conn.query(
            "SELECT case_id FROM case_refunds WHERE payer = $1 AND seq = $2",
            &[w(payer), i(seq)?],
        )?;
        rows.first().map(|r| uint(&r[0])).transpose()
    }

    pub(crate) fn db_case_counts(&mut self) -> Result<Vec<CaseCountRow>, StoreError> {
        self.conn
            .query(
                "SELECT kind, state, COUNT(*) FROM cases GROUP BY kind, state ORDER BY kind, state",
                &[],
            )?
            .iter()
            .map(|r| {
                Ok((
                    CaseKind::parse(&text(&r[0])?).ok_or_else(|| corrupt("case kind"))?,
                    state(&r[1])?,
                    uint(&r[2])?,
                ))
            })
            .collect()
    }
}
