import Foundation
import LoyaltyAnalysis
import LoyaltyCore
import Testing

/// A member's contribution to the programme's sums, the stage walk it records, and the report read from the sums.
@Suite struct ProgrammeFiguresTests {
    static let utc = TimeZone(identifier: "UTC")!
    static let at = MemberFiguresTests.at

    @Test func calendarArithmetic() {
        let date = CalendarDate("2026-12-07")!  // a Monday
        #expect(date.weekStart == date)
        #expect(CalendarDate("2026-12-13")!.weekStart == date, "Sunday ends the week")
        #expect(CalendarDate("2026-12-14")!.weekStart == CalendarDate("2026-12-14"))
        #expect(CalendarDate("2027-01-01")!.weekStart == CalendarDate("2026-12-28"), "a week across the year")
        #expect(CalendarDate("1970-01-01")!.dayNumber == 0)
        #expect(CalendarDate("1969-12-31")!.dayNumber == -1)
        #expect(CalendarDate(dayNumber: date.dayNumber) == date)
        #expect(CalendarDate("2024-02-28")!.adding(days: 1) == CalendarDate("2024-02-29"), "a leap day")
        #expect(CalendarDate("2026-03-31")!.monthStart == CalendarDate("2026-03-01"))
    }

    /// Enrolled on day -100 with purchases on days -90, -60 and -30: new for 30 days, active after the purchase on
    /// day -90 ... new ends at day -70 (enrolment + 30); the usual interval is 30 days, at risk after 45 idle days.
    @Test func theStageWalkRecordsEveryChangeAtItsMoment() {
        let history = MemberFiguresTests.member(
            enrolled: -300, purchases: [(-290, 1_000), (-260, 1_000), (-230, 1_000), (-20, 2_000)])
        let changes = MemberFigures.stageChanges(history, through: Self.at(0), rules: AnalysisRules())
        let walk = changes.map { "\($0.from?.rawValue ?? "-")>\($0.to.rawValue)" }
        #expect(walk == ["->new", "new>active", "active>at-risk", "at-risk>lapsed", "lapsed>won-back"])
        // new → active when the 30 days since enrolment pass (day -270); at risk 45 days after the last purchase
        // (more than 1.5 × 30: day -230 + 46); lapsed 180 days after it (day -50); won back at the purchase.
        #expect(changes[1].at == Self.at(-270))
        #expect(changes[2].at == Self.at(-184))
        #expect(changes[3].at == Self.at(-50))
        #expect(changes[4].at == Self.at(-20))
        #expect(MemberFigures.stage(history, at: Self.at(0), rules: AnalysisRules()) == .wonBack)
        #expect(MemberFigures.stageChanges(history, through: Self.at(-301), rules: AnalysisRules()).isEmpty)
    }

    static func input(profiled: Bool) -> MemberContributionInput {
        let history = MemberHistory(
            memberID: MemberID("m-1"), enrolledAt: at(-10),
            purchases: [PurchaseFact(at: at(-10), revenue: Money(minorUnits: 4_250))], ratings: [4, 5],
            tier: "silver", consents: profiled ? [.profiling] : [])
        let entries = [
            LedgerEntry(id: EntryID("e1"), kind: .earn, at: at(-10), available: 0, pending: 42),
            LedgerEntry(id: EntryID("e2"), kind: .unlock, at: at(-3), available: 42, pending: -42),
            LedgerEntry(id: EntryID("e3"), kind: .spend, at: at(-2), available: -30),
            LedgerEntry(id: EntryID("e4"), kind: .adjustment, at: at(1), available: 5),  // after now: not yet
        ]
        return MemberContributionInput(
            history: history, entries: entries, reserved: 7, owed: 0,
            tierChanges: [TierChange(from: "classic", to: "silver", at: at(-2))], profiled: profiled)
    }

    @Test func aMembersContribution() {
        // Day 0 is 2026-01-01 (a Thursday); day -10 is 2025-12-22, a Monday.
        let figures = ProgrammeFigures.contribution(
            of: Self.input(profiled: true), at: Self.at(0), rules: AnalysisRules(), zone: Self.utc)
        #expect(
            figures.values["D2025-12-22"] == [
                "enrolled": 1, "earn": 42, "purchases": 1, "revenue": 4_250, "enter:new": 1,
            ])
        #expect(figures["D2025-12-29", "unlock"] == 0, "an unlock moves points from pending to available: no change")
        #expect(figures.values["D2025-12-30"] == ["spend": -30, "tier:classic>silver": 1])
        #expect(figures["D2026-01-02", "adjustment"] == 0, "a movement after now is not counted yet")
        #expect(figures.values["W2025-12-22"] == ["buyers": 1])
        #expect(figures.values["W2025-12-29"] == ["redeemers": 1])
        #expect(figures.values["M2025-12"] == ["buyers": 1, "redeemers": 1])
        #expect(figures.values["L2025-12-22"] == ["members": 1])
        #expect(
            figures.values["all"] == [
                "members": 1, "reserved": 7, "tier:silver": 1, "profiled": 1, "rating_count": 2,
                "rating_sum_milli": 9_000,
            ])
        let private_ = ProgrammeFigures.contribution(
            of: Self.input(profiled: false), at: Self.at(0), rules: AnalysisRules(), zone: Self.utc)
        #expect(private_["D2025-12-22", "enter:new"] == 0, "no stage without the profiling consent")
        #expect(private_["all", "rating_count"] == 0 && private_["all", "profiled"] == 0)
        #expect(private_["D2025-12-22", "earn"] == 42, "the points count: the programme owes them")
        // In Berlin a purchase at 23:30 UTC is on the next day.
        var late = Self.input(profiled: false)
        late.history.enrolledAt = Self.at(-10 + 23.5 / 24)
        let berlin = ProgrammeFigures.contribution(
            of: late, at: Self.at(0), rules: AnalysisRules(), zone: TimeZone(identifier: "Europe/Berlin")!)
        #expect(berlin["D2025-12-23", "enrolled"] == 1)
    }

    @Test func theChangeOfAContributionMovesTheSumsByTheDifference() {
        var sums = ProgrammeFigures(["D2026-01-01": ["earn": 100], "all": ["members": 5]])
        let old = ProgrammeFigures(["D2026-01-01": ["earn": 40], "all": ["members": 1]])
        let new = ProgrammeFigures(["D2026-01-01": ["earn": 40, "spend": -10], "all": ["members": 1]])
        sums.add(ProgrammeFigures.change(from: old, to: new))
        #expect(sums == ProgrammeFigures(["D2026-01-01": ["earn": 100, "spend": -10], "all": ["members": 5]]))
        sums.add(ProgrammeFigures.change(from: new, to: ProgrammeFigures()))
        #expect(sums == ProgrammeFigures(["D2026-01-01": ["earn": 60], "all": ["members": 4]]), "zeros vanish")
    }

    @Test func theStoredFormRoundTripsAndIsTheSameForTheSameFigures() throws {
        let figures = ProgrammeFigures.contribution(
            of: Self.input(profiled: true), at: Self.at(0), rules: AnalysisRules(), zone: Self.utc)
        #expect(ProgrammeFigures(storedForm: figures.storedForm) == figures)
        var rebuilt = ProgrammeFigures()
        for (period, measures) in figures.values.sorted(by: { $0.key > $1.key }) {
            for (measure, value) in measures { rebuilt[period, measure] = value }
        }
        #expect(rebuilt.storedForm == figures.storedForm, "the bytes do not depend on the order of insertion")
        #expect(ProgrammeFigures(storedForm: Data("D2026-01-01 earn twelve".utf8)) == nil)
        #expect(ProgrammeFigures(storedForm: Data()) == ProgrammeFigures())
        let negative = ProgrammeFigures(["D2026-01-01": ["spend": -30]])
        #expect(ProgrammeFigures(storedForm: negative.storedForm) == negative)
    }

    @Test func theReportReadsTheSums() throws {
        let sums = ProgrammeFigures([
            // Before the range: counted in the liability and the members, not in the range's flows.
            "D2025-12-15": ["enrolled": 2, "earn": 500, "enter:new": 2],
            "D2026-01-05": ["earn": 200, "spend": -100, "flow:new>active": 1, "leave:new": 1, "enter:active": 1],
            "D2026-01-20": ["expire": -50, "reversal": -10, "adjustment": 5, "purchases": 3, "revenue": 12_345],
            "D2026-02-03": ["enrolled": 1, "earn": 100, "enter:new": 1],
            "M2026-01": ["buyers": 2, "redeemers": 1],
            "L2026-01-20": ["members": 1], "L2025-12-15": ["members": 1],
            "all": ["members": 3, "never_redeemed": 2, "reserved": 40, "tier:none": 3, "profiled": 3],
        ])
        let report = ProgrammeReport(
            sums, from: try #require(CalendarDate("2026-01-10")), to: try #require(CalendarDate("2026-02-10")),
            by: .month, asOf: try #require(CalendarDate("2026-02-10")), source: "maintained", currency: "EUR",
            pointValue: 2)
        #expect(report.from == CalendarDate("2026-01-01"), "whole months")
        #expect(report.to == CalendarDate("2026-02-28"))
        #expect(report.periods.count == 2)
        let january = report.periods[0]
        #expect(january.members == 2 && january.enrolments == 0)
        #expect(january.pointsIssued == 200 && january.pointsRedeemed == 100 && january.pointsExpired == 50)
        #expect(january.pointsReturned == 10 && january.pointsAdjusted == 5)
        #expect(january.liabilityPoints == 500 + 200 - 100 - 50 - 10 + 5)
        #expect(january.liabilityMinorUnits == 545 * 2)
        #expect(january.redemptionRate == 0.5 && january.breakageRate == 0.25)
        #expect(january.buyers == 2 && january.redeemers == 1 && january.revenueMinorUnits == 12_345)
        #expect(january.stages == ["new": 1, "active": 1, "at-risk": 0, "lapsed": 0, "won-back": 0])
        #expect(january.stageFlows == ["new>active": 1])
        let february = report.periods[1]
        #expect(february.members == 3 && february.liabilityPoints == 645 && february.buyers == 0)
        #expect(february.redemptionRate == 0 && february.breakageRate == 0)
        let head = report.headline
        #expect(head.pointsIssued == 300 && head.pointsRedeemed == 100 && head.enrolments == 1)
        #expect(head.lifetimeRedemptionRate == 100.0 / 800)
        #expect(head.liabilityPoints == 645 && head.liabilityMinorUnits == 1_290 && head.reservedMinorUnits == 80)
        #expect(head.active30 == 1 && head.active90 == 2, "30 days to 2026-02-10 begin on 2026-01-12")
        #expect(head.neverRedeemedShare == 2.0 / 3)
        #expect(head.satisfaction == nil)
        #expect(head.tiers == ["none": 3])
        let empty = ProgrammeReport(
            ProgrammeFigures(), from: try #require(CalendarDate("2026-01-01")),
            to: try #require(CalendarDate("2026-01-14")), by: .week, asOf: try #require(CalendarDate("2026-01-14")),
            source: "maintained", currency: "EUR", pointValue: 1)
        #expect(
            empty.periods.map(\.start) == [
                CalendarDate("2025-12-29"), CalendarDate("2026-01-05"), CalendarDate("2026-01-12"),
            ])
        #expect(empty.headline.redemptionRate == nil && empty.headline.neverRedeemedShare == nil)
    }
}
