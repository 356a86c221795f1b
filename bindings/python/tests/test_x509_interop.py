"""Our certificates, CRLs and CSRs read by a standard tool: pyca/cryptography
(>= 46, its wheel bundles OpenSSL with FIPS 204 ML-DSA). A real ``offpay
server --suite ml-dsa-44`` makes the root and issuer CA; the CLI makes an
ML-DSA-44 wallet and an Ed25519 wallet under it (a mixed chain). The tool
parses every object, names the algorithm by its NIST OID, and verifies every
signature: what another implementation of the scheme would do."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request

import pytest

from offpay_server import OffpayServer, pem_to_der

x509 = pytest.importorskip("cryptography.x509")
from cryptography.hazmat.primitives.asymmetric import ed25519, mldsa  # noqa: E402

ID_ML_DSA_44 = "2.16.840.1.101.3.4.3.17"
ID_ED25519 = "1.3.101.112"


@pytest.fixture(scope="module")
def pq_bank(tmp_path_factory: pytest.TempPathFactory):
    tmp = str(tmp_path_factory.mktemp("pq"))
    server = OffpayServer(os.path.join(tmp, "server"), args=("--suite", "ml-dsa-44"))
    try:
        yield server, tmp
    finally:
        server.stop()


def cli(server: OffpayServer, *args: str) -> dict:
    env = dict(os.environ, OFFPAY_PIN="2468", OFFPAY_KDF="test")
    out = subprocess.run(
        [server.bin, "--json", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return json.loads(out.stdout)


def wallet_cert(server: OffpayServer, tmp: str, customer: str, suite: str) -> x509.Certificate:
    server.customer(customer, "10.00")
    token = server.enrollment_token(customer)
    d = os.path.join(tmp, customer)
    cli(server, "wallet", "--dir", d, "create", "--server", server.url, "--token", token,
        "--suite", suite)
    pem = cli(server, "wallet", "--dir", d, "cert")["pem"]
    return x509.load_der_x509_certificate(pem_to_der(pem))


def is_ca(c: x509.Certificate) -> bool:
    """BasicConstraints cA (absent: not a CA, RFC 5280 4.2.1.9)."""
    try:
        return c.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as r:  # noqa: S310 (loopback)
        return r.read()


def test_a_standard_tool_reads_and_verifies_ml_dsa_certificates(pq_bank) -> None:
    server, tmp = pq_bank
    roots = json.loads(get(server.url + "/v1/roots"))
    root = x509.load_pem_x509_certificate(roots["root_pem"].encode())
    issuer = x509.load_pem_x509_certificate(roots["issuer_pem"].encode())
    for c in (root, issuer):
        assert c.signature_algorithm_oid.dotted_string == ID_ML_DSA_44
        assert isinstance(c.public_key(), mldsa.MLDSA44PublicKey)
        assert is_ca(c)
    root.verify_directly_issued_by(root)
    issuer.verify_directly_issued_by(root)

    pq = wallet_cert(server, tmp, "pq", "ml-dsa-44")
    classic = wallet_cert(server, tmp, "classic", "ed25519")
    assert isinstance(pq.public_key(), mldsa.MLDSA44PublicKey)
    assert isinstance(classic.public_key(), ed25519.Ed25519PublicKey)
    for w in (pq, classic):
        # Signed by the ML-DSA issuer CA, whatever the wallet's own suite.
        assert w.signature_algorithm_oid.dotted_string == ID_ML_DSA_44
        w.verify_directly_issued_by(issuer)
        assert not is_ca(w)
    # A signature of another certificate does not verify: the check can fail.
    with pytest.raises(Exception):
        pq.verify_directly_issued_by(root)

    crl = x509.load_der_x509_crl(get(server.url + "/v1/crl"))
    assert crl.signature_algorithm_oid.dotted_string == ID_ML_DSA_44
    assert crl.is_signature_valid(issuer.public_key())
    assert not crl.is_signature_valid(root.public_key())


def test_the_public_key_encodings_are_the_nist_ones(pq_bank) -> None:
    server, tmp = pq_bank
    pq = wallet_cert(server, tmp, "pq2", "ml-dsa-44")
    spki = pq.public_key_algorithm_oid.dotted_string
    assert spki == ID_ML_DSA_44
    raw = pq.public_key().public_bytes_raw()
    assert len(raw) == 1312  # FIPS 204 ML-DSA-44 public key
    classic = wallet_cert(server, tmp, "classic2", "ed25519")
    assert classic.public_key_algorithm_oid.dotted_string == ID_ED25519
