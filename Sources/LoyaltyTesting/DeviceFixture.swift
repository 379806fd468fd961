internal import Foundation
public import LoyaltyCore
public import LoyaltyStore

/// Device stores in a known state, as a server would have filled them: for tests and benchmarks.
public enum DeviceFixture {
    /// A small programme (UTC, one tier) for stores built here.
    public static let programJSON = """
        {"id": "test", "name": "Test", "currency": "EUR", "timeZone": "UTC", "pointsPerCurrencyUnit": 1,
         "minimumRedemption": 100, "pendingDays": 14, "expiry": {"rule": "monthsAfterEarning", "months": 24},
         "receiptClaimDays": 30, "offlineGrace": "72h", "expiringSoonDays": 30,
         "tiers": {"ladder": [{"id": "classic", "name": "Classic", "threshold": 0}], "windowMonths": 12,
                   "retentionMonths": 12, "downgrade": "oneDown"}}
        """

    /// A signed-in store at `path` holding a member with `lots` one-point purchases (each with its earn
    /// movement), `offers` targeted offers plus one that is not, and two rewards, applied in pages of 5,000 as a
    /// bootstrap would. Returns the store and the time it was built at.
    public static func bootstrapped(path: String, lots: Int, offers: Int = 1) throws -> (DeviceStore, Timestamp) {
        let now = Timestamp.parse("2026-06-01T10:00:00Z")!
        let store = try DeviceStore(path: path, now: now)
        try store.saveIdentity(
            DeviceIdentity(
                serverURL: "http://127.0.0.1:1", memberID: "m-1", deviceID: "d-1", cardNumber: "4000001000013",
                accessToken: "t", accessTokenExpiresAt: now.adding(.hours(1)), refreshToken: "r"))
        let program = try Program.decode(json: Data(programJSON.utf8))
        // Changes are made a page at a time, as a pull delivers them: the whole feed is never in memory at once.
        var changes: [Change] = []
        var version: UInt64 = 0
        func apply(last: Bool) throws {
            _ = try store.applyPage(
                PullResponse(
                    changes: changes, cursor: Cursor(version: version), hasMore: !last, reset: false,
                    lastProcessedSequence: 0, serverTime: now, serverStamp: .zero), at: now)
            changes.removeAll(keepingCapacity: true)
        }
        func add(_ entity: Entity) throws {
            version += 1
            changes.append(Change(version: version, operation: .upsert(entity)))
            if changes.count == 5_000 { try apply(last: false) }
        }
        try add(.program(program))
        try add(.member(MemberRecord(id: "m-1", createdAt: now.adding(.days(-400)))))
        try add(.card(Card(number: try CardNumber("4000001000013"), issuedAt: now.adding(.days(-400)))))
        for index in 0..<offers {
            let id = OfferID(index == 0 ? "welcome-10" : "offer-\(index)")
            try add(
                .offer(
                    Offer(
                        id: id, title: "Offer \(index)", validFrom: now.adding(.days(-1)),
                        validUntil: now.adding(.days(30)))))
        }
        try add(
            .offer(
                Offer(
                    id: "gold-only", title: "Gold", segments: ["gold"], validFrom: now.adding(.days(-1)),
                    validUntil: nil)))
        try add(.reward(Reward(id: "tote-bag", title: "Tote", cost: 300)))
        try add(.reward(Reward(id: "voucher-20", title: "20 EUR", cost: 1800)))
        for index in 0..<lots {
            let earned = now.adding(.minutes(Int64(-lots + index)))
            var lot = EarnLot(
                id: LotID("l\(index)"), cause: .purchase, amount: 1, earnedAt: earned, pendingUntil: nil,
                expiresAt: now.adding(.days(700)))
            lot.state = .active
            try add(.lot(lot))
            try add(.ledgerEntry(LedgerEntry(id: EntryID("earn:l\(index)"), kind: .earn, at: earned, available: 1)))
        }
        try apply(last: true)
        return (store, now)
    }
}
