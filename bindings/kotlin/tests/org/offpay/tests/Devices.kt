package org.offpay.tests

import org.offpay.KdfSettings
import org.offpay.OffpayWallet
import org.offpay.SyncClient
import org.offpay.jvm.FileCounter
import org.offpay.jvm.FileStorage
import org.offpay.jvm.JvmPlatform
import java.nio.file.Path

/** The PIN every test wallet uses. */
const val PIN = "4711"

/** The smallest key derivation the vault accepts: fast, insecure, tests only. */
val TEST_KDF = KdfSettings(memoryKib = 8u, passes = 1u)

/**
 * One phone: the app's files directory (the vault's blobs), its hardware
 * counter (a file elsewhere, so that restoring the files directory alone
 * is a rollback), and its keystore (the device secret).
 */
class Device(val dir: Path) {
    val filesDir: Path = dir.resolve("files")
    val counterFile: Path = dir.resolve("secure-element").resolve("counter")
    val platform = JvmPlatform(dir.resolve("keystore").resolve("device.secret"))

    fun create(root: ByteArray, pin: String = PIN): OffpayWallet =
        OffpayWallet.create(FileStorage(filesDir), FileCounter.create(counterFile), platform, pin, root, TEST_KDF)

    fun open(pin: String = PIN): OffpayWallet =
        OffpayWallet.open(FileStorage(filesDir), FileCounter.open(counterFile), platform, pin)
}

/** A wallet enrolled for a new customer holding [depositMinor] online, loaded with [loadMinor]. */
class Customer(val id: String, val device: Device, val wallet: OffpayWallet) {
    val walletId: String get() = wallet.walletId()
    val balanceMinor: Long get() = wallet.balance()?.minor?.toLong() ?: 0L
}

fun Context.customer(name: String, deposit: String = "100.00", load: String? = "40.00"): Customer {
    val id = customerId(name)
    server.customer(id, deposit)
    val device = Device(dir(name))
    val wallet = device.create(root)
    SyncClient(server.url).use { it.enroll(wallet, server.enrollmentToken(id)) }
    if (load != null) {
        server.admin("load", wallet.walletId(), load)
        SyncClient(server.url).use { it.sync(wallet) }
    }
    return Customer(id, device, wallet)
}

/** One offline payment, the four messages: request, payment, receipt. */
fun pay(payer: OffpayWallet, payee: OffpayWallet, amountMinor: Long, validSeconds: Long = 300) {
    val request = payee.request(amountMinor.toULong(), "EUR", validSeconds.toULong())
    val payment = payer.pay(request)
    val receipt = payee.receive(payment)
    payer.confirm(receipt)
}
