package org.offpay.tests

import java.nio.file.Files
import java.nio.file.Path
import java.nio.file.Paths
import java.util.concurrent.TimeUnit

/** How long one run of the example may take. */
private const val EXAMPLE_SECONDS_MAX = 120L

/** `java ... org.offpay.examples.QuickstartKt ARGS` in its own JVM, as a user runs it: its stdout. */
private fun quickstart(workDir: Path, vararg args: String): String {
    val java = Paths.get(System.getProperty("java.home"), "bin", "java").toString()
    val command = mutableListOf(java, "-cp", System.getProperty("java.class.path"))
    System.getProperty("jna.library.path")?.let { command.add("-Djna.library.path=$it") }
    command.add("org.offpay.examples.QuickstartKt")
    command.addAll(args)
    val out = Files.createTempFile(workDir, "quickstart", ".out")
    val builder = ProcessBuilder(command).redirectErrorStream(true).redirectOutput(out.toFile())
    builder.environment()["OFFPAY_PIN"] = PIN
    builder.environment()["OFFPAY_KDF"] = "test"
    val process = builder.start()
    if (!process.waitFor(EXAMPLE_SECONDS_MAX, TimeUnit.SECONDS)) {
        process.destroyForcibly()
        throw CheckFailed("quickstart ${args.first()} ran longer than $EXAMPLE_SECONDS_MAX s")
    }
    val output = Files.readString(out)
    checkEqual(0, process.exitValue(), "quickstart ${args.first()} exit code (output: $output)")
    return output
}

val exampleCases = listOf(
    Case("example: bindings/kotlin/examples/Quickstart.kt runs as documented") { ctx ->
        val ruth = ctx.customerId("ruth")
        val sam = ctx.customerId("sam")
        ctx.server.customer(ruth, "50.00")
        ctx.server.customer(sam, "0")
        val pki = ctx.dir("quickstart-pki")
        ctx.server.admin("pki", "export", pki.toString())
        val root = pki.resolve("root.pem").toString()
        val ruthDir = ctx.dir("quickstart-ruth")
        val samDir = ctx.dir("quickstart-sam")
        val enrolled = quickstart(ctx.workDir, "enroll", ctx.server.url, root, ruthDir.toString(), ctx.server.enrollmentToken(ruth))
        val ruthWallet = Regex("wallet ([0-9a-f]+) enrolled").find(enrolled)?.groupValues?.get(1)
            ?: throw CheckFailed("enroll printed no wallet id: $enrolled")
        quickstart(ctx.workDir, "enroll", ctx.server.url, root, samDir.toString(), ctx.server.enrollmentToken(sam))
        ctx.server.admin("load", ruthWallet, "20.00")
        val paid = quickstart(ctx.workDir, "pay", ctx.server.url, ruthDir.toString(), samDir.toString(), "725")
        check(paid.contains("paid 725 minor units")) { "pay said what it did: $paid" }
        checkEqual(2000L - 725L, ctx.server.subAccountMinor(ruthWallet), "the issuer's view of the payer after both synced")
        check(ctx.server.invariantsOk()) { "ledger invariants after the quickstart" }
    },
)
