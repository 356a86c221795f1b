package org.offpay.tests

import org.offpay.SyncClient

/** The whole story through the bindings against the real server. */
val storyCases = listOf(
    Case("story: enroll, load, pay offline both ways, sync, redeem") { ctx ->
        val alice = ctx.customer("alice", deposit = "100.00", load = "40.00")
        val bob = ctx.customer("bob", deposit = "20.00", load = "10.00")
        check(alice.walletId.matches(Regex("[0-9a-f]{32,}"))) { "wallet id is lower-case hex: ${alice.walletId}" }
        check(alice.wallet.certificateDer() != null) { "an enrolled wallet has its certificate" }
        checkEqual(4000L, alice.balanceMinor, "alice after loading 40.00")
        checkEqual(1000L, bob.balanceMinor, "bob after loading 10.00")
        checkEqual(6000L, ctx.server.onlineMinor(alice.id), "alice's online account after the load")

        // Offline, both ways, and Bob spends on what Alice just paid him.
        pay(alice.wallet, bob.wallet, 1250)
        checkEqual(2750L, alice.balanceMinor, "alice after paying 12.50")
        checkEqual(2250L, bob.balanceMinor, "bob after receiving 12.50")
        pay(bob.wallet, alice.wallet, 2000)
        checkEqual(4750L, alice.balanceMinor, "alice after receiving 20.00")
        checkEqual(250L, bob.balanceMinor, "bob after paying 20.00 (more than he loaded)")
        check(alice.wallet.history().size >= 3) { "alice's history has the load and both payments: ${alice.wallet.history()}" }

        // Back online: the issuer's books follow the wallets.
        SyncClient(ctx.server.url).use { client ->
            client.sync(alice.wallet)
            client.sync(bob.wallet)
            checkEqual(4750L, ctx.server.subAccountMinor(alice.walletId), "alice's sub-account after sync")
            checkEqual(250L, ctx.server.subAccountMinor(bob.walletId), "bob's sub-account after sync")
            client.redeem(alice.wallet, 1500u)
        }
        checkEqual(3250L, alice.balanceMinor, "alice after redeeming 15.00")
        checkEqual(7500L, ctx.server.onlineMinor(alice.id), "alice's online account after the redeem")
        check(ctx.server.invariantsOk()) { "ledger invariants after the story" }

        // The state is on disk: a new process (here: a new object) opens it.
        val walletId = alice.walletId
        alice.wallet.close()
        alice.device.open().use { reopened ->
            checkEqual(walletId, reopened.walletId(), "wallet id after reopening")
            checkEqual(3250uL, reopened.balance()?.minor, "balance after reopening")
        }
        bob.wallet.close()
    },
)
