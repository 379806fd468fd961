import LoyaltyCore
import Testing

/// Random sequences of ledger operations: after every step the derived figures equal the sums of the movements,
/// no lot holds more than it earned or less than nothing, and no spend draws more than was available.
@Suite struct LedgerPropertyTests {
    @Test(arguments: 0..<40)
    func theBalanceIsTheSumOfTheMovementsAfterEveryStep(seed: Int) throws {
        var random = SeededRandom(seed: UInt64(seed) &* 7919 &+ 17)
        var ledger = Ledger()
        var entries: [LedgerEntry] = []
        var now = Timestamp.test()
        var lotCount = 0

        for step in 0..<200 {
            let availableBefore = ledger.available
            switch random.int(0..<10) {
            case 0..<3:
                lotCount += 1
                let amount = random.int(1...500)
                let pending = random.bool()
                let lot = EarnLot(
                    id: LotID("l\(lotCount)"), cause: .purchase, amount: amount, earnedAt: now,
                    pendingUntil: pending ? now.adding(.days(random.int64(1...20))) : nil,
                    expiresAt: random.bool()
                        ? now.adding(.days(random.int64(1...90))) : nil,
                    purchaseAmount: Money(minorUnits: Int64(amount) * 100 + random.int64(0...99)))
                entries += ledger.earn(lot, entryID: EntryID("earn:\(lotCount)"))
            case 3..<6:
                let amount = random.int(1...400)
                do {
                    let entry = try ledger.spend(amount, at: now, entryID: EntryID("spend:\(step)"), reference: nil)
                    #expect(amount <= availableBefore, "a spend drew more than was available")
                    #expect(entry.draws.reduce(0) { $0 + $1.points } == amount)
                    entries.append(entry)
                } catch {
                    #expect(amount > availableBefore, "a spend within the balance was refused")
                }
            case 6:
                now = now.adding(.days(random.int64(1...10)))
                entries += ledger.unlock(at: now)
                entries += ledger.expire(at: now)
            case 7, 8:
                guard lotCount > 0 else { continue }
                let id = LotID("l\(random.int(1...lotCount))")
                guard let lot = ledger.lots[id], let purchase = lot.purchaseAmount else { continue }
                let left = purchase.minorUnits - lot.returnedAmount.minorUnits
                guard left > 0 else { continue }
                let returned = Money(minorUnits: random.int64(1...left))
                entries.append(
                    try ledger.reverse(
                        lot: id, returned: returned, at: now, entryID: EntryID("rev:\(step)"), reference: nil))
            default:
                let points = random.int(-200...200)
                guard points != 0 else { continue }
                if let made = try? ledger.adjust(
                    by: points, at: now, lot: LotID("adj:\(step)"), expiresAt: nil, entryID: EntryID("adj:\(step)"),
                    reason: "property")
                {
                    #expect(points > 0 || -points <= availableBefore)
                    entries += made
                }
            }

            #expect(ledger.available == entries.reduce(0) { $0 + $1.available }, "seed \(seed) step \(step)")
            #expect(ledger.pendingPoints == entries.reduce(0) { $0 + $1.pending }, "seed \(seed) step \(step)")
            #expect(ledger.owed == entries.reduce(0) { $0 + $1.owed }, "seed \(seed) step \(step)")
            #expect(ledger.owed >= 0)
            #expect(ledger.lots.values.allSatisfy { $0.remaining >= 0 && $0.remaining <= $0.amount })
            #expect(ledger.lots.values.allSatisfy { $0.revoked <= $0.amount })
            if ledger.owed > 0 {
                #expect(
                    ledger.lots.values.allSatisfy { $0.state != .active || $0.remaining == 0 },
                    "points are owed while an active lot still holds points")
            } else {
                #expect(ledger.available >= 0, "the balance went below zero without a reversal owing points")
            }
            #expect(Set(entries.map(\.id)).count == entries.count, "two movements share an id")
        }
    }
}
