import LoyaltyCore
import Testing

/// Random sequences of ledger operations: after every step the derived figures equal the sums of the movements,
/// no lot holds more than it earned or less than nothing, and no spend draws more than was available.
@Suite struct LedgerPropertyTests {
    @Test(arguments: 0..<40)
    func theBalanceIsTheSumOfTheMovementsAfterEveryStep(seed: Int) throws {
        var random = SeededGenerator(seed: UInt64(seed) &* 7919 &+ 17)
        var ledger = Ledger()
        var entries: [LedgerEntry] = []
        var now = Timestamp.test()
        var lotCount = 0

        for step in 0..<200 {
            let availableBefore = ledger.available
            switch Int.random(in: 0..<10, using: &random) {
            case 0..<3:
                lotCount += 1
                let amount = Int.random(in: 1...500, using: &random)
                let pending = Bool.random(using: &random)
                let lot = EarnLot(
                    id: LotID("l\(lotCount)"), cause: .purchase, amount: amount, earnedAt: now,
                    pendingUntil: pending ? now.adding(.days(Int64.random(in: 1...20, using: &random))) : nil,
                    expiresAt: Bool.random(using: &random)
                        ? now.adding(.days(Int64.random(in: 1...90, using: &random))) : nil,
                    purchaseAmount: Money(minorUnits: Int64(amount) * 100 + Int64.random(in: 0...99, using: &random)))
                entries += ledger.earn(lot, entryID: EntryID("earn:\(lotCount)"))
            case 3..<6:
                let amount = Int.random(in: 1...400, using: &random)
                do {
                    let entry = try ledger.spend(amount, at: now, entryID: EntryID("spend:\(step)"), reference: nil)
                    #expect(amount <= availableBefore, "a spend drew more than was available")
                    #expect(entry.draws.reduce(0) { $0 + $1.points } == amount)
                    entries.append(entry)
                } catch {
                    #expect(amount > availableBefore, "a spend within the balance was refused")
                }
            case 6:
                now = now.adding(.days(Int64.random(in: 1...10, using: &random)))
                entries += ledger.unlock(at: now)
                entries += ledger.expire(at: now)
            case 7, 8:
                guard lotCount > 0 else { continue }
                let id = LotID("l\(Int.random(in: 1...lotCount, using: &random))")
                guard let lot = ledger.lots[id], let purchase = lot.purchaseAmount else { continue }
                let left = purchase.minorUnits - lot.returnedAmount.minorUnits
                guard left > 0 else { continue }
                let returned = Money(minorUnits: Int64.random(in: 1...left, using: &random))
                entries.append(
                    try ledger.reverse(
                        lot: id, returned: returned, at: now, entryID: EntryID("rev:\(step)"), reference: nil))
            default:
                let points = Int.random(in: -200...200, using: &random)
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
