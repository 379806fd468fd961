internal import Foundation

/// One rung of the tier ladder.
public struct Tier: Hashable, Sendable, Codable {
    /// Stable key, e.g. `silver`.
    public var id: String
    /// Name shown to members.
    public var name: String
    /// Qualifying points within the rolling window needed to reach this tier.
    public var threshold: Int

    /// Creates a tier.
    public init(id: String, name: String, threshold: Int) {
        self.id = id
        self.name = name
        self.threshold = threshold
    }
}

/// How tiers are reached and lost.
///
/// **Upgrade** is immediate: as soon as the qualifying points earned within the rolling window reach a higher
/// threshold. **Downgrade** is never immediate: a tier, once reached, is kept for `retentionMonths` after it
/// was reached (or last re-qualified for). When that time is up and the points no longer qualify, the member
/// moves down: to the tier the points do qualify for (`balanceBased`) or one step (`oneDown`), and the new
/// tier is again kept for the retention time.
public struct TierRules: Hashable, Sendable, Codable {
    /// How a member moves down once the retention time is up.
    public enum DowngradePolicy: String, Hashable, Sendable, Codable {
        /// Straight to the tier the qualifying points support.
        case balanceBased
        /// One step down at a time.
        case oneDown
    }

    /// The ladder, lowest first; the first tier has threshold 0.
    public var ladder: [Tier]
    /// Length of the rolling window that qualifying points are counted in.
    public var windowMonths: Int
    /// How long a reached tier is kept before it can be lost.
    public var retentionMonths: Int
    /// How a member moves down.
    public var downgrade: DowngradePolicy

    /// Creates tier rules.
    public init(ladder: [Tier], windowMonths: Int, retentionMonths: Int, downgrade: DowngradePolicy) {
        self.ladder = ladder
        self.windowMonths = windowMonths
        self.retentionMonths = retentionMonths
        self.downgrade = downgrade
    }

    func validate(program: String) throws(LoyaltyError) {
        guard let first = ladder.first, first.threshold == 0 else {
            throw LoyaltyError(.invalidProgram, "programme '\(program)': the first tier must have threshold 0")
        }
        for (lower, higher) in zip(ladder, ladder.dropFirst()) where higher.threshold <= lower.threshold {
            throw LoyaltyError(
                .invalidProgram,
                "programme '\(program)': tier '\(higher.id)' must have a higher threshold than '\(lower.id)'")
        }
        guard Set(ladder.map(\.id)).count == ladder.count else {
            throw LoyaltyError(.invalidProgram, "programme '\(program)': tier ids must be unique")
        }
        guard (1...60).contains(windowMonths), (0...60).contains(retentionMonths) else {
            throw LoyaltyError(
                .invalidProgram, "programme '\(program)': windowMonths must be 1...60, retentionMonths 0...60")
        }
    }

    /// The highest tier whose threshold the qualifying points reach.
    public func tier(forQualifying points: Int) -> Tier {
        ladder.last { $0.threshold <= points } ?? ladder[0]
    }

    func index(of tierID: String) -> Int { ladder.firstIndex { $0.id == tierID } ?? 0 }
}

/// A member's current tier and since when it is held.
public struct TierStatus: Hashable, Sendable, Codable {
    /// The tier's id.
    public var tierID: String
    /// When the tier was reached or last re-qualified for; retention counts from here.
    public var since: Timestamp
    /// Qualifying points in the rolling window at the last evaluation.
    public var qualifyingPoints: Int

    /// Creates a tier status.
    public init(tierID: String, since: Timestamp, qualifyingPoints: Int) {
        self.tierID = tierID
        self.since = since
        self.qualifyingPoints = qualifyingPoints
    }
}

extension Program {
    /// The start of the rolling qualification window that ends at `now`.
    public func qualificationWindowStart(at now: Timestamp) -> Timestamp {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        return Timestamp(calendar.date(byAdding: .month, value: -tiers.windowMonths, to: now.date)!)
    }

    /// Re-evaluates a tier at `now` given the qualifying points in the window ending now.
    public func evaluateTier(current: TierStatus?, qualifyingPoints: Int, at now: Timestamp) -> TierStatus {
        let rules = tiers
        let earned = rules.tier(forQualifying: qualifyingPoints)
        guard let current else { return TierStatus(tierID: earned.id, since: now, qualifyingPoints: qualifyingPoints) }
        let currentIndex = rules.index(of: current.tierID)
        let earnedIndex = rules.index(of: earned.id)
        if earnedIndex >= currentIndex {
            // Reaching (or holding) the tier on points re-qualifies it: retention restarts.
            let since = earnedIndex == currentIndex && earnedIndex == 0 ? current.since : now
            return TierStatus(tierID: earned.id, since: since, qualifyingPoints: qualifyingPoints)
        }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        let retainedUntil = Timestamp(
            calendar.date(byAdding: .month, value: rules.retentionMonths, to: current.since.date)!)
        guard now >= retainedUntil else {
            return TierStatus(tierID: current.tierID, since: current.since, qualifyingPoints: qualifyingPoints)
        }
        let newIndex = rules.downgrade == .oneDown ? currentIndex - 1 : earnedIndex
        return TierStatus(tierID: rules.ladder[newIndex].id, since: now, qualifyingPoints: qualifyingPoints)
    }
}
