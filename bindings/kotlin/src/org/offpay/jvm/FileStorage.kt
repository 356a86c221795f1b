package org.offpay.jvm

import org.offpay.HostException
import org.offpay.HostStorage
import java.io.IOException
import java.nio.ByteBuffer
import java.nio.channels.FileChannel
import java.nio.file.AtomicMoveNotSupportedException
import java.nio.file.NoSuchFileException
import java.nio.file.Path
import java.nio.file.StandardOpenOption

/**
 * The wallet's named blobs as files in one directory of the app's own
 * storage (on Android: `Context.getFilesDir()`), the [HostStorage] the
 * sealed vault runs on.
 *
 * `replace` is durable and atomic: the new content goes to a fresh
 * temporary file in the same directory, which is forced to disk, moved over
 * the old name with an atomic rename, and then the directory itself is
 * forced, so after a power loss the blob holds the old or the new content,
 * never a mix and never nothing. A failed `replace` leaves the old content
 * and removes its temporary file.
 *
 * The directory is created on first use. Names are what the vault passes
 * (`state.sealed`, `pin-attempts`, `device-check`); anything that could leave
 * the directory (a separator, `..`, an empty or over-long name) is refused.
 * A blob larger than [BLOB_BYTES_MAX] is refused on read rather than loaded.
 * One instance per wallet directory: the wallet calls it one operation at a
 * time (its own lock), and two wallets must not share a directory.
 */
class FileStorage(val directory: Path) : HostStorage {
    override fun read(name: String): ByteArray? {
        val path = blobPath(name)
        try {
            FileChannel.open(path, StandardOpenOption.READ).use { channel ->
                val size = channel.size()
                if (size > BLOB_BYTES_MAX) {
                    throw HostException.Io("blob $name is $size bytes, more than the $BLOB_BYTES_MAX this storage reads")
                }
                val buffer = ByteBuffer.allocate(size.toInt())
                while (buffer.hasRemaining()) {
                    if (channel.read(buffer) < 0) {
                        throw HostException.Io("blob $name shrank while it was read (${buffer.position()} of $size bytes)")
                    }
                }
                return buffer.array()
            }
        } catch (_: NoSuchFileException) {
            return null
        } catch (e: IOException) {
            throw HostException.Io("reading blob $name in $directory: $e")
        }
    }

    override fun replace(name: String, data: ByteArray) {
        val target = blobPath(name)
        if (data.size > BLOB_BYTES_MAX) {
            throw HostException.Io("blob $name would be ${data.size} bytes, more than the $BLOB_BYTES_MAX this storage keeps")
        }
        try {
            atomicReplace(target, data)
        } catch (e: AtomicMoveNotSupportedException) {
            throw HostException.Unavailable("$directory cannot rename atomically, so it cannot hold a wallet: $e")
        } catch (e: IOException) {
            throw HostException.Io("replacing blob $name in $directory: $e")
        }
    }

    private fun blobPath(name: String): Path {
        if (!BLOB_NAME.matches(name)) {
            throw HostException.Io("blob name ${quoted(name)} is not a plain file name (letters, digits, '.', '-', '_'; 1 to $BLOB_NAME_CHARS_MAX characters, not starting with '.')")
        }
        return directory.resolve(name)
    }

    override fun toString(): String = "FileStorage($directory)"

    companion object {
        /** The largest blob this storage reads or writes (the sealed state is at most 4 MiB). */
        const val BLOB_BYTES_MAX: Long = 8L shl 20

        /** The longest blob name accepted. */
        const val BLOB_NAME_CHARS_MAX: Int = 64

        private val BLOB_NAME = Regex("[A-Za-z0-9_-][A-Za-z0-9._-]{0,${BLOB_NAME_CHARS_MAX - 1}}")
    }
}
