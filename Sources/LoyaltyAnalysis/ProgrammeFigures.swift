public import Foundation
public import LoyaltyCore

/// The programme's figures as sums (docs/analysis.md, "Programme KPIs"): for each period key a value per measure.
/// Every figure of the programme report is read from these sums, and each member contributes an amount to each
/// (``contribution(of:)``), so the programme's figures are the sum of its members' contributions. The segment
/// job keeps the sums up to date by adding the difference between a member's new contribution and the one it
/// stored before; a check recomputes them from the raw events and compares.
///
/// Period keys: `D2026-03-05` (a day's flows), `W2026-03-02` (a week, by its Monday: members who bought or
/// redeemed in it), `M2026-03` (a month, the same), `L2026-03-05` (members whose last purchase was that day) and
/// `all` (counts of members now). Days are calendar days in the programme's time zone.
public struct ProgrammeFigures: Sendable, Hashable {
    /// Period key → measure → value.
    public var values: [String: [String: Int64]]

    public init(_ values: [String: [String: Int64]] = [:]) { self.values = values }

    public subscript(period: String, measure: String) -> Int64 {
        get { values[period]?[measure] ?? 0 }
        set {
            values[period, default: [:]][measure] = newValue == 0 ? nil : newValue
            if values[period]?.isEmpty == true { values[period] = nil }
        }
    }

    /// Adds `other` times `sign` (1 or -1).
    public mutating func add(_ other: ProgrammeFigures, times sign: Int64 = 1) {
        for (period, measures) in other.values {
            for (measure, value) in measures { self[period, measure] += sign * value }
        }
    }

    /// What to add to the sums when a member's contribution changes from `old` to `new`.
    public static func change(from old: ProgrammeFigures?, to new: ProgrammeFigures) -> ProgrammeFigures {
        var delta = new
        if let old { delta.add(old, times: -1) }
        return delta
    }

    public var isEmpty: Bool { values.isEmpty }

    /// A compact stored form (a line `period measure value` per sum, sorted, so that equal figures have equal bytes):
    /// a member's contribution is stored at every run of the segment job and read back when it changed, and JSON
    /// cost a quarter of the job's time.
    public var storedForm: Data {
        var lines: [String] = []
        for (period, measures) in values {
            for (measure, value) in measures { lines.append("\(period) \(measure) \(value)") }
        }
        return Data(lines.sorted().joined(separator: "\n").utf8)
    }

    /// Figures from their stored form; nil if it is not one.
    public init?(storedForm data: Data) {
        self.init()
        for line in data.split(separator: UInt8(ascii: "\n")) {
            let parts = line.split(separator: UInt8(ascii: " "))
            guard parts.count == 3, let value = Int64(String(decoding: parts[2], as: UTF8.self)) else { return nil }
            self[String(decoding: parts[0], as: UTF8.self), String(decoding: parts[1], as: UTF8.self)] += value
        }
    }

    static func day(_ date: CalendarDate) -> String { "D\(date)" }
    static func week(_ date: CalendarDate) -> String { "W\(date.weekStart)" }
    static func month(_ date: CalendarDate) -> String { "M\(date.description.prefix(7))" }
    static func lastPurchase(_ date: CalendarDate) -> String { "L\(date)" }
    static let now = "all"
}

/// What a member's contribution is computed from: the raw events of one member.
public struct MemberContributionInput: Sendable {
    public var history: MemberHistory
    /// The member's ledger movements.
    public var entries: [LedgerEntry]
    /// Points reserved for the member's devices and not yet spent (held allowances).
    public var reserved: Int
    /// Points the member owes (a return of points already spent).
    public var owed: Int
    /// Tier changes the segment job saw, oldest first.
    public var tierChanges: [TierChange]
    /// Whether the member gave the `profiling` consent (stages and satisfaction count only those who did).
    public var profiled: Bool

    public init(
        history: MemberHistory, entries: [LedgerEntry], reserved: Int, owed: Int, tierChanges: [TierChange],
        profiled: Bool
    ) {
        self.history = history
        self.entries = entries
        self.reserved = reserved
        self.owed = owed
        self.tierChanges = tierChanges
        self.profiled = profiled
    }
}

/// A change of a member's tier, as the segment job saw it (`nil`: no tier).
public struct TierChange: Sendable, Hashable, Codable {
    public var from: String?
    public var to: String?
    public var at: Timestamp

    public init(from: String?, to: String?, at: Timestamp) {
        self.from = from
        self.to = to
        self.at = at
    }
}

extension ProgrammeFigures {
    /// One member's contribution at `now` (docs/analysis.md, "Programme KPIs"): the day's ledger movements by
    /// kind (signed points), enrolment, purchases and revenue, stage entries and exits, tier changes; the weeks and
    /// months the member bought or redeemed in; the day of the last purchase; and counts of members now.
    public static func contribution(
        of input: MemberContributionInput, at now: Timestamp, rules: AnalysisRules, zone: TimeZone
    ) -> ProgrammeFigures {
        var figures = ProgrammeFigures()
        func date(_ time: Timestamp) -> CalendarDate {
            let offset = Int64(zone.secondsFromGMT(for: time.date)) * 1_000
            return CalendarDate(dayNumber: (time.millisecondsSince1970 + offset).floorDividedByDay)
        }
        let history = input.history
        figures[day(date(history.enrolledAt)), "enrolled"] += 1
        var redeemed = false
        for entry in input.entries where entry.at <= now && entry.points != 0 {
            let when = date(entry.at)
            figures[day(when), entry.kind.rawValue] += Int64(entry.points)
            if entry.kind == .spend {
                redeemed = true
                figures[week(when), "redeemers"] = 1
                figures[month(when), "redeemers"] = 1
            }
        }
        var last: CalendarDate?
        for purchase in history.purchases where purchase.at <= now {
            let when = date(purchase.at)
            figures[day(when), "purchases"] += 1
            figures[day(when), "revenue"] += purchase.revenue.minorUnits
            figures[week(when), "buyers"] = 1
            figures[month(when), "buyers"] = 1
            last = when
        }
        if let last { figures[lastPurchase(last), "members"] = 1 }
        for change in input.tierChanges where change.at <= now {
            figures[day(date(change.at)), "tier:\(change.from ?? "none")>\(change.to ?? "none")"] += 1
        }
        figures[Self.now, "members"] = 1
        figures[Self.now, "never_redeemed"] = redeemed ? 0 : 1
        figures[Self.now, "owed"] = Int64(input.owed)
        figures[Self.now, "reserved"] = Int64(input.reserved)
        figures[Self.now, "tier:\(history.tier ?? "none")"] = 1
        guard input.profiled else { return figures }
        figures[Self.now, "profiled"] = 1
        if !history.ratings.isEmpty {
            figures[Self.now, "rating_count"] = Int64(history.ratings.count)
            figures[Self.now, "rating_sum_milli"] = Int64((history.ratings.reduce(0, +) * 1_000).rounded())
        }
        for (at, from, to) in MemberFigures.stageChanges(history, through: now, rules: rules) {
            let key = day(date(at))
            if let from {
                figures[key, "leave:\(from.rawValue)"] += 1
                figures[key, "flow:\(from.rawValue)>\(to.rawValue)"] += 1
            }
            figures[key, "enter:\(to.rawValue)"] += 1
        }
        return figures
    }
}

extension Int64 {
    /// Milliseconds since the epoch to a day number (rounded towards the past).
    var floorDividedByDay: Int64 {
        let (quotient, remainder) = quotientAndRemainder(dividingBy: 86_400_000)
        return remainder < 0 ? quotient - 1 : quotient
    }
}

extension MemberFigures {
    /// When the member's stage next changes with time alone, with no new purchase (nil if never): the stage is
    /// constant between the moments its thresholds pass, so the first of those at which it differs is the answer.
    public static func nextStageChange(
        _ history: MemberHistory, at now: Timestamp, rules: AnalysisRules
    )
        -> Timestamp?
    {
        let stage = stage(history, at: now, rules: rules)
        let purchases = history.purchases.filter { $0.at <= now }.map(\.at)
        let last = purchases.last ?? history.enrolledAt
        let atRisk = Int64(atRiskThreshold(purchases, rules: rules).rounded(.down)) + 1
        let moments = [
            history.enrolledAt.adding(.days(Int64(rules.newDays))), last.adding(.days(atRisk)),
            last.adding(.days(Int64(rules.lapsedDays))), last.adding(.days(Int64(rules.wonBackDays))),
        ]
        return moments.filter { $0 > now }.sorted().first { Self.stage(history, at: $0, rules: rules) != stage }
    }

    /// The member's stages from enrolment to `end`: the first (from nil) at enrolment, then each change with its
    /// moment, at a purchase or when a threshold passed.
    public static func stageChanges(
        _ history: MemberHistory, through end: Timestamp, rules: AnalysisRules
    )
        -> [(at: Timestamp, from: LifecycleStage?, to: LifecycleStage)]
    {
        guard history.enrolledAt <= end else { return [] }
        var time = history.enrolledAt
        var current = stage(history, at: time, rules: rules)
        var changes: [(at: Timestamp, from: LifecycleStage?, to: LifecycleStage)] = [(time, nil, current)]
        var purchases = history.purchases.map(\.at).filter { $0 > time }[...]
        while true {
            let next = [purchases.first, nextStageChange(history, at: time, rules: rules)].compactMap { $0 }.min()
            guard let next, next <= end else { break }
            while let first = purchases.first, first <= next { purchases.removeFirst() }
            let stage = stage(history, at: next, rules: rules)
            if stage != current { changes.append((next, current, stage)) }
            current = stage
            time = next
        }
        return changes
    }
}
