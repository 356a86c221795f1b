package org.offpay.tests

import java.io.BufferedReader
import java.io.InputStreamReader
import java.nio.file.Files
import java.nio.file.Path
import org.offpay.jvm.certificateDerFromPem
import java.util.concurrent.TimeUnit

/** `offpay` exited other than expected. */
class OffpayCommandException(message: String) : Exception(message)

/**
 * A real `offpay server` on a free loopback port (`--listen 127.0.0.1:0`;
 * its first JSON line says where), SQLite in [dataDir], driven by
 * `offpay --json admin ...` as an operator would. Close it to stop the
 * process (our own child, by its handle).
 */
class OffpayServer private constructor(
    val binary: Path,
    val dataDir: Path,
    val url: String,
    private val process: Process,
    private val log: Path,
) : AutoCloseable {

    /** `offpay --json admin --server URL --data-dir DIR ARGS`, which must succeed: its JSON. */
    fun admin(vararg args: String): Json {
        val run = runOffpay(binary, listOf("--json", "admin", "--server", url, "--data-dir", dataDir.toString()) + args)
        val json = run.json()
        if (run.exitCode != 0 || json["ok"] != Json.Bool(true)) {
            throw OffpayCommandException("offpay admin ${args.joinToString(" ")} failed (exit ${run.exitCode}): ${run.stdout}${run.stderr}")
        }
        return json
    }

    /** A customer with an online account holding [deposit] (decimal, e.g. "100.00"). */
    fun customer(id: String, deposit: String) {
        admin("create-account", id, "--name", id)
        if (deposit != "0") admin("deposit", id, deposit)
    }

    /** A one-time enrollment token for [customer]. */
    fun enrollmentToken(customer: String): String = admin("enrollment-token", customer)["token"].string

    /** The online balance of [customer], in minor units. */
    fun onlineMinor(customer: String): Long = admin("account", customer)["balance_minor"].long

    /** The issuer's view of a wallet's offline balance (its sub-account), in minor units. */
    fun subAccountMinor(walletId: String): Long = admin("wallet", walletId)["offline_balance_minor"].long

    /** The ledger invariants hold. */
    fun invariantsOk(): Boolean = admin("invariants")["invariants_ok"].bool

    /**
     * The scheme root certificate in DER, as an app would ship it: exported
     * by the operator (`admin pki export`) and taken from its PEM.
     */
    fun rootDer(): ByteArray {
        val dir = Files.createTempDirectory(dataDir.parent, "pki")
        admin("pki", "export", dir.toString())
        return certificateDerFromPem(Files.readString(dir.resolve("root.pem")))
    }

    /** What the server wrote on stderr so far (for a failure report). */
    fun logTail(): String = if (Files.exists(log)) Files.readString(log).takeLast(4000) else ""

    override fun close() {
        process.destroy()
        if (!process.waitFor(10, TimeUnit.SECONDS)) {
            process.destroyForcibly()
            process.waitFor(10, TimeUnit.SECONDS)
        }
    }

    companion object {
        /** How long the server may take to say where it listens. */
        private const val START_SECONDS_MAX = 60L

        fun start(binary: Path, workDir: Path): OffpayServer {
            val dataDir = workDir.resolve("server-data")
            val log = workDir.resolve("server.log")
            val builder = ProcessBuilder(binary.toString(), "--json", "server", "--listen", "127.0.0.1:0", "--data-dir", dataDir.toString())
                .redirectError(log.toFile())
                .redirectInput(ProcessBuilder.Redirect.from(java.io.File("/dev/null")))
            cleanEnvironment(builder.environment())
            val process = builder.start()
            val stdout = BufferedReader(InputStreamReader(process.inputStream, Charsets.UTF_8))
            val firstLine = readLineWithin(stdout, START_SECONDS_MAX)
            if (firstLine == null) {
                process.destroyForcibly()
                throw OffpayCommandException("offpay server printed nothing within $START_SECONDS_MAX s: ${Files.readString(log)}")
            }
            val event = Json.parse(firstLine)
            if (event["event"] != Json.Str("listening")) {
                process.destroyForcibly()
                throw OffpayCommandException("offpay server's first line is not 'listening': $firstLine")
            }
            // Keep draining stdout so the server never blocks on a full pipe
            // (the stream closes when the server stops: the end of the drain).
            Thread {
                try {
                    stdout.use { while (true) it.readLine() ?: break }
                } catch (_: java.io.IOException) {
                }
            }.apply { isDaemon = true }.start()
            return OffpayServer(binary, dataDir, event["url"].string, process, log)
        }

        private fun readLineWithin(reader: BufferedReader, seconds: Long): String? {
            var line: String? = null
            val thread = Thread { line = reader.readLine() }.apply { isDaemon = true }
            thread.start()
            thread.join(seconds * 1000)
            return line
        }
    }
}

/** What one run of `offpay` printed. */
class OffpayRun(val exitCode: Int, val stdout: String, val stderr: String) {
    fun json(): Json = try {
        Json.parse(stdout.trim())
    } catch (e: JsonException) {
        throw OffpayCommandException("offpay did not print one JSON object (exit $exitCode): ${e.message}; stderr: $stderr")
    }
}

/** The variables a developer's shell may set that would point `offpay` elsewhere. */
private val OFFPAY_VARIABLES = listOf(
    "OFFPAY_SERVER", "OFFPAY_OPERATOR_TOKEN", "OFFPAY_DATA_DIR", "OFFPAY_WALLET_DIR", "OFFPAY_LISTEN",
    "OFFPAY_DATABASE_URL", "OFFPAY_CONFIG", "OFFPAY_TIMEOUT", "RUST_LOG",
)

private fun cleanEnvironment(environment: MutableMap<String, String>) {
    OFFPAY_VARIABLES.forEach { environment.remove(it) }
}

/** How long one `offpay admin` command may take. */
private const val COMMAND_SECONDS_MAX = 120L

fun runOffpay(binary: Path, args: List<String>): OffpayRun {
    val out = Files.createTempFile("offpay-run", ".out")
    val err = Files.createTempFile("offpay-run", ".err")
    try {
        val builder = ProcessBuilder(listOf(binary.toString()) + args)
            .redirectOutput(out.toFile())
            .redirectError(err.toFile())
            .redirectInput(ProcessBuilder.Redirect.from(java.io.File("/dev/null")))
        cleanEnvironment(builder.environment())
        val process = builder.start()
        if (!process.waitFor(COMMAND_SECONDS_MAX, TimeUnit.SECONDS)) {
            process.destroyForcibly()
            throw OffpayCommandException("offpay ${args.joinToString(" ")} ran longer than $COMMAND_SECONDS_MAX s")
        }
        return OffpayRun(process.exitValue(), Files.readString(out), Files.readString(err))
    } finally {
        Files.deleteIfExists(out)
        Files.deleteIfExists(err)
    }
}
