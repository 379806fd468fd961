import LoyaltyCore
import Testing

/// Returns at the ledger's edges: after expiry, of purchases that earned nothing, and the rules docs/domain.md
/// decides for the return window, the settlement order and expiry at the time of an action.
@Suite struct LedgerReturnTests {
    let now = Timestamp.test()

    func purchaseLot(_ id: String, _ points: Int, cents: Int64, expiresIn days: Int64, earned: Int64 = -1) -> EarnLot {
        EarnLot(
            id: LotID(id), cause: .purchase, amount: points, earnedAt: now.adding(.days(earned)), pendingUntil: nil,
            expiresAt: now.adding(.days(days)), purchaseAmount: Money(minorUnits: cents), reference: id)
    }

    @Test func aReturnAfterAFullySpentLotExpiredTakesTheSpentPointsFromOtherLots() throws {
        var ledger = Ledger()
        _ = ledger.earn(purchaseLot("p1", 300, cents: 30_000, expiresIn: 10), entryID: "e1")
        _ = try ledger.spend(300, at: now, entryID: "s1", reference: nil)
        _ = ledger.expire(at: now.adding(.days(11)))
        _ = ledger.earn(purchaseLot("p2", 500, cents: 50_000, expiresIn: 700, earned: 11), entryID: "e2")

        let entry = try ledger.reverse(
            lot: "p1", returned: Money(minorUnits: 30_000), at: now.adding(.days(12)), entryID: "r", reference: nil)

        #expect(entry.available == -300)
        #expect(entry.draws == [LotDraw(lot: "p2", points: 300)])
        #expect(ledger.available == 200)
        #expect(ledger.owed == 0)
        #expect(ledger.lifetimeEarned == 500)
    }

    @Test func aReturnOfAPartlyExpiredPartlySpentLotForgivesTheExpiredPartFirst() throws {
        var ledger = Ledger()
        _ = ledger.earn(purchaseLot("p", 100, cents: 10_000, expiresIn: 10), entryID: "e1")
        _ = try ledger.spend(60, at: now, entryID: "s1", reference: nil)
        _ = ledger.expire(at: now.adding(.days(11)))  // 40 expire unspent
        #expect(ledger.lots["p"]?.expiredPoints == 40)

        // Half returned: 50 revoked, 40 of them out of what expired, 10 of what was spent (owed: nothing else).
        let first = try ledger.reverse(
            lot: "p", returned: Money(minorUnits: 5_000), at: now.adding(.days(12)), entryID: "r1", reference: nil)
        #expect(first.owed == 10)
        #expect(first.available == -10)
        #expect(ledger.lots["p"]?.expiredPoints == 0, "the forgiven points no longer count as expired")
        // The rest: 50 more, all spent.
        let second = try ledger.reverse(
            lot: "p", returned: Money(minorUnits: 5_000), at: now.adding(.days(12)), entryID: "r2", reference: nil)
        #expect(second.owed == 50)
        #expect(ledger.owed == 60, "exactly the 60 the member spent")
        #expect(ledger.lifetimeEarned == 0)
    }

    @Test func aReturnOfAnExpiredUnspentLotTakesNothingMore() throws {
        var ledger = Ledger()
        _ = ledger.earn(purchaseLot("p", 100, cents: 10_000, expiresIn: 10), entryID: "e1")
        _ = ledger.earn(purchaseLot("q", 100, cents: 10_000, expiresIn: 700), entryID: "e2")
        _ = ledger.expire(at: now.adding(.days(11)))
        let entry = try ledger.reverse(
            lot: "p", returned: Money(minorUnits: 10_000), at: now.adding(.days(12)), entryID: "r", reference: nil)
        #expect(entry.available == 0)
        #expect(entry.draws.isEmpty)
        #expect(ledger.available == 100)
    }

    @Test func aPurchaseThatEarnedNothingIsKeptAndItsReturnIsBoundedAndRecorded() throws {
        var ledger = Ledger()
        let entries = ledger.earn(purchaseLot("z", 0, cents: 99, expiresIn: 700), entryID: "e1")
        #expect(entries.map(\.kind) == [.earn])
        #expect(entries.first?.points == 0)
        #expect(throws: LoyaltyError.self) {
            try ledger.reverse(lot: "z", returned: Money(minorUnits: 100), at: now, entryID: "r0", reference: nil)
        }
        #expect(throws: LoyaltyError.self) {
            try ledger.reverse(lot: "z", returned: Money(minorUnits: 0), at: now, entryID: "r0", reference: nil)
        }
        let entry = try ledger.reverse(lot: "z", returned: Money(minorUnits: 99), at: now, entryID: "r", reference: nil)
        #expect(entry.kind == .reversal)
        #expect(entry.points == 0)
        #expect(ledger.lots["z"]?.returnedAmount == Money(minorUnits: 99))
        #expect(throws: LoyaltyError.self) {
            try ledger.reverse(lot: "z", returned: Money(minorUnits: 1), at: now, entryID: "r2", reference: nil)
        }
    }

    @Test func theTillRecordsAPurchaseUnderAEuroOnceAndAReturnOfItWithinWhatWasBought() throws {
        let world = try World()
        var anna = try world.member()
        _ = try anna.recordPurchase("T-Z", amount: Money(minorUnits: 99), card: world.card, at: now)
        #expect(anna.ledger.lots["purchase:T-Z"]?.amount == 0)
        #expect(throws: LoyaltyError.self) {
            try anna.recordPurchase("T-Z", amount: Money(minorUnits: 99), card: world.card, at: now)
        }
        // A purchase of 0.00 (paid in full with a voucher) is recorded too, and nothing of it can be returned.
        _ = try anna.recordPurchase("T-0", amount: Money(minorUnits: 0), card: world.card, at: now)
        #expect(throws: LoyaltyError.self) {
            try anna.recordReturn("RT-0", of: "purchase:T-0", amount: Money(minorUnits: 1), at: now)
        }
        let changes = try anna.recordReturn("RT-Z", of: "purchase:T-Z", amount: Money(minorUnits: 99), at: now)
        #expect(changes.contains { if case .ledgerEntry(let entry) = $0 { entry.kind == .reversal } else { false } })
    }

    @Test(arguments: [
        // Summer time begins on 2027-03-28: 10:00 CET the day before → 10:00 CEST 14 days later.
        ("2027-03-27T09:00:00.250Z", "2027-04-10T08:00:00.250Z"),
        // Summer time ends on 2027-10-31: 10:00 CEST the day before → 10:00 CET 14 days later.
        ("2027-10-30T08:00:00Z", "2027-11-13T09:00:00Z"),
        // No change in between: 14 × 24 hours.
        ("2027-06-01T12:34:56.789Z", "2027-06-15T12:34:56.789Z"),
    ])
    func theReturnWindowIsFourteenCalendarDaysInTheProgrammesTimeZone(purchase: String, unlock: String) throws {
        let program = try World().program
        let end = program.returnWindowEnd(forPurchaseAt: try #require(Timestamp.parse(purchase)))
        #expect(end == Timestamp.parse(unlock))
    }

    @Test func owedPointsArePaidByTheLotsThatUnlockTogetherInSpendOrder() throws {
        var ledger = Ledger()
        _ = ledger.earn(purchaseLot("p", 100, cents: 10_000, expiresIn: 700), entryID: "e1")
        _ = try ledger.spend(100, at: now, entryID: "s1", reference: nil)
        _ = try ledger.reverse(lot: "p", returned: Money(minorUnits: 10_000), at: now, entryID: "r", reference: nil)
        // Two lots unlock at the same moment; "b" (id after "a") expires first, so it pays first.
        for (id, days) in [("a", Int64(800)), ("b", Int64(400))] {
            _ = ledger.earn(
                EarnLot(
                    id: LotID(id), cause: .purchase, amount: 80, earnedAt: now, pendingUntil: now.adding(.days(14)),
                    expiresAt: now.adding(.days(days)), purchaseAmount: Money(minorUnits: 8_000)),
                entryID: EntryID(id))
        }
        let entries = ledger.unlock(at: now.adding(.days(14)))
        #expect(entries.map(\.kind) == [.unlock, .unlock, .settlement, .settlement])
        #expect(ledger.lots["b"]?.remaining == 0)
        #expect(ledger.lots["a"]?.remaining == 60)
        #expect(ledger.owed == 0)
    }

    @Test func expiryIsJudgedAtTheTimeOfAnActionWithTheJobsMovements() throws {
        let world = try World()
        var anna = try world.member(withPoints: 300)
        let expiry = try #require(anna.ledger.lots["purchase:tx-start"]?.expiresAt)
        #expect(anna.expireDue(at: expiry.adding(.milliseconds(-1))).isEmpty, "nothing is due a moment before")
        let due = anna.expireDue(at: expiry)
        #expect(
            due.contains {
                if case .ledgerEntry(let entry) = $0 { entry.id == "expire:purchase:tx-start" } else { false }
            })
        #expect(anna.ledger.available == 0)
        #expect(
            anna.expireLots(at: expiry.adding(.days(1))).allSatisfy {
                if case .ledgerEntry = $0 { false } else { true }
            }, "the job then has nothing left to expire")
    }

    /// A return after expiry now takes spent points from other lots: points a device may hold reserved. The
    /// allowance shrinks to what is left, and the till can spend nothing until the device gives some back.
    @Test func aReturnAfterExpiryCutsTheAllowanceItTakesPointsFrom() throws {
        let world = try World()
        let start = try #require(Timestamp.parse("2027-01-10T10:00:00Z"))
        var anna = try world.member(at: start)
        _ = try anna.recordPurchase("P1", amount: Money(minorUnits: 30_000), card: world.card, at: start)
        _ = anna.unlockPending(at: start.adding(.days(15)))
        _ = try anna.redeemAtTill("TR-1", points: 300, card: nil, at: start.adding(.days(15)))
        let later = try #require(Timestamp.parse("2029-01-12T10:00:00Z"))
        _ = anna.expireLots(at: later)
        _ = try anna.recordPurchase("P2", amount: Money(minorUnits: 50_000), card: world.card, at: later)
        let unlocked = later.adding(.days(15))
        _ = anna.unlockPending(at: unlocked)
        _ = anna.grantAllowance(to: "phone", devices: 1, at: unlocked)
        #expect(anna.reservedPoints(at: unlocked) == 250)

        let changes = try anna.recordReturn(
            "RT-1", of: "purchase:P1", amount: Money(minorUnits: 30_000), at: unlocked)

        #expect(anna.ledger.available == 200)
        #expect(anna.reservedPoints(at: unlocked) == 200)
        #expect(anna.allowancesAreCovered(at: unlocked))
        #expect(changes.contains { if case .allowance(let allowance) = $0 { allowance.cut == 50 } else { false } })
        #expect(throws: LoyaltyError.self, "the till spends no reserved point") {
            try anna.redeemAtTill("TR-2", points: 100, card: nil, at: unlocked)
        }
    }
}
