import LoyaltyCore
import Testing

@Suite struct MemberStateTests {
    let world: World
    init() throws { world = try World() }

    @Test func aDeviceThatMergesTheServersChangesEndsUpWithTheServersState() throws {
        var server = try world.member(withPoints: 2000, segments: ["coffee-lovers"])
        var device = MemberState(program: world.program, member: MemberRecord(id: "m-1", createdAt: .test()))
        for entity in server.entities { device.merge(entity) }
        #expect(device == server, "bootstrap from the snapshot")

        var phone = DeviceScript("phone")
        var all: [Entity] = []
        for mutation in [
            Mutation.activateOffer("welcome-10"), .redeemOffer("welcome-10"), .redeemReward("voucher-5"),
            .answerSurvey("store-visit", answers: ["rating": "4", "store": "Hamburg"]),
            .setProfileField(.phone, value: "+49 30 7777777", basedOn: nil), .setConsent(.marketingPush, granted: true),
        ] {
            all += server.applyOnServer(phone.envelope(mutation), facts: ServerFacts(voucherCode: "V9")).changes
        }
        all += try server.recordPurchase("tx9", amount: Money(minorUnits: 9900), card: world.card, at: .test(.hours(1)))
        all += server.runJobs(at: .test(.days(20)))
        for entity in all { device.merge(entity) }
        #expect(device == server, "incremental changes")
    }

    @Test func anOptimisticDeviceViewIsReplacedByTheServersDecision() throws {
        // Both devices believe they can spend 700 of 1000; the server takes the first and refuses the second.
        var server = try world.member(withPoints: 1000)
        server.merge(.reward(Reward(id: "big", title: "Big", cost: 700)))
        var phoneView = server
        var tabletView = server
        var phone = DeviceScript("phone")
        var tablet = DeviceScript("tablet")
        let fromPhone = phone.envelope(.redeemReward("big"))
        let fromTablet = tablet.envelope(.redeemReward("big"))
        #expect(phoneView.applyOnDevice(fromPhone).status == .applied)
        #expect(tabletView.applyOnDevice(fromTablet).status == .applied)

        let first = server.applyOnServer(fromPhone)
        let second = server.applyOnServer(fromTablet)
        #expect(first.status == .applied)
        #expect(second.rejection?.code == .insufficientPoints)
        #expect(server.ledger.available == 300)
        for entity in first.changes { tabletView.merge(entity) }
        tabletView.vouchers[VoucherID(fromTablet.mutationID)] = nil  // what a rebase drops with the rejected mutation
        #expect(tabletView.ledger.lots == server.ledger.lots)
    }

    @Test func aPurchaseOnABlockedOrReplacedCardEarnsNothing() throws {
        var state = try world.member()
        let replacement = try CardNumber(body: "400000100099")
        let changes = try state.issueCard(replacement, at: .test())
        #expect(changes.count == 2)
        #expect(state.cards[world.card]?.status == .replaced)
        #expect(state.cards[world.card]?.replacedBy == replacement)
        #expect(state.activeCard?.number == replacement)
        #expect(throws: LoyaltyError.self) {
            try state.recordPurchase("tx1", amount: Money(minorUnits: 1000), card: world.card, at: .test())
        }
        _ = try state.recordPurchase("tx2", amount: Money(minorUnits: 1000), card: replacement, at: .test())
        #expect(state.ledger.pendingPoints == 10)
        _ = try state.blockCard(replacement)
        #expect(throws: LoyaltyError.self) {
            try state.recordPurchase("tx3", amount: Money(minorUnits: 1000), card: nil, at: .test())
        }
    }

    @Test func aTransactionIsCreditedOnce() throws {
        var state = try world.member()
        _ = try state.recordPurchase("tx1", amount: Money(minorUnits: 1000), card: nil, at: .test())
        #expect(throws: LoyaltyError.self) {
            try state.recordPurchase("tx1", amount: Money(minorUnits: 1000), card: nil, at: .test())
        }
        #expect(state.ledger.pendingPoints == 10)
    }

    @Test func theJobsAreIdempotent() throws {
        var state = try world.member()
        _ = try state.recordPurchase("tx1", amount: Money(minorUnits: 50_000), card: nil, at: .test())
        let first = state.runJobs(at: .test(.days(15)))
        #expect(first.contains { if case .ledgerEntry(let entry) = $0 { entry.kind == .unlock } else { false } })
        #expect(state.runJobs(at: .test(.days(15))).isEmpty)
        #expect(state.balance(at: .test(.days(15))).available == 500)
        let expired = state.runJobs(at: .test(.days(800)))
        #expect(expired.contains { if case .ledgerEntry(let entry) = $0 { entry.kind == .expire } else { false } })
        #expect(state.balance(at: .test(.days(800))).available == 0)
    }

    @Test func theBalanceShowsPendingExpiringSoonAndOwedPoints() throws {
        var state = try world.member(withPoints: 400)
        let expiry = try #require(state.ledger.lots["purchase:tx-start"]?.expiresAt)
        _ = try state.recordPurchase("tx2", amount: Money(minorUnits: 12_000), card: nil, at: expiry.adding(.days(-20)))
        let balance = state.balance(at: expiry.adding(.days(-10)))
        #expect(balance.available == 400)
        #expect(balance.pending == 120)
        #expect(balance.expiringSoon == [ExpiringPoints(amount: 400, expiresAt: expiry)])
        #expect(balance.owed == 0)
    }

    @Test func aReturnOfSpentPointsIsShownAsOwedNotLost() throws {
        var state = try world.member(withPoints: 1000)
        var phone = DeviceScript("phone")
        _ = state.applyOnServer(phone.envelope(.redeemReward("voucher-5")))
        _ = state.applyOnServer(phone.envelope(.redeemReward("voucher-5")))
        let changes = try state.recordReturn(
            "ret1", of: "purchase:tx-start", amount: Money(minorUnits: 60_000), at: .test())
        #expect(state.balance(at: .test()).available == -600)
        #expect(state.balance(at: .test()).owed == 600)
        #expect(changes.contains(.account(PointsAccount(owed: 600))))
    }

    /// Found by the simulator: a return against a lot that was already spent (or expired) changed the lot without
    /// sending it, so the server's store never learned what was returned, and the purchase could be returned again.
    @Test(arguments: [false, true])
    func aReturnOfASpentOrExpiredLotSendsTheLotAndCannotBeRepeatedBeyondThePurchase(expired: Bool) throws {
        var server = try world.member(withPoints: 1000)
        if expired {
            let expiry = try #require(server.ledger.lots["purchase:tx-start"]?.expiresAt)
            _ = server.runJobs(at: expiry.adding(.minutes(1)))
        } else {
            var phone = DeviceScript("phone")
            _ = server.applyOnServer(phone.envelope(.redeemReward("voucher-5")))
            _ = server.applyOnServer(phone.envelope(.redeemReward("voucher-5")))
        }
        // What a store keeps is what the changes say: rebuild the state from them after the return.
        var stored = server
        let changes = try server.recordReturn(
            "ret1", of: "purchase:tx-start", amount: Money(minorUnits: 100_000), at: .test(.days(800)))
        for change in changes { stored.merge(change) }
        #expect(stored == server, "every change of the state is in the changes")
        #expect(stored.ledger.lots["purchase:tx-start"]?.returnedAmount == Money(minorUnits: 100_000))
        #expect(throws: LoyaltyError.self, "the whole purchase was returned already") {
            _ = try stored.recordReturn(
                "ret2", of: "purchase:tx-start", amount: Money(minorUnits: 100), at: .test(.days(801)))
        }
    }
}
