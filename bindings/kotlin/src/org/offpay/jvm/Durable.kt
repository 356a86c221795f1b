package org.offpay.jvm

import java.io.IOException
import java.nio.ByteBuffer
import java.nio.channels.FileChannel
import java.nio.file.Files
import java.nio.file.Path
import java.nio.file.StandardCopyOption
import java.nio.file.StandardOpenOption
import java.security.SecureRandom

private val temporaryNames = SecureRandom()

/**
 * Replace the file [target] by [data], durably and atomically: write a fresh
 * temporary file beside it (`.NAME.RANDOM.tmp`), force it to disk, rename it
 * over [target] atomically, then force the directory. On any failure the
 * temporary file is removed and [target] keeps its old content.
 *
 * @throws java.nio.file.AtomicMoveNotSupportedException where the file
 *   system cannot rename atomically.
 * @throws IOException on any other failure.
 */
internal fun atomicReplace(target: Path, data: ByteArray) {
    val directory = target.toAbsolutePath().parent
    Files.createDirectories(directory)
    val temporary = directory.resolve(".${target.fileName}.${java.lang.Long.toHexString(temporaryNames.nextLong())}.tmp")
    try {
        FileChannel.open(temporary, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE).use { channel ->
            val buffer = ByteBuffer.wrap(data)
            while (buffer.hasRemaining()) {
                channel.write(buffer)
            }
            channel.force(true)
        }
        Files.move(temporary, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING)
    } catch (e: IOException) {
        deleteQuietly(temporary)
        throw e
    }
    forceDirectory(directory)
}

/** `fsync` on a directory, so that a rename in it survives a power loss. */
internal fun forceDirectory(directory: Path) {
    FileChannel.open(directory, StandardOpenOption.READ).use { it.force(true) }
}

private fun deleteQuietly(path: Path) {
    try {
        Files.deleteIfExists(path)
    } catch (_: IOException) {
        // The caller reports the original failure; a leftover temporary
        // file (its name starts with '.') is never read as a blob.
    }
}

/** [text] in quotes, cut to 80 characters, for error messages about names from outside. */
internal fun quoted(text: String): String =
    "\"" + (if (text.length > 80) text.take(80) + "..." else text).replace("\"", "\\\"") + "\""
