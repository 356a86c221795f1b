package org.offpay.tests

import org.offpay.KdfSettings
import org.offpay.OffpayException
import org.offpay.OffpayWallet
import org.offpay.SyncClient
import org.offpay.WalletLock
import java.net.ServerSocket
import java.nio.file.Files
import java.nio.file.Path
import java.security.MessageDigest

/** Every file of a device (blobs, counter, secret) and its SHA-256: equal before and after = nothing written. */
fun Device.fingerprint(): Map<String, String> =
    Files.walk(dir).use { paths ->
        paths.filter { Files.isRegularFile(it) }.toList().associate { path: Path ->
            dir.relativize(path).toString() to MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(path))
                .joinToString("") { "%02x".format(it) }
        }
    }

/** [block] must throw a [T], and leave the wallet's balance, history and files as they were. */
inline fun <reified T : OffpayException> refusedUnchanged(what: String, customer: Customer, block: () -> Any?): T {
    val balance = customer.wallet.balance()
    val history = customer.wallet.history()
    val files = customer.device.fingerprint()
    val refusal = checkThrows<T>(what, block)
    checkEqual(balance, customer.wallet.balance(), "$what: balance after the refusal")
    checkEqual(history, customer.wallet.history(), "$what: history after the refusal")
    checkEqual(files, customer.device.fingerprint(), "$what: the device's files after the refusal")
    // A variant with fields says them in `message`; UniFFI's Kotlin gives a
    // variant without fields (ZeroAmount, NonceUnknown) an empty message: its type is the reason.
    return refusal
}

/** Each refusal arrives as its own typed exception, and changes nothing. */
val refusalCases = listOf(
    Case("refusal: wrong PIN counts down, five lock the vault even for the right PIN") { ctx ->
        val carol = ctx.customer("carol", load = null)
        carol.wallet.close()
        val first = checkThrows<OffpayException.WrongPin>("open with a wrong PIN") { carol.device.open("0000") }
        checkEqual(4u, first.attemptsLeft, "attempts left after one wrong PIN")
        carol.device.open(PIN).use { it.walletId() } // the right PIN resets the count
        repeat(4) { checkThrows<OffpayException.WrongPin>("wrong PIN ${it + 1}") { carol.device.open("1234") } }
        checkThrows<OffpayException>("fifth wrong PIN") { carol.device.open("1234") }
        checkThrows<OffpayException.PinAttemptsExhausted>("the right PIN after five wrong ones") { carol.device.open(PIN) }
    },
    Case("refusal: insufficient funds, per-payment limit, zero amount, wrong payee, replay, expiry, garbage") { ctx ->
        val dave = ctx.customer("dave", load = "5.00")
        val erin = ctx.customer("erin", load = "5.00")
        refusedUnchanged<OffpayException.InsufficientFunds>("pay 6.00 with 5.00", dave) {
            dave.wallet.pay(erin.wallet.request(600u, "EUR", 300u))
        }
        val maxPayment = erin.wallet.status().policy?.maxPaymentMinor ?: throw CheckFailed("an enrolled wallet has a policy")
        val tooLarge = erin.wallet.request(maxPayment + 1u, "EUR", 300u)
        val limit = refusedUnchanged<OffpayException.LimitPerPayment>("pay above the per-payment limit", dave) { dave.wallet.pay(tooLarge) }
        checkEqual(maxPayment, limit.maxMinor, "the limit the refusal names")
        refusedUnchanged<OffpayException.ZeroAmount>("request of zero", erin) { erin.wallet.request(0u, "EUR", 300u) }
        refusedUnchanged<OffpayException>("a payment that is not one", erin) { erin.wallet.receive(ByteArray(40) { 7 }) }
        refusedUnchanged<OffpayException>("a request that is not one", dave) { dave.wallet.pay(byteArrayOf(1, 2, 3)) }

        // The same payment twice (a torn exchange resumed): the same receipt, credited once.
        val request = erin.wallet.request(100u, "EUR", 300u)
        val payment = dave.wallet.pay(request)
        val receipt = erin.wallet.receive(payment)
        dave.wallet.confirm(receipt)
        checkEqual(600L, erin.balanceMinor, "erin after one payment of 1.00")
        val history = erin.wallet.history()
        check(erin.wallet.receive(payment).contentEquals(receipt)) { "the same payment again gets the same receipt" }
        checkEqual(600L, erin.balanceMinor, "erin after the same payment again: credited once")
        checkEqual(history, erin.wallet.history(), "erin's history after the same payment again")
        refusedUnchanged<OffpayException.WrongPayee>("a payment addressed to another wallet", dave) { dave.wallet.receive(payment) }

        // A request the payer sees expired (its clock is past the validity).
        val shortLived = erin.wallet.request(100u, "EUR", 60u)
        dave.device.platform.clockOffsetSeconds = 120
        try {
            refusedUnchanged<OffpayException.RequestExpired>("pay an expired request", dave) { dave.wallet.pay(shortLived) }
        } finally {
            dave.device.platform.clockOffsetSeconds = 0
        }
    },
    Case("refusal: a wallet the operator locked refuses to pay after its sync") { ctx ->
        val frank = ctx.customer("frank", load = "5.00")
        val grace = ctx.customer("grace", load = null)
        ctx.server.admin("lock", frank.walletId, "--reason", "lost phone")
        SyncClient(ctx.server.url).use { it.sync(frank.wallet) }
        val locked = refusedUnchanged<OffpayException.Locked>("pay from a locked wallet", frank) {
            frank.wallet.pay(grace.wallet.request(100u, "EUR", 300u))
        }
        check(!locked.rolledBack && locked.reason.contains("lost phone")) { "an issuer lock, with the operator's reason: $locked" }
        check(frank.wallet.status().lock is WalletLock.Issuer) { "status shows the issuer lock: ${frank.wallet.status()}" }
    },
    Case("refusal: bad arguments and the sync client's server and network errors") { ctx ->
        val device = Device(ctx.dir("heidi"))
        checkThrows<OffpayException.InvalidKdfParams>("a KDF below the minimum") {
            OffpayWallet.create(
                org.offpay.jvm.FileStorage(device.filesDir), org.offpay.jvm.FileCounter.create(device.counterFile),
                device.platform, PIN, ctx.root, KdfSettings(memoryKib = 1u, passes = 0u),
            )
        }
        val heidi = ctx.customer("heidi", load = null)
        SyncClient(ctx.server.url).use { client ->
            val wallet = Device(ctx.dir("ivan")).create(ctx.root)
            val refused = checkThrows<OffpayException.Server>("enroll with a made-up token") { client.enroll(wallet, "not-a-token") }
            check(refused.status.toInt() in 400..499) { "a bad token is the client's mistake: ${refused.status}" }
            wallet.close()
        }
        val closedPort = ServerSocket(0).use { it.localPort }
        SyncClient("http://127.0.0.1:$closedPort").use { client ->
            // The report is made (and recorded) before the network fails: money and history stay.
            val balance = heidi.wallet.balance()
            val history = heidi.wallet.history()
            checkThrows<OffpayException.Network>("sync with no server listening") { client.sync(heidi.wallet) }
            checkEqual(balance, heidi.wallet.balance(), "balance after a failed sync")
            checkEqual(history, heidi.wallet.history(), "history after a failed sync")
        }
        checkThrows<OffpayException.InvalidArgument>("a server URL that is not one") { SyncClient("not a url") }
    },
)
