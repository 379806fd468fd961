import Foundation
import LoyaltyCore
import Testing

/// The compact store of a ledger's lots, and the compact lot: found by id after removals, equal whatever the order,
/// and the same JSON as before they were made compact.
@Suite struct LotTableTests {
    let now = Timestamp.test()

    func lot(_ id: String, _ amount: Int = 10) -> EarnLot {
        EarnLot(
            id: LotID(id), cause: .purchase, amount: amount, earnedAt: now, pendingUntil: nil,
            expiresAt: now.adding(.days(30)))
    }

    @Test func lotsAreFoundByIdAfterRemovalsAnywhereInTheTable() {
        var ledger = Ledger()
        for id in ["a", "b", "c", "d", "e"] {
            ledger.store(lot(id, id.count * 10 + Int(id.unicodeScalars.first!.value)))
        }
        ledger.remove("b")  // from the middle: the last lot takes its place
        ledger.remove("e")  // the last one
        ledger.remove("a")  // the first
        ledger.remove("zz")  // not there: nothing happens

        #expect(ledger.lots.count == 2)
        #expect(ledger.lots["a"] == nil && ledger.lots["b"] == nil && ledger.lots["e"] == nil)
        #expect(ledger.lots["c"] == lot("c", 109))
        #expect(ledger.lots["d"] == lot("d", 110))
        #expect(Set(ledger.lots.keys) == ["c", "d"])
        #expect(Set(ledger.lots.values.map(\.id)) == ["c", "d"])
        #expect(ledger.available == 219, "the running totals followed every removal")

        ledger.store(lot("b", 5))
        #expect(ledger.lots["b"]?.amount == 5)
        #expect(ledger.available == 224)
    }

    @Test func ledgersHoldingTheSameLotsAreEqualWhateverTheOrder() {
        var forwards = Ledger()
        var backwards = Ledger()
        let ids = (0..<50).map { "lot-\($0)" }
        for id in ids { forwards.store(lot(id)) }
        for id in ids.reversed() { backwards.store(lot(id)) }
        forwards.remove("lot-7")
        backwards.remove("lot-7")

        #expect(forwards == backwards)
        #expect(forwards.hashValue == backwards.hashValue)

        var changed = backwards
        var different = lot("lot-3")
        different.remaining = 9
        changed.store(different)
        #expect(changed != forwards)
        changed.store(lot("lot-3"))
        #expect(changed == forwards)
        changed.store(lot("lot-7"))
        #expect(changed != forwards, "one lot more")
    }

    @Test func aLotTakesAtMost120Bytes() {
        #expect(MemoryLayout<EarnLot>.stride <= 120)
    }

    @Test func aLotsJSONKeepsItsFieldsAndLeavesOutWhatIsNotSet() throws {
        let bare = EarnLot(
            id: "plain", cause: .survey, amount: 5, earnedAt: now, pendingUntil: nil, expiresAt: nil)
        let object = try #require(
            try JSONSerialization.jsonObject(with: JSONEncoder().encode(bare)) as? [String: Any])
        #expect(
            Set(object.keys) == [
                "id", "cause", "amount", "remaining", "earnedAt", "state", "returnedAmount", "revoked",
                "expiredPoints",
            ])
        #expect(try JSONDecoder().decode(EarnLot.self, from: JSONEncoder().encode(bare)) == bare)
        #expect(
            bare.pendingUntil == nil && bare.expiresAt == nil && bare.purchaseAmount == nil && bare.expiredAt == nil)

        var full = EarnLot(
            id: "full", cause: .purchase, amount: 120, earnedAt: now, pendingUntil: now.adding(.days(14)),
            expiresAt: now.adding(.days(365)), purchaseAmount: Money(minorUnits: 12_000), reference: "T-1")
        full.state = .expired
        full.expiredAt = now.adding(.days(400))
        full.expiredPoints = 80
        full.remaining = 0
        full.revoked = 40
        full.returnedAmount = Money(minorUnits: 4_000)
        let decoded = try JSONDecoder().decode(EarnLot.self, from: JSONEncoder().encode(full))
        #expect(decoded == full)
        #expect(decoded.pendingUntil == now.adding(.days(14)))
        #expect(decoded.expiredAt == now.adding(.days(400)))
        #expect(decoded.purchaseAmount == Money(minorUnits: 12_000))

        full.expiresAt = nil
        #expect(full.expiresAt == nil)
        #expect(try JSONDecoder().decode(EarnLot.self, from: JSONEncoder().encode(full)).expiresAt == nil)
    }

    @Test func aLotWithTheOneTimeItCannotHoldIsAnErrorNotACrash() throws {
        for key in ["pendingUntil", "expiresAt", "expiredAt"] {
            let json =
                #"{"id":"l","cause":"purchase","amount":1,"remaining":1,"earnedAt":5,"state":"active","#
                + #""returnedAmount":0,"revoked":0,"expiredPoints":0,"\#(key)":-9223372036854775808}"#
            #expect(throws: DecodingError.self) { try JSONDecoder().decode(EarnLot.self, from: Data(json.utf8)) }
            // The same through the entity decoder, whose quick reader gives this lot up to Foundation's.
            #expect(throws: DecodingError.self) { try Entity.decode(kind: .lot, json: Data(json.utf8)) }
        }
    }

    @Test func aLedgerRoundTripsThroughJSON() throws {
        var ledger = Ledger()
        for index in 0..<20 { _ = ledger.earn(lot("l\(index)", index + 1), entryID: EntryID("e\(index)")) }
        _ = try ledger.spend(30, at: now, entryID: "s", reference: nil)
        let decoded = try JSONDecoder().decode(Ledger.self, from: JSONEncoder().encode(ledger))
        #expect(decoded == ledger)
        #expect(decoded.available == ledger.available)
    }
}
