package org.offpay.jvm

import org.offpay.HostCounter
import org.offpay.HostException
import java.io.IOException
import java.nio.ByteBuffer
import java.nio.ByteOrder
import java.nio.file.AtomicMoveNotSupportedException
import java.nio.file.Files
import java.nio.file.NoSuchFileException
import java.nio.file.Path

/**
 * A monotonic counter in one file: the JVM's stand-in for the hardware
 * counter a phone has (Android KeyMint/StrongBox, the iOS Keychain with a
 * Secure Enclave key), which is what an app must use in production.
 *
 * Format (12 bytes, the same as the Rust `FileCounter`): `OFPC`, then the
 * value as u64 little-endian; every write is durable and atomic (see
 * [atomicReplace]). Keep it outside the [FileStorage] directory: the vault
 * detects a rollback of its state only against a counter that did not roll
 * back with it.
 *
 * **Limit**: a file is not a hardware counter. Whoever owns the OS can
 * restore an old counter file together with the old state; the issuer's
 * checkpoint and the payment chain then prove the double spend at sync. This
 * handle remembers the highest value it saw and refuses a file that went
 * below it.
 */
class FileCounter private constructor(val path: Path) : HostCounter {
    /** Highest value seen or written through this handle. */
    private var floor: ULong = 0u

    @Synchronized
    override fun read(): ULong {
        val bytes = try {
            Files.readAllBytes(path)
        } catch (_: NoSuchFileException) {
            throw HostException.Io("counter file $path is missing (a wallet's counter is created once, with FileCounter.create)")
        } catch (e: IOException) {
            throw HostException.Io("reading counter file $path: $e")
        }
        val value = decode(bytes)
        if (value < floor) {
            throw HostException.Io("counter file $path went back from $floor to $value")
        }
        floor = value
        return value
    }

    @Synchronized
    override fun advanceTo(value: ULong) {
        val current = read()
        if (value < current) {
            throw HostException.Io("counter $path is at $current and cannot go back to $value")
        }
        if (value == current) {
            return
        }
        write(path, value)
        floor = value
    }

    override fun toString(): String = "FileCounter($path)"

    companion object {
        private val MAGIC = byteArrayOf('O'.code.toByte(), 'F'.code.toByte(), 'P'.code.toByte(), 'C'.code.toByte())

        /** The counter file's length: magic and u64. */
        const val FILE_BYTES: Int = 12

        /**
         * A new counter at 0 in [path] (its directory is created). Refused if
         * a file is there already: a wallet gets a fresh counter, once.
         */
        @JvmStatic
        fun create(path: Path): FileCounter {
            if (Files.exists(path)) {
                throw HostException.Io("counter file $path already exists: a new wallet needs a fresh counter")
            }
            write(path, 0u)
            return FileCounter(path)
        }

        /** The existing counter in [path]. */
        @JvmStatic
        fun open(path: Path): FileCounter = FileCounter(path).also { it.read() }

        private fun write(path: Path, value: ULong) {
            val bytes = ByteBuffer.allocate(FILE_BYTES).order(ByteOrder.LITTLE_ENDIAN)
                .put(MAGIC).putLong(value.toLong()).array()
            try {
                atomicReplace(path, bytes)
            } catch (e: AtomicMoveNotSupportedException) {
                throw HostException.Unavailable("${path.parent} cannot rename atomically, so it cannot hold a counter: $e")
            } catch (e: IOException) {
                throw HostException.Io("writing counter file $path: $e")
            }
        }

        private fun decode(bytes: ByteArray): ULong {
            if (bytes.size != FILE_BYTES || !bytes.copyOfRange(0, 4).contentEquals(MAGIC)) {
                throw HostException.Io("counter file is malformed: ${bytes.size} bytes, expected $FILE_BYTES starting with OFPC")
            }
            return ByteBuffer.wrap(bytes, 4, 8).order(ByteOrder.LITTLE_ENDIAN).long.toULong()
        }
    }
}
