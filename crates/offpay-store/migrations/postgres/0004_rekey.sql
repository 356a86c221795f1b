-- offpay issuer schema: re-keying at sync (postgres). A wallet's key
-- generation (0: its first key; +1 at each re-key), the certificate of its
-- previous key (entries below the new key's first seq were signed by it;
-- NULL until a re-key), and the suite of a re-key the operator or the policy
-- asked for and the wallet has not yet completed (its COSE algorithm; NULL:
-- none).
ALTER TABLE wallets ADD COLUMN key_generation BIGINT NOT NULL DEFAULT 0 CHECK (key_generation >= 0);
ALTER TABLE wallets ADD COLUMN prev_cert_der BYTEA;
ALTER TABLE wallets ADD COLUMN rekey_suite BIGINT;
