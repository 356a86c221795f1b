package org.offpay.tests

import org.offpay.HostCounter
import org.offpay.HostException
import org.offpay.HostStorage
import org.offpay.OffpayException
import org.offpay.OffpayWallet
import org.offpay.WalletLock
import org.offpay.jvm.FileCounter
import org.offpay.jvm.FileStorage
import java.nio.file.Files
import java.nio.file.Path
import java.nio.file.StandardCopyOption
import java.util.concurrent.CyclicBarrier
import java.util.concurrent.atomic.AtomicInteger
import kotlin.concurrent.thread

/**
 * A storage whose replace number [failAt] (0-based, counted once [armed])
 * throws [failure] instead of writing.
 */
class FailingStorage(private val inner: HostStorage, private val failAt: Int, private val failure: () -> Throwable) : HostStorage {
    val replaces = AtomicInteger()

    @Volatile
    var armed = false

    override fun read(name: String): ByteArray? = inner.read(name)
    override fun replace(name: String, data: ByteArray) {
        if (armed && replaces.getAndIncrement() == failAt) throw failure()
        inner.replace(name, data)
    }
}

/** A counter whose every advance fails (the secure element is unavailable). */
class StuckCounter(private val inner: HostCounter) : HostCounter {
    override fun read(): ULong = inner.read()
    override fun advanceTo(value: ULong) {
        if (value != inner.read()) throw HostException.Unavailable("secure element busy")
    }
}

private fun copyTree(from: Path, to: Path) {
    Files.walk(from).use { paths ->
        paths.forEach { source ->
            val target = to.resolve(from.relativize(source).toString())
            if (Files.isDirectory(source)) Files.createDirectories(target)
            else Files.copy(source, target, StandardCopyOption.REPLACE_EXISTING)
        }
    }
}

val hostCases = listOf(
    Case("host: a files directory restored to an old copy is detected as a rollback") { ctx ->
        val judy = ctx.customer("judy", load = "10.00")
        val kim = ctx.customer("kim", load = null)
        val backup = ctx.dir("judy-backup")
        judy.wallet.close()
        copyTree(judy.device.filesDir, backup)
        judy.device.open().use { pay(it, kim.wallet, 700) }
        // The attacker puts the old files back (the counter is in the secure element).
        judy.device.filesDir.toFile().deleteRecursively()
        copyTree(backup, judy.device.filesDir)
        judy.device.open().use { wallet ->
            checkEqual<WalletLock?>(WalletLock.RolledBack, wallet.status().lock, "the restored wallet's lock")
            val refused = checkThrows<OffpayException.Locked>("pay from the restored wallet") {
                wallet.pay(kim.wallet.request(100u, "EUR", 300u))
            }
            check(refused.rolledBack) { "the lock says it is a rollback: $refused" }
        }
    },
    Case("host: a write failing at every point of a payment moves the money once or not at all") { ctx ->
        val payer = ctx.customer("leo", load = "10.00")
        var payee = ctx.customer("mia", load = null)
        payer.wallet.close()
        var failAt = 0
        var expectedMinor = 1000L
        while (true) {
            if (failAt % 8 == 7) payee = ctx.customer("mia", load = null) // a payee keeps at most 16 requests pending
            val storage = FailingStorage(FileStorage(payer.device.filesDir), failAt) { HostException.Io("disk full (injected)") }
            val wallet = OffpayWallet.open(storage, FileCounter.open(payer.device.counterFile), payer.device.platform, PIN)
            val request = payee.wallet.request(100u, "EUR", 300u)
            storage.armed = true
            val outcome = runCatching { wallet.pay(request) }
            wallet.close()
            val after = payer.device.open().use { it.balance()?.minor?.toLong() ?: 0L }
            if (outcome.isSuccess) {
                checkEqual(expectedMinor - 100, after, "balance after a payment that went through (write $failAt failed nowhere)")
                payee.wallet.receive(outcome.getOrThrow())
                expectedMinor -= 100
                if (storage.replaces.get() <= failAt) break // no write failed: every point was covered
            } else {
                val error = outcome.exceptionOrNull()
                check(error is OffpayException) { "write $failAt: a typed refusal, not $error" }
                check(after == expectedMinor || after == expectedMinor - 100) {
                    "write $failAt failed: the balance is the old or the new one, not $after (old $expectedMinor)"
                }
                expectedMinor = after
            }
            failAt++
            check(failAt < 20) { "a payment writes fewer than 20 times" }
        }
        check(failAt >= 1) { "at least one write of the payment failed: $failAt points covered" }
        checkEqual(expectedMinor, payer.device.open().use { it.balance()?.minor?.toLong() ?: 0L }, "final balance")
    },
    Case("host: a Kotlin exception of any kind in a callback becomes a typed error, not a crash") { ctx ->
        val nick = ctx.customer("nick", load = "5.00")
        val olga = ctx.customer("olga", load = null)
        nick.wallet.close()
        nick.device.open().close() // the state as any open leaves it
        val before = nick.device.fingerprint()
        val storage = FailingStorage(FileStorage(nick.device.filesDir), 0) { IllegalStateException("bug in the app") }
        OffpayWallet.open(storage, FileCounter.open(nick.device.counterFile), nick.device.platform, PIN).use { wallet ->
            storage.armed = true
            checkThrows<OffpayException>("pay through a storage that throws IllegalStateException") {
                wallet.pay(olga.wallet.request(100u, "EUR", 300u))
            }
        }
        checkEqual(before, nick.device.fingerprint(), "files after the failed payment")
        // A counter that cannot advance: the payment fails (its state may be
        // written ahead of the counter, as after a crash), and none follows it.
        OffpayWallet.open(FileStorage(nick.device.filesDir), StuckCounter(FileCounter.open(nick.device.counterFile)), nick.device.platform, PIN).use { wallet ->
            checkThrows<OffpayException.Host>("pay while the counter cannot advance") { wallet.pay(olga.wallet.request(100u, "EUR", 300u)) }
            checkThrows<OffpayException>("pay again past the stuck counter") { wallet.pay(olga.wallet.request(100u, "EUR", 300u)) }
        }
        val after = nick.device.open().use { it.balance()?.minor?.toLong() ?: 0L }
        check(after == 500L || after == 400L) { "at most the first payment is debited past a stuck counter: $after" }
    },
    Case("host: several threads on one wallet, one operation at a time") { ctx ->
        val payer = ctx.customer("pat", load = "20.00")
        val payee = ctx.customer("quinn", load = null)
        val threads = 4
        val paymentsPerThread = 3
        val barrier = CyclicBarrier(threads)
        val errors = java.util.Collections.synchronizedList(ArrayList<Throwable>())
        val payments = java.util.Collections.synchronizedList(ArrayList<ByteArray>())
        val workers = (1..threads).map {
            thread {
                try {
                    barrier.await()
                    repeat(paymentsPerThread) {
                        val request = synchronized(payee) { payee.wallet.request(100u, "EUR", 300u) }
                        payments.add(payer.wallet.pay(request))
                        payer.wallet.status()
                        payer.wallet.history()
                    }
                } catch (e: Throwable) {
                    errors.add(e)
                }
            }
        }
        workers.forEach { it.join() }
        check(errors.isEmpty()) { "no thread failed: $errors" }
        checkEqual(threads * paymentsPerThread, payments.size, "payments made")
        payments.forEach { payee.wallet.receive(it) }
        checkEqual(2000L - 100L * threads * paymentsPerThread, payer.balanceMinor, "payer's balance")
        checkEqual(100L * threads * paymentsPerThread, payee.balanceMinor, "payee's balance")
    },
)
