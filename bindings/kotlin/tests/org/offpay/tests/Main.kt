package org.offpay.tests

import java.nio.file.Files
import java.nio.file.Path
import java.nio.file.Paths
import kotlin.system.exitProcess

/** A failed check: what was expected and what happened. */
class CheckFailed(message: String) : AssertionError(message)

fun check(condition: Boolean, what: () -> String) {
    if (!condition) throw CheckFailed(what())
}

fun <T> checkEqual(expected: T, actual: T, what: String) {
    if (expected != actual) throw CheckFailed("$what: expected $expected, got $actual")
}

/** Run [block], which must throw a [T]: that exception. */
inline fun <reified T : Throwable> checkThrows(what: String, block: () -> Any?): T {
    val result = try {
        block()
    } catch (e: Throwable) {
        if (e is T) return e
        throw CheckFailed("$what: expected ${T::class.simpleName}, got ${e::class.qualifiedName}: ${e.message}").apply { initCause(e) }
    }
    throw CheckFailed("$what: expected ${T::class.simpleName}, but it returned ${describe(result)}")
}

fun describe(value: Any?): String = when (value) {
    is ByteArray -> "${value.size} bytes"
    else -> value.toString()
}

/** What every test gets: the `offpay` binary, the shared server, a scratch directory. */
class Context(val binary: Path, val server: OffpayServer, val workDir: Path) {
    private var counter = 0

    /** The scheme root in DER, as the app ships it. */
    val root: ByteArray by lazy { server.rootDer() }

    /** A fresh directory under the work directory. */
    fun dir(name: String): Path = Files.createDirectories(workDir.resolve("${name}-${++counter}"))

    /** A fresh customer id (the server is shared by all tests). */
    fun customerId(name: String): String = "$name-${++counter}"
}

/** One test: a name and its body. */
class Case(val name: String, val body: (Context) -> Unit)

/** Every test, in the order they run. */
val CASES: List<Case> = storyCases + refusalCases + hostCases + exampleCases

/**
 * The Kotlin suite: `java -Doffpay.bin=PATH -cp ... org.offpay.tests.MainKt
 * [NAME...]` runs the named tests (all by default) against one real `offpay
 * server` and prints `kotlin: N passed, M failed`; exit 1 if any failed.
 */
fun main(args: Array<String>) {
    val binary = Paths.get(System.getProperty("offpay.bin") ?: "target/debug/offpay").toAbsolutePath()
    if (!Files.isExecutable(binary)) {
        System.err.println("kotlin: no offpay binary at $binary (set -Doffpay.bin)")
        exitProcess(2)
    }
    val selected = if (args.isEmpty()) CASES else CASES.filter { it.name in args }
    val unknown = args.filter { name -> CASES.none { it.name == name } }
    if (unknown.isNotEmpty()) {
        System.err.println("kotlin: no such test: ${unknown.joinToString()} (tests: ${CASES.joinToString { it.name }})")
        exitProcess(2)
    }
    val workDir = Files.createTempDirectory("offpay-kotlin")
    var passed = 0
    var failed = 0
    OffpayServer.start(binary, workDir).use { server ->
        val context = Context(binary, server, workDir)
        for (case in selected) {
            val started = System.nanoTime()
            try {
                case.body(context)
                passed++
                println("ok     ${case.name} (${(System.nanoTime() - started) / 1_000_000} ms)")
            } catch (e: Throwable) {
                failed++
                println("FAILED ${case.name}: $e")
                e.printStackTrace(System.out)
                println("  server log (tail):\n${server.logTail().prependIndent("    ")}")
            }
        }
    }
    if (failed == 0) workDir.toFile().deleteRecursively() else println("kept the work directory $workDir")
    println("kotlin: $passed passed, $failed failed")
    exitProcess(if (failed == 0) 0 else 1)
}
