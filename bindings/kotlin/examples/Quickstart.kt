// Quickstart: an offpay wallet in a JVM (or Android) app, through the
// Kotlin bindings (package org.offpay) and the JVM host implementations
// (org.offpay.jvm: the app's files, a counter, the keystore secret).
//
//   java -cp offpay.jar:jna.jar:kotlin-stdlib.jar:quickstart.jar org.offpay.examples.QuickstartKt \
//       enroll SERVER_URL ROOT_PEM WALLET_DIR ENROLLMENT_TOKEN
//   ... pay SERVER_URL PAYER_DIR PAYEE_DIR AMOUNT_MINOR
//
// The PIN comes from OFFPAY_PIN. `enroll` creates a wallet and enrolls it
// with the issuer (the operator then loads it); `pay` syncs the payer (it
// picks up the load), pays the payee offline (request, payment, receipt:
// bytes an app carries over NFC, BLE or a QR code), and syncs both.
package org.offpay.examples

import org.offpay.KdfSettings
import org.offpay.OffpayException
import org.offpay.OffpayWallet
import org.offpay.SyncClient
import org.offpay.jvm.FileCounter
import org.offpay.jvm.FileStorage
import org.offpay.jvm.JvmPlatform
import org.offpay.jvm.certificateDerFromPem
import java.nio.file.Files
import java.nio.file.Path
import java.nio.file.Paths
import kotlin.system.exitProcess

/** Argon2id cost of the PIN: OWASP's minimum; OFFPAY_KDF=test makes it fast and insecure (tests only). */
fun kdf(): KdfSettings =
    if (System.getenv("OFFPAY_KDF") == "test") KdfSettings(memoryKib = 8u, passes = 1u)
    else KdfSettings(memoryKib = 19_456u, passes = 2u)

/**
 * A wallet's three host services under [dir]: its blobs in `files/`, its
 * monotonic counter (on a phone: the secure element) and its device secret
 * (on a phone: the keystore).
 */
class Phone(dir: Path) {
    val storage = FileStorage(dir.resolve("files"))
    val counterFile: Path = dir.resolve("counter")
    val platform = JvmPlatform(dir.resolve("device.secret"))

    fun create(pin: String, rootDer: ByteArray): OffpayWallet =
        OffpayWallet.create(storage, FileCounter.create(counterFile), platform, pin, rootDer, kdf())

    fun open(pin: String): OffpayWallet = OffpayWallet.open(storage, FileCounter.open(counterFile), platform, pin)
}

/** Create a wallet in [dir] and enroll it with the issuer at [serverUrl]: its id. */
fun enroll(serverUrl: String, rootPem: Path, dir: Path, token: String, pin: String): String {
    // The app ships the scheme's root certificate; the wallet trusts nothing else.
    val rootDer = certificateDerFromPem(Files.readString(rootPem))
    Phone(dir).create(pin, rootDer).use { wallet ->
        SyncClient(serverUrl).use { client -> client.enroll(wallet, token) }
        println("wallet ${wallet.walletId()} enrolled with $serverUrl")
        return wallet.walletId()
    }
}

/** Sync the payer, pay [amountMinor] offline to the payee, sync both. */
fun payOffline(serverUrl: String, payerDir: Path, payeeDir: Path, amountMinor: ULong, pin: String) {
    Phone(payerDir).open(pin).use { payer ->
        Phone(payeeDir).open(pin).use { payee ->
            SyncClient(serverUrl).use { client ->
                client.sync(payer) // applies the issuer's load vouchers
                println("payer balance ${payer.balance()}")

                // Offline from here: four messages between the two phones.
                val currency = payer.balance()?.currency ?: "EUR"
                val request = payee.request(amountMinor, currency, 300u) // payee -> payer
                val payment = payer.pay(request) // payer -> payee: final, spendable at once
                val receipt = payee.receive(payment) // payee -> payer
                payer.confirm(receipt)
                println("paid $amountMinor minor units: payer ${payer.balance()}, payee ${payee.balance()}")

                // Back online: the issuer reconciles both sides.
                client.sync(payer)
                client.sync(payee)
                println("synced: payer ${payer.status()}")
            }
        }
    }
}

fun main(args: Array<String>) {
    val pin = System.getenv("OFFPAY_PIN")
    if (pin.isNullOrEmpty()) {
        System.err.println("quickstart: set OFFPAY_PIN")
        exitProcess(2)
    }
    try {
        when {
            args.size == 5 && args[0] == "enroll" -> enroll(args[1], Paths.get(args[2]), Paths.get(args[3]), args[4], pin)
            args.size == 5 && args[0] == "pay" -> {
                val amount = args[4].toULongOrNull() ?: throw IllegalArgumentException("amount ${args[4]} is not a number of minor units")
                payOffline(args[1], Paths.get(args[2]), Paths.get(args[3]), amount, pin)
            }
            else -> {
                System.err.println("usage: quickstart enroll SERVER_URL ROOT_PEM WALLET_DIR TOKEN | pay SERVER_URL PAYER_DIR PAYEE_DIR AMOUNT_MINOR")
                exitProcess(2)
            }
        }
    } catch (e: OffpayException) {
        // Every refusal is its own type: InsufficientFunds, WrongPin, Locked, Network, ...
        System.err.println("quickstart: refused: ${e::class.simpleName}: ${e.message}")
        exitProcess(1)
    }
}
