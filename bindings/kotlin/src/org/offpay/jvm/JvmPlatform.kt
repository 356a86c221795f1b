package org.offpay.jvm

import org.offpay.HostException
import org.offpay.HostPlatform
import java.io.IOException
import java.nio.file.FileAlreadyExistsException
import java.nio.file.Files
import java.nio.file.NoSuchFileException
import java.nio.file.Path
import java.nio.file.StandardOpenOption
import java.nio.ByteBuffer
import java.nio.channels.FileChannel
import java.nio.file.attribute.PosixFilePermissions
import java.security.SecureRandom

/**
 * The platform services on a plain JVM: the device secret, the clock and
 * the random source.
 *
 * The device secret is 32 random bytes in [secretFile] (mode 0600), made on
 * first use: the JVM's stand-in for a key the OS keystore never lets out (on
 * Android, a StrongBox-backed key that unwraps it; on iOS, the Keychain). The
 * vault key needs both it and the PIN, so a copied storage directory alone
 * does not open. Time is the system clock plus [clockOffsetSeconds] (tests
 * move it); randomness is [SecureRandom].
 */
open class JvmPlatform(val secretFile: Path) : HostPlatform {
    private val random = SecureRandom()

    /** Added to the system clock, in seconds (0 in production). */
    @Volatile
    var clockOffsetSeconds: Long = 0

    override fun deviceSecret(): ByteArray {
        try {
            val secret = Files.readAllBytes(secretFile)
            if (secret.size != DEVICE_SECRET_BYTES) {
                throw HostException.Io("device secret $secretFile is ${secret.size} bytes, not $DEVICE_SECRET_BYTES")
            }
            return secret
        } catch (_: NoSuchFileException) {
            return createSecret()
        } catch (e: IOException) {
            throw HostException.Io("reading device secret $secretFile: $e")
        }
    }

    override fun nowUnixSeconds(): ULong {
        // No error can be returned here: a clock before 1970 reads as 0,
        // which every certificate and request then refuses as not yet valid.
        return (System.currentTimeMillis() / 1000 + clockOffsetSeconds).coerceAtLeast(0).toULong()
    }

    override fun randomBytes(len: UInt): ByteArray {
        if (len > RANDOM_BYTES_MAX) {
            throw HostException.Io("$len random bytes asked, more than $RANDOM_BYTES_MAX at once")
        }
        return ByteArray(len.toInt()).also { random.nextBytes(it) }
    }

    /**
     * A new secret, written whole to a temporary file and then linked to its
     * name (`link` refuses an existing name), so a crash never leaves a
     * short secret file and two racing creators agree on one secret.
     */
    private fun createSecret(): ByteArray {
        val secret = ByteArray(DEVICE_SECRET_BYTES).also { random.nextBytes(it) }
        val directory = secretFile.toAbsolutePath().parent
        val temporary = directory.resolve(".${secretFile.fileName}.${java.lang.Long.toHexString(random.nextLong())}.tmp")
        try {
            Files.createDirectories(directory)
            val ownerOnly = PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------"))
            FileChannel.open(temporary, setOf(StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE), ownerOnly).use { channel ->
                val buffer = ByteBuffer.wrap(secret)
                while (buffer.hasRemaining()) {
                    channel.write(buffer)
                }
                channel.force(true)
            }
            Files.createLink(secretFile, temporary)
            forceDirectory(directory)
            return secret
        } catch (_: FileAlreadyExistsException) {
            // Another creator was first: use its secret.
            return deviceSecret()
        } catch (e: IOException) {
            throw HostException.Io("creating device secret $secretFile: $e")
        } catch (e: UnsupportedOperationException) {
            throw HostException.Unavailable("$secretFile cannot be made owner-only or linked (not a POSIX file system): $e")
        } finally {
            try {
                Files.deleteIfExists(temporary)
            } catch (_: IOException) {
                // A leftover temporary file (its name starts with '.') is never read.
            }
        }
    }

    override fun toString(): String = "JvmPlatform($secretFile)"

    companion object {
        /** The device secret's length. */
        const val DEVICE_SECRET_BYTES: Int = 32

        /** The most random bytes one call hands out. */
        const val RANDOM_BYTES_MAX: UInt = 1_048_576u
    }
}
