import LoyaltyCore
import Testing

/// The worked example of docs/domain.md, step by step, with the figures the document shows.
/// If this test changes, change the document with it.
@Suite struct WorkedExampleTests {
    @Test func annasYearInTheLedger() throws {
        let world = try World()
        let at = { (text: String) in Timestamp.parse(text)! }
        var anna = try world.member(at: at("2026-03-01T09:00:00Z"))
        var phone = DeviceScript("anna-phone")
        var entries: [LedgerEntry] = []
        func record(_ changes: [Entity]) {
            for case .ledgerEntry(let entry) in changes { entries.append(entry) }
        }

        // 1. 2 March: a purchase of 142.50 EUR at the till earns 142 points, pending for the 14-day return window.
        record(
            try anna.recordPurchase(
                "T-1", amount: Money(minorUnits: 14_250), card: world.card, at: at("2026-03-02T10:00:00Z")))
        #expect(anna.balance(at: at("2026-03-02T10:00:00Z")).pending == 142)
        #expect(anna.ledger.lots["purchase:T-1"]?.expiresAt == at("2028-03-02T22:59:59.999Z"))

        // 2. 5 March: a survey pays 50 points, spendable at once.
        let survey = phone.envelope(
            .answerSurvey("store-visit", answers: ["rating": "5", "store": "Berlin Mitte"]),
            at: at("2026-03-05T18:00:00Z"))
        record(anna.applyOnServer(survey, now: at("2026-03-05T18:00:00Z")).changes)
        #expect(anna.balance(at: at("2026-03-05T18:00:00Z")).available == 50)

        // 3. 16 March: the unlock job makes the purchase points spendable: 192.
        record(anna.runJobs(at: at("2026-03-16T10:00:00Z")))
        #expect(anna.balance(at: at("2026-03-16T10:00:00Z")).available == 192)

        // 4. 1 April: 180.00 EUR earns 180 pending points; unlocked on 15 April: 372.
        record(
            try anna.recordPurchase(
                "T-2", amount: Money(minorUnits: 18_000), card: world.card, at: at("2026-04-01T10:00:00Z")))
        record(anna.runJobs(at: at("2026-04-15T10:00:00Z")))
        #expect(anna.balance(at: at("2026-04-15T10:00:00Z")).available == 372)

        // 5. 20 April: the tote bag (300 points) draws oldest expiry first: 142 from T-1, 50 from the survey, 108 from T-2.
        let redeem = phone.envelope(.redeemReward("tote-bag"), at: at("2026-04-20T12:00:00Z"))
        let redemption = anna.applyOnServer(
            redeem, now: at("2026-04-20T12:00:00Z"), facts: ServerFacts(stock: 500, voucherCode: "TB-7Q2K"))
        record(redemption.changes)
        let spend = try #require(entries.last { $0.kind == .spend })
        #expect(
            spend.draws == [
                LotDraw(lot: "purchase:T-1", points: 142), LotDraw(lot: "survey:store-visit", points: 50),
                LotDraw(lot: "purchase:T-2", points: 108),
            ])
        #expect(anna.balance(at: at("2026-04-20T12:00:00Z")).available == 72)

        // 6. 25 April: half of T-2 is returned (90.00 EUR): 90 points are revoked. Only 72 are left: 18 are owed.
        record(
            try anna.recordReturn(
                "R-1", of: "purchase:T-2", amount: Money(minorUnits: 9000), at: at("2026-04-25T10:00:00Z")))
        let summary = anna.balance(at: at("2026-04-25T10:00:00Z"))
        #expect(summary.available == -18)
        #expect(summary.owed == 18)

        // 7. 2 May: 60.00 EUR earns 60 pending points; when they unlock on 16 May, the 18 owed are paid first: 42.
        record(
            try anna.recordPurchase(
                "T-3", amount: Money(minorUnits: 6000), card: world.card, at: at("2026-05-02T10:00:00Z")))
        record(anna.runJobs(at: at("2026-05-16T10:00:00Z")))
        #expect(anna.balance(at: at("2026-05-16T10:00:00Z")).available == 42)
        #expect(anna.ledger.owed == 0)

        // 8. By 3 May 2028 every lot has expired: T-1, the survey lot and T-2 empty (0 points), T-3 with its 42.
        record(anna.runJobs(at: at("2028-05-03T00:00:00Z")))
        #expect(anna.balance(at: at("2028-05-03T00:00:00Z")).available == 0)

        // The ledger is the sum of its movements, and the kinds of movement are the ones the document lists.
        #expect(entries.reduce(0) { $0 + $1.available } == anna.ledger.available)
        #expect(
            entries.map(\.kind) == [
                .earn, .earn, .unlock, .earn, .unlock, .spend, .reversal, .earn, .unlock, .settlement, .expire, .expire,
                .expire, .expire,
            ])
        #expect(entries.filter { $0.kind == .expire }.map(\.available) == [0, 0, 0, -42])
    }
}
