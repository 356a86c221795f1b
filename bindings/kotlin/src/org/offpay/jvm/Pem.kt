package org.offpay.jvm

import java.util.Base64

private const val PEM_BEGIN = "-----BEGIN CERTIFICATE-----"
private const val PEM_END = "-----END CERTIFICATE-----"

/**
 * The DER bytes of the first `CERTIFICATE` block in [pem] (what `offpay
 * admin pki export` writes as `root.pem`), for `OffpayWallet.create`'s
 * `rootDer`. The wallet checks the certificate itself; this only unwraps it.
 *
 * @throws IllegalArgumentException if there is no such block or its base64 is malformed.
 */
fun certificateDerFromPem(pem: String): ByteArray {
    val start = pem.indexOf(PEM_BEGIN)
    val stop = if (start < 0) -1 else pem.indexOf(PEM_END, start)
    require(start >= 0 && stop > start) { "no complete CERTIFICATE block in the PEM text" }
    val body = pem.substring(start + PEM_BEGIN.length, stop).filterNot { it.isWhitespace() }
    return Base64.getDecoder().decode(body)
}
