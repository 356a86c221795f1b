-- offpay issuer schema: the end of a wallet's life (sqlite).
-- A retired wallet (reported lost, or broken) is revoked at once; `retired`
-- says which ('lost', 'broken'; NULL: not retired). A revoked wallet is
-- closed (state 'closed', its sub-account paid out by the scheme's rules)
-- once its certificate has expired and the longest time a payee may stay
-- offline has passed: the index finds those due.
ALTER TABLE wallets ADD COLUMN retired TEXT CHECK (retired IN ('lost', 'broken'));
ALTER TABLE wallets ADD COLUMN closed_at INTEGER;
CREATE INDEX wallets_closing ON wallets (state, cert_not_after);
-- Whether the payee's TA holds a settled payment: 0 pending (settled from the
-- payer's report only), 1 delivered (a report of the payee carried it, or the
-- payee is not ours), 2 returned to the payer's customer after the payee's
-- window closed without it. Rows from before this migration count as delivered.
ALTER TABLE settlements ADD COLUMN delivery INTEGER NOT NULL DEFAULT 1 CHECK (delivery IN (0, 1, 2));
CREATE INDEX settlements_pending ON settlements (payee, time) WHERE delivery = 0;
-- The reserve: pays payments of a closed wallet reported after it was closed,
-- and takes what a lost wallet forfeits where the scheme does not refund it.
INSERT INTO accounts (id, book, kind, balance, created) VALUES ('reserve', 'gl', 'system', 0, 0) ON CONFLICT (id) DO NOTHING;
