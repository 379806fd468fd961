public import LoyaltyCore

/// "Does the programme work?" (docs/analysis.md, "Programme KPIs"): headline figures and a time series, read from
/// the programme's sums (``ProgrammeFigures``).
public struct ProgrammeReport: Sendable, Hashable, Codable {
    public enum Granularity: String, Sendable, Hashable, Codable, CaseIterable {
        case week
        case month
    }

    /// The first and last day the report covers (whole periods), and the period.
    public var from: CalendarDate
    public var to: CalendarDate
    public var by: Granularity
    /// The day the figures are as of (today in the programme's time zone).
    public var asOf: CalendarDate
    /// `maintained` (the sums the segment job keeps) or `raw events` (recomputed from every member's events).
    public var source: String
    public var currency: String
    /// The value of one point in the currency's minor units (the programme's `pointValue`).
    public var pointValue: Int
    public var headline: Headline
    public var periods: [Period]

    /// The figures of the whole range, and of now.
    public struct Headline: Sendable, Hashable, Codable {
        /// Members enrolled by now; with the `profiling` consent.
        public var members: Int64
        public var profiledMembers: Int64
        /// Members with a purchase in the last 30, 90 and 365 days.
        public var active30: Int64
        public var active90: Int64
        public var active365: Int64
        /// In the range: enrolments, points issued (earned), redeemed (spent), expired, returned (taken back by a
        /// return) and adjusted (by operators, net).
        public var enrolments: Int64
        public var pointsIssued: Int64
        public var pointsRedeemed: Int64
        public var pointsExpired: Int64
        public var pointsReturned: Int64
        public var pointsAdjusted: Int64
        /// Points forfeited, or paid out, by members whose data was erased (docs/privacy.md).
        public var pointsForfeited: Int64
        public var pointsPaidOut: Int64
        /// Redeemed ÷ issued and expired ÷ issued, in the range; nil when nothing was issued.
        public var redemptionRate: Double?
        public var breakageRate: Double?
        /// The same over the programme's whole life.
        public var lifetimeRedemptionRate: Double?
        public var lifetimeBreakageRate: Double?
        /// Points the members hold now (available and pending, net of what they owe): what the programme owes.
        public var liabilityPoints: Int64
        /// That in money (minor units): points × the point value.
        public var liabilityMinorUnits: Int64
        /// The part of the liability reserved for devices (allowances not yet spent), in points and money.
        public var reservedPoints: Int64
        public var reservedMinorUnits: Int64
        /// Points members owe after returns of points already spent.
        public var owedPoints: Int64
        /// The share of members who never redeemed; nil without members.
        public var neverRedeemedShare: Double?
        /// Members by tier now (`none`: no tier).
        public var tiers: [String: Int64]
        /// Tier changes in the range (`silver>gold`), as the segment job saw them.
        public var tierMovements: [String: Int64]
        /// Members (with the `profiling` consent) by lifecycle stage now.
        public var stages: [String: Int64]
        /// The mean of the rating answers (1 to 5) of members with the `profiling` consent; nil without one.
        public var satisfaction: Double?
    }

    /// One week or month.
    public struct Period: Sendable, Hashable, Codable {
        public var start: CalendarDate
        public var end: CalendarDate
        public var enrolments: Int64
        /// Members enrolled by the period's end.
        public var members: Int64
        /// Members who bought, and who redeemed, in the period.
        public var buyers: Int64
        public var redeemers: Int64
        public var purchases: Int64
        public var revenueMinorUnits: Int64
        public var pointsIssued: Int64
        public var pointsRedeemed: Int64
        public var pointsExpired: Int64
        public var pointsReturned: Int64
        public var pointsAdjusted: Int64
        /// Points forfeited by members whose data was erased (docs/privacy.md).
        public var pointsForfeited: Int64
        public var pointsPaidOut: Int64
        public var redemptionRate: Double?
        public var breakageRate: Double?
        /// What the programme owed at the period's end, in points and money.
        public var liabilityPoints: Int64
        public var liabilityMinorUnits: Int64
        /// Members by stage at the period's end, and the moves between stages in it (`active>at-risk`).
        public var stages: [String: Int64]
        public var stageFlows: [String: Int64]
        public var tierMovements: [String: Int64]
    }

    /// The report of `figures` over the whole periods from `from` to `to`.
    public init(
        _ figures: ProgrammeFigures, from: CalendarDate, to: CalendarDate, by: Granularity, asOf today: CalendarDate,
        source: String, currency: String, pointValue: Int
    ) {
        func start(_ date: CalendarDate) -> CalendarDate { by == .week ? date.weekStart : date.monthStart }
        func next(_ date: CalendarDate) -> CalendarDate {
            by == .week
                ? date.adding(days: 7)
                : CalendarDate(year: date.month == 12 ? date.year + 1 : date.year, month: date.month % 12 + 1, day: 1)!
        }
        self.from = start(from)
        self.by = by
        self.asOf = today
        self.source = source
        self.currency = currency
        self.pointValue = pointValue
        var bounds: [(CalendarDate, CalendarDate)] = []
        var cursor = self.from
        while cursor <= to {
            let following = next(cursor)
            bounds.append((cursor, following.adding(days: -1)))
            cursor = following
        }
        self.to = bounds.last?.1 ?? to
        let money = { (points: Int64) in points * Int64(pointValue) }
        // The days in order; the running sums carry what happened before the range.
        let days = figures.values.keys.filter { $0.hasPrefix("D") }.sorted()
        var running = [String: Int64]()
        var dayIndex = days.startIndex
        func sum(through end: CalendarDate) -> [String: Int64] {
            var inPeriod = [String: Int64]()
            let last = ProgrammeFigures.day(end)
            while dayIndex < days.endIndex, days[dayIndex] <= last {
                for (measure, value) in figures.values[days[dayIndex]] ?? [:] {
                    running[measure, default: 0] += value
                    inPeriod[measure, default: 0] += value
                }
                dayIndex += 1
            }
            return inPeriod
        }
        _ = sum(through: self.from.adding(days: -1))
        var total = [String: Int64]()
        periods = bounds.map { start, end in
            let flows = sum(through: end)
            for (measure, value) in flows { total[measure, default: 0] += value }
            let key = by == .week ? ProgrammeFigures.week(start) : ProgrammeFigures.month(start)
            let liability = Self.liability(running)
            return Period(
                start: start, end: end, enrolments: flows["enrolled"] ?? 0, members: running["enrolled"] ?? 0,
                buyers: figures[key, "buyers"], redeemers: figures[key, "redeemers"],
                purchases: flows["purchases"] ?? 0, revenueMinorUnits: flows["revenue"] ?? 0,
                pointsIssued: Self.issued(flows), pointsRedeemed: Self.redeemed(flows),
                pointsExpired: Self.expired(flows), pointsReturned: -(flows["reversal"] ?? 0),
                pointsAdjusted: flows["adjustment"] ?? 0, pointsForfeited: -(flows["forfeit"] ?? 0),
                pointsPaidOut: -(flows["payout"] ?? 0),
                redemptionRate: Self.rate(Self.redeemed(flows), flows),
                breakageRate: Self.rate(Self.expired(flows), flows), liabilityPoints: liability,
                liabilityMinorUnits: money(liability), stages: Self.stages(running),
                stageFlows: Self.prefixed("flow:", flows), tierMovements: Self.prefixed("tier:", flows))
        }
        // Now: every day, whatever the range.
        _ = sum(through: CalendarDate(year: 9999, month: 12, day: 31)!)
        let now = figures.values[ProgrammeFigures.now] ?? [:]
        func active(_ days: Int64) -> Int64 {
            let first = ProgrammeFigures.lastPurchase(today.adding(days: 1 - days))
            let last = ProgrammeFigures.lastPurchase(today)
            return figures.values.lazy.filter { $0.key.hasPrefix("L") && $0.key >= first && $0.key <= last }
                .reduce(0) { $0 + ($1.value["members"] ?? 0) }
        }
        let members = now["members"] ?? 0
        let liability = Self.liability(running)
        let ratings = now["rating_count"] ?? 0
        headline = Headline(
            members: members, profiledMembers: now["profiled"] ?? 0, active30: active(30), active90: active(90),
            active365: active(365), enrolments: total["enrolled"] ?? 0, pointsIssued: Self.issued(total),
            pointsRedeemed: Self.redeemed(total), pointsExpired: Self.expired(total),
            pointsReturned: -(total["reversal"] ?? 0), pointsAdjusted: total["adjustment"] ?? 0,
            pointsForfeited: -(total["forfeit"] ?? 0), pointsPaidOut: -(total["payout"] ?? 0),
            redemptionRate: Self.rate(Self.redeemed(total), total),
            breakageRate: Self.rate(Self.expired(total), total),
            lifetimeRedemptionRate: Self.rate(Self.redeemed(running), running),
            lifetimeBreakageRate: Self.rate(Self.expired(running), running), liabilityPoints: liability,
            liabilityMinorUnits: money(liability), reservedPoints: now["reserved"] ?? 0,
            reservedMinorUnits: money(now["reserved"] ?? 0), owedPoints: now["owed"] ?? 0,
            neverRedeemedShare: members == 0 ? nil : Double(now["never_redeemed"] ?? 0) / Double(members),
            tiers: Self.prefixed("tier:", now), tierMovements: Self.prefixed("tier:", total),
            stages: Self.stages(running),
            satisfaction: ratings == 0 ? nil : Double(now["rating_sum_milli"] ?? 0) / 1_000 / Double(ratings))
    }

    static func issued(_ flows: [String: Int64]) -> Int64 { flows["earn"] ?? 0 }
    static func redeemed(_ flows: [String: Int64]) -> Int64 { -(flows["spend"] ?? 0) }
    static func expired(_ flows: [String: Int64]) -> Int64 { -(flows["expire"] ?? 0) }

    static func rate(_ part: Int64, _ flows: [String: Int64]) -> Double? {
        let issued = issued(flows)
        return issued > 0 ? Double(part) / Double(issued) : nil
    }

    /// The liability is the sum of every movement of points (each kind's signed points).
    static func liability(_ running: [String: Int64]) -> Int64 {
        LedgerEntry.Kind.allCases.reduce(0) { $0 + (running[$1.rawValue] ?? 0) }
    }

    static func stages(_ running: [String: Int64]) -> [String: Int64] {
        var stages = [String: Int64]()
        for stage in LifecycleStage.allCases {
            stages[stage.rawValue] =
                (running["enter:\(stage.rawValue)"] ?? 0) - (running["leave:\(stage.rawValue)"] ?? 0)
        }
        return stages
    }

    static func prefixed(_ prefix: String, _ values: [String: Int64]) -> [String: Int64] {
        var found = [String: Int64]()
        for (key, value) in values where key.hasPrefix(prefix) && value != 0 {
            found[String(key.dropFirst(prefix.count))] = value
        }
        return found
    }
}
