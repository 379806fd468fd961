import LoyaltyCore
import Testing

@Suite struct LedgerTests {
    let now = Timestamp.test()

    func lot(
        _ id: String, _ amount: Int, expiresIn days: Int64?, pending: Bool = false, purchase: Money? = nil,
        earned: Timestamp? = nil
    ) -> EarnLot {
        let earnedAt = earned ?? now.adding(.days(-1))
        return EarnLot(
            id: LotID(id), cause: .purchase, amount: amount, earnedAt: earnedAt,
            pendingUntil: pending ? now.adding(.days(14)) : nil, expiresAt: days.map { now.adding(.days($0)) },
            purchaseAmount: purchase, reference: id)
    }

    @Test func spendsDrawFromTheLotThatExpiresFirstAndNeverExpiringLotsLast() throws {
        var ledger = Ledger()
        _ = ledger.earn(lot("never", 100, expiresIn: nil), entryID: "e1")
        _ = ledger.earn(lot("late", 100, expiresIn: 300), entryID: "e2")
        _ = ledger.earn(lot("soon", 100, expiresIn: 10), entryID: "e3")

        let entry = try ledger.spend(150, at: now, entryID: "s1", reference: nil)

        #expect(entry.draws == [LotDraw(lot: "soon", points: 100), LotDraw(lot: "late", points: 50)])
        #expect(entry.available == -150)
        #expect(ledger.lots["soon"]?.remaining == 0)
        #expect(ledger.lots["late"]?.remaining == 50)
        #expect(ledger.lots["never"]?.remaining == 100)
        #expect(ledger.available == 150)
    }

    @Test func aSpendLargerThanTheBalanceIsRefusedAndChangesNothing() throws {
        var ledger = Ledger()
        _ = ledger.earn(lot("a", 100, expiresIn: 10), entryID: "e1")
        let before = ledger
        #expect(throws: LoyaltyError.self) { try ledger.spend(101, at: now, entryID: "s1", reference: nil) }
        #expect(ledger == before)
    }

    @Test func aSpendLimitKeepsReservedPointsOutOfReach() throws {
        var ledger = Ledger()
        _ = ledger.earn(lot("a", 100, expiresIn: 10), entryID: "e1")
        #expect(throws: LoyaltyError.self) { try ledger.spend(80, at: now, entryID: "s1", reference: nil, limit: 70) }
        _ = try ledger.spend(70, at: now, entryID: "s1", reference: nil, limit: 70)
        #expect(ledger.available == 30)
    }

    @Test func pendingPointsCannotBeSpentUntilUnlocked() throws {
        var ledger = Ledger()
        let entries = ledger.earn(lot("p", 200, expiresIn: 700, pending: true), entryID: "e1")
        #expect(entries.first?.pending == 200)
        #expect(entries.first?.available == 0)
        #expect(ledger.pendingPoints == 200)
        #expect(ledger.available == 0)
        #expect(throws: LoyaltyError.self) { try ledger.spend(1, at: now, entryID: "s", reference: nil) }

        #expect(ledger.unlock(at: now.adding(.days(13))).isEmpty, "still inside the return window")
        let unlocked = ledger.unlock(at: now.adding(.days(14)))
        #expect(unlocked.map(\.kind) == [.unlock])
        #expect(unlocked.first?.available == 200 && unlocked.first?.pending == -200)
        #expect(ledger.available == 200 && ledger.pendingPoints == 0)
        #expect(ledger.unlock(at: now.adding(.days(20))).isEmpty, "unlocking is idempotent")
    }

    @Test func expiryTakesWhatIsLeftOfALotOnceAndOnlyPastItsDate() throws {
        var ledger = Ledger()
        _ = ledger.earn(lot("old", 100, expiresIn: 5), entryID: "e1")
        _ = ledger.earn(lot("new", 100, expiresIn: 50), entryID: "e2")
        _ = try ledger.spend(30, at: now, entryID: "s1", reference: nil)

        #expect(ledger.expire(at: now.adding(.days(4))).isEmpty)
        let expired = ledger.expire(at: now.adding(.days(5)))
        #expect(expired.map(\.available) == [-70], "only the 70 points left in the lot expire")
        #expect(ledger.lots["old"]?.state == .expired)
        #expect(ledger.available == 100)
        #expect(ledger.pointsExpired(since: now) == 70)
        #expect(ledger.expire(at: now.adding(.days(6))).isEmpty, "expiry is idempotent")
    }

    @Test func expiringSoonListsActivePointsWithinTheHorizonByDate() {
        var ledger = Ledger()
        _ = ledger.earn(lot("a", 100, expiresIn: 10), entryID: "e1")
        _ = ledger.earn(lot("b", 50, expiresIn: 10), entryID: "e2")
        _ = ledger.earn(lot("c", 70, expiresIn: 40), entryID: "e3")
        _ = ledger.earn(lot("d", 30, expiresIn: 5, pending: true), entryID: "e4")
        let soon = ledger.expiring(within: .days(30), at: now)
        #expect(soon == [ExpiringPoints(amount: 150, expiresAt: now.adding(.days(10)))])
    }

    @Test func aReturnRevokesPointsProRataAndPartialReturnsAddUpWithoutDrift() throws {
        var ledger = Ledger()
        _ = ledger.earn(lot("p", 100, expiresIn: 700, purchase: Money(minorUnits: 10_000)), entryID: "e1")
        // Three returns of a third each: 33.33 + 33.33 + 33.34 = 100.00 → exactly 100 points, not 33 + 33 + 33.
        var revoked = 0
        for (index, cents) in [3333, 3333, 3334].enumerated() {
            let entry = try ledger.reverse(
                lot: "p", returned: Money(minorUnits: Int64(cents)), at: now, entryID: EntryID("r\(index)"),
                reference: nil)
            revoked -= entry.points
        }
        #expect(revoked == 100)
        #expect(ledger.lots["p"]?.revoked == 100)
        #expect(ledger.available == 0)
        #expect(throws: LoyaltyError.self) {
            try ledger.reverse(lot: "p", returned: Money(minorUnits: 1), at: now, entryID: "r4", reference: nil)
        }
    }

    @Test func aReturnOfAPendingPurchaseTakesThePendingPoints() throws {
        var ledger = Ledger()
        _ = ledger.earn(lot("p", 80, expiresIn: 700, pending: true, purchase: Money(minorUnits: 8000)), entryID: "e1")
        let entry = try ledger.reverse(
            lot: "p", returned: Money(minorUnits: 2000), at: now, entryID: "r", reference: nil)
        #expect(entry.pending == -20)
        #expect(entry.available == 0)
        #expect(ledger.pendingPoints == 60)
    }

    @Test func aReturnOfSpentPointsTakesOtherPointsThenRecordsTheRestAsOwed() throws {
        var ledger = Ledger()
        _ = ledger.earn(lot("p", 100, expiresIn: 700, purchase: Money(minorUnits: 10_000)), entryID: "e1")
        _ = ledger.earn(lot("q", 30, expiresIn: 800), entryID: "e2")
        _ = try ledger.spend(120, at: now, entryID: "s1", reference: nil)  // p: 0 left, q: 10 left

        let entry = try ledger.reverse(
            lot: "p", returned: Money(minorUnits: 10_000), at: now, entryID: "r", reference: nil)

        #expect(entry.draws == [LotDraw(lot: "q", points: 10)])
        #expect(entry.owed == 90)
        #expect(entry.available == -100)
        #expect(ledger.owed == 90)
        #expect(ledger.available == -90, "shown as owed: a negative balance")

        // The next spendable lot pays the debt first.
        let entries = ledger.earn(lot("r", 200, expiresIn: 700), entryID: "e3")
        #expect(entries.map(\.kind) == [.earn, .settlement])
        #expect(ledger.owed == 0)
        #expect(ledger.available == 110)
        #expect(ledger.lots["r"]?.remaining == 110)
    }

    @Test func owedPointsAreSettledWhenAPendingLotUnlocks() throws {
        var ledger = Ledger()
        _ = ledger.earn(lot("p", 100, expiresIn: 700, purchase: Money(minorUnits: 10_000)), entryID: "e1")
        _ = try ledger.spend(100, at: now, entryID: "s1", reference: nil)
        _ = try ledger.reverse(lot: "p", returned: Money(minorUnits: 5000), at: now, entryID: "r", reference: nil)
        _ = ledger.earn(lot("later", 40, expiresIn: 700, pending: true), entryID: "e2")
        #expect(ledger.owed == 50)
        let entries = ledger.unlock(at: now.adding(.days(14)))
        #expect(entries.map(\.kind) == [.unlock, .settlement])
        #expect(ledger.owed == 10)
        #expect(ledger.available == -10)
    }

    @Test func aNegativeAdjustmentNeverTakesTheBalanceBelowZero() throws {
        var ledger = Ledger()
        _ = ledger.earn(lot("a", 100, expiresIn: 10), entryID: "e1")
        #expect(throws: LoyaltyError.self) {
            try ledger.adjust(by: -101, at: now, lot: "adj", expiresAt: nil, entryID: "a1", reason: "test")
        }
        let entries = try ledger.adjust(by: -40, at: now, lot: "adj", expiresAt: nil, entryID: "a1", reason: "test")
        #expect(entries.map(\.available) == [-40])
        #expect(ledger.available == 60)
    }

    @Test func earningIsIdempotentByLotID() {
        var ledger = Ledger()
        #expect(ledger.earn(lot("a", 100, expiresIn: 10), entryID: "e1").count == 1)
        #expect(ledger.earn(lot("a", 100, expiresIn: 10), entryID: "e1").isEmpty)
        #expect(ledger.earn(lot("zero", 0, expiresIn: 10), entryID: "e2").isEmpty)
        #expect(ledger.available == 100)
    }
}
