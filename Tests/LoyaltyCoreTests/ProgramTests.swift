import Foundation
import LoyaltyCore
import Testing

@Suite struct ProgramTests {
    @Test func theFixtureProgrammeLoadsAndHoldsTogether() throws {
        let program = try Fixtures.program()
        #expect(program.currency == "EUR")
        #expect(program.pendingDays == 14)
        #expect(program.expiry == .monthsAfterEarning(24))
        #expect(program.tiers.ladder.map(\.id) == ["classic", "silber", "gold"])
        #expect(program.points(for: Money(minorUnits: 4999)) == 49, "fractions of a euro earn nothing")
    }

    @Test func theFixtureCatalogueLoads() throws {
        let catalogue = try Fixtures.catalogue()
        #expect(catalogue.offers.count == 3)
        #expect(catalogue.rewards.first { $0.id == "tote-bag" }?.stock == 500)
        #expect(catalogue.surveys.first?.questions.count == 3)
    }

    @Test(arguments: [1, 11, 0])
    func aRatingQuestionRatesFromOneToTwoToTen(maximum: Int) throws {
        func catalogue(_ maximum: Int) -> Data {
            Data(
                #"{"offers": [], "rewards": [], "surveys": [{"id": "s", "title": "S", "points": 5, "questions": [{"id": "q", "text": "?", "type": "rating", "maximum": \#(maximum)}]}]}"#
                    .utf8)
        }
        #expect(throws: LoyaltyError.self) { try Catalogue.decode(json: catalogue(maximum)) }
        #expect(try Catalogue.decode(json: catalogue(10)).surveys.count == 1, "the contract's largest is accepted")
    }

    @Test(arguments: ["", "gold*", "two words", String(repeating: "x", count: 65)])
    func anOffersSegmentsAreIds(segment: String) throws {
        func catalogue(_ segment: String) -> Catalogue {
            Catalogue(offers: [Offer(id: "o", title: "O", segments: [segment], validFrom: .test(), validUntil: nil)])
        }
        #expect(throws: LoyaltyError.self) { try catalogue(segment).validate() }
        try catalogue("gold:2026").validate()
    }

    @Test func lotsExpireAtTheEndOfTheDayTwentyFourMonthsLaterInBerlin() throws {
        let program = try Fixtures.program()
        let earned = Timestamp.parse("2026-03-02T10:00:00Z")!
        let expiry = try #require(program.expiryDate(forLotEarnedAt: earned))
        // 2028-03-02 23:59:59.999 in Berlin (UTC+1 in March) is 22:59:59.999 UTC.
        #expect(expiry == Timestamp.parse("2028-03-02T22:59:59.999Z"))
    }

    @Test func endOfQuarterAndEndOfYearRulesFallOnTheLastDay() throws {
        var program = try Fixtures.program()
        program.timeZone = "UTC"
        let earned = Timestamp.parse("2026-05-20T10:00:00Z")!
        program.expiry = .endOfQuarter(laterQuarters: 0)
        #expect(program.expiryDate(forLotEarnedAt: earned) == Timestamp.parse("2026-06-30T23:59:59.999Z"))
        program.expiry = .endOfQuarter(laterQuarters: 3)
        #expect(program.expiryDate(forLotEarnedAt: earned) == Timestamp.parse("2027-03-31T23:59:59.999Z"))
        program.expiry = .endOfYear(laterYears: 1)
        #expect(program.expiryDate(forLotEarnedAt: earned) == Timestamp.parse("2027-12-31T23:59:59.999Z"))
        program.expiry = .never
        #expect(program.expiryDate(forLotEarnedAt: earned) == nil)
    }

    @Test(arguments: [
        ("pendingDays", #"{"pendingDays": -1}"#),
        ("currency", #"{"currency": "euro"}"#),
        ("timeZone", #"{"timeZone": "Mars/Olympus"}"#),
        (
            "threshold",
            #"{"tiers": {"ladder": [{"id": "a", "name": "A", "threshold": 10}], "windowMonths": 12, "retentionMonths": 12, "downgrade": "oneDown"}}"#
        ),
        ("expiry rule", #"{"expiry": {"rule": "whenever"}}"#),
    ])
    func aProgrammeThatDoesNotHoldTogetherIsRefusedNamingTheRule(rule: String, patch: String) throws {
        var object = try JSONSerialization.jsonObject(with: try Fixtures.data("program.json")) as! [String: Any]
        let override = try JSONSerialization.jsonObject(with: Data(patch.utf8)) as! [String: Any]
        object.merge(override) { _, new in new }
        let json = try JSONSerialization.data(withJSONObject: object)
        do {
            _ = try Program.decode(json: json)
            Issue.record("a programme with a bad \(rule) was accepted")
        } catch {
            #expect("\(error)".contains(rule), "the error does not name \(rule): \(error)")
        }
    }
}

@Suite struct TierTests {
    let world: World
    init() throws { world = try World() }

    @Test func qualifyingPointsReachThresholdsAndUpgradeAtOnce() throws {
        let rules = world.program.tiers
        #expect(rules.tier(forQualifying: 0).id == "classic")
        #expect(rules.tier(forQualifying: 999).id == "classic")
        #expect(rules.tier(forQualifying: 1000).id == "silber")
        #expect(rules.tier(forQualifying: 3000).id == "gold")

        var state = try world.member()
        let changes = try state.recordPurchase("tx1", amount: Money(minorUnits: 120_000), card: world.card, at: .test())
        #expect(state.tier?.tierID == "silber")
        #expect(changes.contains(.tier(state.tier!)))
    }

    @Test func aTierIsKeptForTheRetentionTimeThenDropsOneStep() throws {
        let program = world.program
        let reached = Timestamp.test()
        let gold = TierStatus(tierID: "gold", since: reached, qualifyingPoints: 3200)
        let held = program.evaluateTier(current: gold, qualifyingPoints: 0, at: reached.adding(.days(300)))
        #expect(held.tierID == "gold", "retention: 12 months")
        let dropped = program.evaluateTier(current: gold, qualifyingPoints: 0, at: reached.adding(.days(370)))
        #expect(dropped.tierID == "silber", "oneDown: one step at a time, even with no points")
        let droppedAgain = program.evaluateTier(current: dropped, qualifyingPoints: 0, at: reached.adding(.days(740)))
        #expect(droppedAgain.tierID == "classic")
    }

    @Test func balanceBasedDowngradeGoesStraightToTheEarnedTier() throws {
        var program = world.program
        program.tiers.downgrade = .balanceBased
        let gold = TierStatus(tierID: "gold", since: .test(), qualifyingPoints: 3200)
        #expect(program.evaluateTier(current: gold, qualifyingPoints: 10, at: .test(.days(370))).tierID == "classic")
    }

    @Test func requalifyingRestartsRetention() throws {
        let program = world.program
        let gold = TierStatus(tierID: "gold", since: .test(), qualifyingPoints: 3200)
        let requalified = program.evaluateTier(current: gold, qualifyingPoints: 3100, at: .test(.days(200)))
        #expect(requalified.since == .test(.days(200)))
        #expect(program.evaluateTier(current: requalified, qualifyingPoints: 0, at: .test(.days(370))).tierID == "gold")
    }

    @Test func onlyQualifyingPointsInsideTheRollingWindowCountAndReturnsTakeThemBack() throws {
        var state = try world.member(at: .test(.days(-400)))
        _ = try state.recordPurchase("old", amount: Money(minorUnits: 90_000), card: world.card, at: .test(.days(-400)))
        _ = try state.recordPurchase("new", amount: Money(minorUnits: 50_000), card: world.card, at: .test(.days(-10)))
        _ = try state.adjustPoints(by: 5000, reason: "goodwill", id: "adj1", at: .test(.days(-5)))
        let ledger = state.ledger
        let window = world.program.qualificationWindowStart(at: .test())
        #expect(ledger.qualifyingPoints(from: window, through: .test()) == 500, "old purchase and adjustment excluded")
        _ = try state.recordReturn("ret", of: "purchase:new", amount: Money(minorUnits: 20_000), at: .test())
        #expect(state.ledger.qualifyingPoints(from: window, through: .test()) == 300)
        #expect(state.ledger.lifetimeEarned == 900 + 500 + 5000 - 200, "lifetime: every lot, less what returns revoked")
    }
}
