import LoyaltyAnalysis
import LoyaltyCore
import Testing

@Suite struct MemberFiguresTests {
    static let day: Int64 = 86_400_000
    /// 2026-01-01T00:00:00Z, day 0 of these tests.
    static let origin = Timestamp(millisecondsSince1970: 1_767_225_600_000)

    static func at(_ days: Double) -> Timestamp {
        Timestamp(millisecondsSince1970: origin.millisecondsSince1970 + Int64(days * Double(day)))
    }

    static func member(enrolled: Double = -400, purchases: [(Double, Int64)] = []) -> MemberHistory {
        MemberHistory(
            memberID: MemberID("m-1"), enrolledAt: at(enrolled),
            purchases: purchases.map { PurchaseFact(at: Self.at($0.0), revenue: Money(minorUnits: $0.1)) })
    }

    /// The worked example of docs/analysis.md, figure for figure.
    @Test func theWorkedExampleOfTheDocs() {
        let history = MemberHistory(
            memberID: MemberID("m-anna"), enrolledAt: Self.at(-500),
            purchases: [
                PurchaseFact(at: Self.at(-420), revenue: Money(minorUnits: 9_000)),
                PurchaseFact(at: Self.at(-100), revenue: Money(minorUnits: 4_000)),
                PurchaseFact(at: Self.at(-70), revenue: Money(minorUnits: 6_000)),
                PurchaseFact(at: Self.at(-40), revenue: Money(minorUnits: 2_000)),
                PurchaseFact(at: Self.at(-10), revenue: Money(minorUnits: 8_000)),
            ],
            redemptions: [Self.at(-30)], pointsEarned: 290, pointsRedeemed: 100, pointsExpired: 90, pointsHeld: 100,
            ratings: [4, 5, 3], tier: "silver", birthDate: CalendarDate("1990-06-15"),
            postcode: "Lindenstraße 3, 50674 Köln", consents: [.profiling])
        let figures = MemberFigures(history, at: Self.at(0))
        #expect(figures.recencyDays == 10)
        #expect(figures.frequency == 4, "the purchase 420 days ago is outside the 12 months")
        #expect(figures.monetary == Money(minorUnits: 20_000))
        #expect(figures.stage == .active, "10 days idle; gaps 320, 30, 30, 30 days, median 30, threshold 45")
        // 4 purchases × 50.00 average basket × 0.8 (active) = 160.00
        #expect(figures.predictedValue == Money(minorUnits: 16_000))
        #expect(figures.daysSinceRedemption == 30)
        #expect(figures.satisfaction == 4)
        #expect(figures.age == 35, "born 1990-06-15, on 2026-01-01")
        #expect(figures.ageBand == "35-44")
        #expect(figures.postcodeArea == "50")
        #expect(figures.pointsHeld == 100)
    }

    @Test func newIsTheFirst30Days() {
        #expect(MemberFigures(Self.member(enrolled: -29.9), at: Self.at(0)).stage == .new)
        #expect(MemberFigures(Self.member(enrolled: -30), at: Self.at(0)).stage == .active)
        #expect(
            MemberFigures(Self.member(enrolled: -10, purchases: [(-5, 100)]), at: Self.at(0)).stage == .new,
            "new whatever the member bought")
    }

    @Test func withoutAUsualIntervalAtRiskIsAfter60DaysAndLapsedFrom180() {
        let one = Self.member(purchases: [(0, 1_000)])
        #expect(MemberFigures(one, at: Self.at(60)).stage == .active)
        #expect(MemberFigures(one, at: Self.at(61)).stage == .atRisk)
        #expect(MemberFigures(one, at: Self.at(179)).stage == .atRisk)
        #expect(MemberFigures(one, at: Self.at(180)).stage == .lapsed)
        let never = Self.member(enrolled: -100)
        #expect(MemberFigures(never, at: Self.at(0)).stage == .atRisk, "enrolment is the last sign of life")
        #expect(MemberFigures(never, at: Self.at(0)).recencyDays == nil)
    }

    @Test func withAUsualIntervalAtRiskIsAfterOneAndAHalfOfIt() {
        // Every 20 days: at risk after 30 days idle.
        let regular = Self.member(purchases: [(0, 1_000), (20, 1_000), (40, 1_000), (60, 1_000)])
        #expect(MemberFigures(regular, at: Self.at(90)).stage == .active)
        #expect(MemberFigures(regular, at: Self.at(91)).stage == .atRisk)
        // Every 4 days: 1.5 intervals is 6, but never before 14.
        let frequent = Self.member(purchases: [(0, 1_000), (4, 1_000), (8, 1_000)])
        #expect(MemberFigures(frequent, at: Self.at(22)).stage == .active)
        #expect(MemberFigures(frequent, at: Self.at(23)).stage == .atRisk)
    }

    @Test func aPurchaseAfterLapsingWinsTheMemberBackFor90Days() {
        let back = Self.member(purchases: [(0, 1_000), (200, 1_000)])
        #expect(MemberFigures(back, at: Self.at(199)).stage == .lapsed, "before the purchase")
        #expect(MemberFigures(back, at: Self.at(200)).stage == .wonBack)
        #expect(MemberFigures(back, at: Self.at(289)).stage == .wonBack)
        #expect(MemberFigures(back, at: Self.at(290)).stage == .active)
        let notLapsed = Self.member(purchases: [(0, 1_000), (179, 1_000)])
        #expect(MemberFigures(notLapsed, at: Self.at(180)).stage != .wonBack)
    }

    @Test func frequencyAndMonetaryCountTheLast365Days() {
        let history = Self.member(purchases: [(0, 1_000), (1, 2_000), (365.5, 4_000)])
        let figures = MemberFigures(history, at: Self.at(365.5))
        #expect(figures.frequency == 2, "the purchase exactly 365 days before is out; later ones are in")
        #expect(figures.monetary == Money(minorUnits: 6_000))
        #expect(MemberFigures(history, at: Self.at(-1)).frequency == 0, "nothing after the moment counts")
    }

    @Test func quintilesGiveEqualValuesEqualScores() {
        let values = Dictionary(uniqueKeysWithValues: (1...10).map { (MemberID("m-\($0)"), Double($0)) })
        let scores = RFMScoring.quintiles(values)
        #expect((1...10).map { scores[MemberID("m-\($0)")]! } == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5])
        let tied = RFMScoring.quintiles([MemberID("a"): 1, MemberID("b"): 1, MemberID("c"): 1, MemberID("d"): 9])
        #expect(tied[MemberID("a")] == 1 && tied[MemberID("b")] == 1 && tied[MemberID("c")] == 1)
        #expect(tied[MemberID("d")] == 4, "three of four below: 1 + 15/4")
    }

    @Test func rfmScoresOnlyMembersActiveIn24Months() {
        var figures: [MemberID: MemberFigures] = [:]
        for (index, last) in [-10.0, -100, -800].enumerated() {
            figures[MemberID("m-\(index)")] = MemberFigures(
                Self.member(purchases: [(last, 1_000 * Int64(index + 1))]), at: Self.at(0))
        }
        let scores = RFMScoring.scores(figures)
        #expect(scores[MemberID("m-2")] == nil, "no purchase in 24 months")
        #expect(scores[MemberID("m-0")]?.recency == 3, "the most recent of two: one below it")
        #expect(scores[MemberID("m-1")]?.recency == 1)
        #expect(scores[MemberID("m-1")]?.monetary == 3)
        #expect(scores[MemberID("m-0")]?.frequency == 1, "equal frequencies, equal scores")
    }

    /// The cut points give every member of the population the score of the rank definition, and place a newcomer
    /// where it ranks.
    @Test func cutPointsAgreeWithTheRankDefinition() {
        var random = SeededRandom(seed: 23)
        for size in [1, 2, 3, 5, 7, 10, 31, 100] {
            let values = (0..<size).map { _ in Double(random.int(0..<12)) }
            for value in values + [-1, 5.5, 20] {
                let below = values.count { $0 < value }
                #expect(
                    RFMScoring.score(value, cuts: RFMScoring.cutPoints(of: values)) == min(5, 1 + (5 * below) / size),
                    "\(value) among \(values)")
            }
        }
    }

    @Test func calendarDatesAndAges() {
        #expect(CalendarDate.utc(Timestamp(millisecondsSince1970: 0)) == CalendarDate("1970-01-01"))
        #expect(CalendarDate.utc(Self.origin) == CalendarDate("2026-01-01"))
        #expect(CalendarDate.utc(Timestamp(millisecondsSince1970: 951_782_400_000)) == CalendarDate("2000-02-29"))
        #expect(CalendarDate.utc(Timestamp(millisecondsSince1970: -1)) == CalendarDate("1969-12-31"))
        #expect(CalendarDate.utc(Timestamp(millisecondsSince1970: 1_798_761_599_999)) == CalendarDate("2026-12-31"))
        let born = CalendarDate("2000-03-01")!
        #expect(born.years(until: CalendarDate("2026-02-28")!) == 25)
        #expect(born.years(until: CalendarDate("2026-03-01")!) == 26)
    }

    @Test(
        arguments: [
            ("Hauptstraße 5, 10115 Berlin", "10"), ("10115", "10"), ("Weg 123456", nil), ("Am Markt 1", nil),
            ("PLZ 1234 / 80331 München", "80"),
        ] as [(String, String?)])
    func postcodeAreas(address: String, area: String?) {
        let history = MemberHistory(
            memberID: MemberID("m"), enrolledAt: Self.origin, postcode: address)
        #expect(MemberFigures(history, at: Self.origin).postcodeArea == area)
    }
}
