-- offpay issuer schema: compact revocation (postgres). Per revocation: its
-- certificate's notAfter (a revoked certificate leaves the CRL once it has
-- expired, RFC 5280 5.1.2.6; NULL for rows recorded before this migration,
-- filled in from the certificate at the next CRL), the number of the first
-- CRL that listed it and of the CRL that dropped it (NULL: not yet). A delta
-- CRL on base b lists the rows added after b and still listed, and removes
-- the rows listed at b and dropped since.
ALTER TABLE revocations ADD COLUMN not_after BIGINT;
ALTER TABLE revocations ADD COLUMN crl_added BIGINT;
ALTER TABLE revocations ADD COLUMN crl_removed BIGINT;
CREATE INDEX revocations_crl_added ON revocations (crl_added);
CREATE INDEX revocations_crl_removed ON revocations (crl_removed);
