internal import Foundation

/// When the scheduled jobs next have work for a member. The server keeps these times with every write of the member
/// (an index), so that a job run visits only the members that are due instead of every member of the programme.
public struct JobsDue: Hashable, Sendable {
    /// When the unlock job next has work: the earliest end of a pending lot's return window.
    public var unlock: Timestamp?
    /// When the expiry job next has work: a lot's expiry date, an allowance's end of hold, or a change of the tier
    /// that time alone makes (a lot leaving the qualification window, the end of the tier's retention).
    public var expire: Timestamp?

    /// Times as given.
    public init(unlock: Timestamp?, expire: Timestamp?) {
        self.unlock = unlock
        self.expire = expire
    }
}

extension MemberState {
    /// When the jobs next have work for this member, judged at `now` (the time of the write that changed it).
    ///
    /// Every time-driven change the jobs make is covered: `unlockPending` unlocks lots whose window ended and
    /// `expireLots` expires lots and lapses allowances; both refresh the tier, which changes with time alone when a
    /// qualifying lot leaves the window or the retention ends (``refreshTier(at:)`` catches up on the moments in
    /// between, so a review that runs late decides as one on time would).
    public func jobsDue(at now: Timestamp) -> JobsDue {
        var expire = ledger.nextExpiry
        for allowance in allowances.values where allowance.status == .held {
            // Lapsed strictly after the hold: due a millisecond later.
            expire = Self.earlier(expire, allowance.holdUntil.adding(.milliseconds(1)))
        }
        if let review = nextTierReview(at: now) {
            expire = Self.earlier(expire, review)
        }
        return JobsDue(unlock: ledger.nextUnlock, expire: expire)
    }

    /// The next time the tier (or its count of qualifying points) can change with no event: just after a qualifying
    /// lot's last moment inside the window, or when the current tier's retention ends.
    func nextTierReview(at now: Timestamp) -> Timestamp? {
        var review: Timestamp?
        // The lot that leaves next is the earliest earned of those still inside (leaving is monotonic in the earning
        // time); calendar arithmetic only for the few near `now`, not for every lot on every write.
        let inside = qualifyingLots.filter { latestLastMoment(of: $0) >= now }.sorted { $0.earnedAt < $1.earnedAt }
        for lot in inside {
            let leaves = lastMomentInWindow(of: lot).adding(.milliseconds(1))
            if leaves > now {
                review = leaves
                break
            }
        }
        if let tier, program.tiers.index(of: tier.tierID) > 0 {
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = program.zone
            if let retained = calendar.date(
                byAdding: .month, value: program.tiers.retentionMonths, to: tier.since.date),
                Timestamp(retained) > now
            {
                review = Self.earlier(review, Timestamp(retained))
            }
        }
        return review
    }

    /// The last moments inside the qualification window of qualifying lots, strictly between `start` and `end`, in
    /// order: the moments after which the qualifying points drop.
    func tierInstants(after start: Timestamp, before end: Timestamp) -> [Timestamp] {
        var instants: Set<Timestamp> = []
        for lot in qualifyingLots {
            // Bounds first (a month is 28 to 31 days): most lots leave far from (start, end) and need no calendar.
            guard latestLastMoment(of: lot) > start, earliestLastMoment(of: lot) < end else { continue }
            let last = lastMomentInWindow(of: lot)
            if last > start && last < end { instants.insert(last) }
        }
        return instants.sorted()
    }

    /// The lots that count towards the tier.
    var qualifyingLots: [EarnLot] { ledger.lots.values.filter { $0.isQualifying && $0.amount > $0.revoked } }

    /// Bounds of ``lastMomentInWindow(of:)`` without the calendar: the window's months are 28 to 31 days, and a
    /// day's margin covers a change of the clock.
    func earliestLastMoment(of lot: EarnLot) -> Timestamp {
        lot.earnedAt.adding(.days(Int64(28 * program.tiers.windowMonths) - 1))
    }

    func latestLastMoment(of lot: EarnLot) -> Timestamp {
        lot.earnedAt.adding(.days(Int64(31 * program.tiers.windowMonths) + 2))
    }

    /// The last moment at which a lot counts towards the tier: the latest `t` with `earnedAt >= windowStart(t)`.
    /// Calendar months give it directly but near a month's end, where it is searched for.
    func lastMomentInWindow(of lot: EarnLot) -> Timestamp {
        func counts(_ time: Timestamp) -> Bool { lot.earnedAt >= program.qualificationWindowStart(at: time) }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = program.zone
        let guess =
            calendar.date(byAdding: .month, value: program.tiers.windowMonths, to: lot.earnedAt.date).map(
                Timestamp.init)
            ?? lot.earnedAt
        if counts(guess) && !counts(guess.adding(.milliseconds(1))) { return guess }
        // Largest counting moment in [low, high): low counts, high does not.
        var low = lot.earnedAt.millisecondsSince1970
        var high = guess.adding(.days(4)).millisecondsSince1970
        while counts(Timestamp(millisecondsSince1970: high)) { high += 86_400_000 * 31 }
        while high - low > 1 {
            let middle = low + (high - low) / 2
            if counts(Timestamp(millisecondsSince1970: middle)) { low = middle } else { high = middle }
        }
        return Timestamp(millisecondsSince1970: low)
    }

    static func earlier(_ a: Timestamp?, _ b: Timestamp) -> Timestamp { a.map { Swift.min($0, b) } ?? b }
}
