-- offpay issuer schema: privacy by retention (postgres). Once a payment is
-- settled, delivered (or returned), both wallets are checkpointed past it and
-- the retention window has passed, the issuer deletes the pairing of its
-- payer and payee: the entry keeps only (payer, seq, hash, prev, kind), its
-- payee, amount, times and signed bytes are cleared; the settlement keeps
-- only (payer, hash, delivery); the payment's postings are folded into one
-- summary posting per account against the clearing accounts below.
-- `pruned` marks such rows (1); a pruned entry can still be compared by
-- hash, so a later double spend on its seq is detected and proven by a
-- RetainedDoubleSpendProof.
ALTER TABLE entries ADD COLUMN pruned BIGINT NOT NULL DEFAULT 0 CHECK (pruned IN (0, 1));
ALTER TABLE settlements ADD COLUMN pruned BIGINT NOT NULL DEFAULT 0 CHECK (pruned IN (0, 1));
-- The retention pass finds the oldest unpruned settlements first.
CREATE INDEX settlements_retention ON settlements (time) WHERE pruned = 0;
-- Clearing accounts of the folded postings, one per book; each sums to zero
-- after every retention batch.
INSERT INTO accounts (id, book, kind, balance, created) VALUES ('retention:gl', 'gl', 'system', 0, 0) ON CONFLICT (id) DO NOTHING;
INSERT INTO accounts (id, book, kind, balance, created) VALUES ('retention:offline', 'offline', 'system', 0, 0) ON CONFLICT (id) DO NOTHING;
