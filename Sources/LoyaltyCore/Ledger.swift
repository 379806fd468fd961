/// A member's points: the lots earned and the points owed, with the operations that move them.
///
/// Every operation returns the ``LedgerEntry`` movements it made; the derived figures (``available``,
/// ``pendingPoints``, ``expiring(within:at:)``, ``qualifyingPoints(from:through:)``) are functions of the lots,
/// and always equal the sums of the movements. The balance figures are kept as running totals, updated by every
/// change to a lot (the ledger's own operations are the only writers), so that a screen reads them without
/// walking the lots. Points owed arise only from a server-side reversal of points the member had already spent;
/// while any are owed, no lot is active with points left, and the next lot to become spendable pays them off first.
public struct Ledger: Hashable, Sendable, Codable {
    /// Every lot, by id.
    public private(set) var lots: LotTable
    /// Points owed: revoked by a return after they were spent.
    public private(set) var owed: Int
    /// The running totals over ``lots``.
    private var totals = LotTotals()

    /// An empty ledger.
    public init() {
        self.lots = LotTable()
        self.owed = 0
    }

    /// A ledger made from stored lots and the points owed (as a store or a pull delivers them).
    public init(lots: some Sequence<EarnLot>, owed: Int) {
        self.init()
        for lot in lots { store(lot) }
        self.owed = owed
    }

    private enum CodingKeys: String, CodingKey {
        case lots, owed
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            lots: try container.decode([LotID: EarnLot].self, forKey: .lots).values,
            owed: try container.decode(Int.self, forKey: .owed))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(
            Dictionary(uniqueKeysWithValues: lots.values.lazy.map { ($0.id, $0) }), forKey: .lots)
        try container.encode(owed, forKey: .owed)
    }

    /// Replaces or adds a lot exactly as the server sent it.
    public mutating func store(_ lot: EarnLot) { put(lot, for: lot.id) }

    /// Drops a lot the server deleted.
    public mutating func remove(_ id: LotID) { put(nil, for: id) }

    /// Makes room for `count` lots in all (a store that knows how many it is about to load).
    public mutating func reserveCapacity(lots count: Int) { lots.reserveCapacity(count) }

    /// Sets the owed points exactly as the server sent them.
    public mutating func setOwed(_ points: Int) { owed = points }

    /// The one place a lot changes: the running totals follow it.
    private mutating func put(_ lot: EarnLot?, for id: LotID) {
        if let old = lots.put(lot, for: id) { totals.count(old, sign: -1) }
        if let lot { totals.count(lot, sign: 1) }
    }

    /// Changes one lot in place; the running totals follow it.
    private mutating func update(_ id: LotID, _ change: (inout EarnLot) -> Void) {
        guard var lot = lots[id] else { preconditionFailure("lot \(id) is not in the ledger") }
        change(&lot)
        put(lot, for: id)
    }

    // MARK: Derived figures

    /// Spendable points: what is left in active lots, less what is owed. Negative only while points are owed.
    public var available: Int { totals.active - owed }

    /// Points earned but still within the return window.
    public var pendingPoints: Int { totals.pending }

    /// Active points that expire within `span` after `now`, summed per expiry date, soonest first.
    public func expiring(within span: TimeSpan, at now: Timestamp) -> [ExpiringPoints] {
        let horizon = now.adding(span)
        return totals.expiryDates.prefix { $0 <= horizon }.map {
            ExpiringPoints(amount: totals.expiring[$0]!, expiresAt: $0)
        }
    }

    /// Points earned from qualifying causes in `[start, end]`, less what returns revoked from them.
    public func qualifyingPoints(from start: Timestamp, through end: Timestamp) -> Int {
        lots.values.reduce(0) { sum, lot in
            lot.isQualifying && lot.earnedAt >= start && lot.earnedAt <= end ? sum + lot.amount - lot.revoked : sum
        }
    }

    /// Points ever earned, less revocations: the lifetime figure.
    public var lifetimeEarned: Int { totals.lifetime }

    /// Whether a lot that still holds points, or is still pending, is past its expiry date at `now`: the expiry
    /// job has work to do for this ledger. Answered from the running totals, without walking the lots.
    public func hasExpiryDue(at now: Timestamp) -> Bool { totals.hasExpiryDue(at: now) }

    /// The earliest expiry date of a lot that still holds points or is still pending: when the expiry job next has
    /// work for this ledger (nil: never, as things stand).
    public var nextExpiry: Timestamp? {
        [totals.expiryDates.first, totals.pendingExpiryDates.first].compactMap { $0 }.min()
    }

    /// When the unlock job next has work for this ledger: the earliest end of a pending lot's return window (a pending
    /// lot without one is due at once).
    public var nextUnlock: Timestamp? {
        lots.values.lazy.filter { $0.state == .pending }.map { $0.pendingUntil ?? $0.earnedAt }.min()
    }

    /// Points that the expiry job took from lots at or after `time`: what a spend judged at `time` could still
    /// have used, had it reached the server before the job ran.
    public func pointsExpired(since time: Timestamp) -> Int {
        lots.values.reduce(0) { sum, lot in
            guard lot.state == .expired, let expiredAt = lot.expiredAt, expiredAt >= time else { return sum }
            return sum + lot.expiredPoints
        }
    }

    // MARK: Operations

    /// Adds a lot. If it is active at once and points are owed, they are paid off from it. A lot whose id is
    /// already in the ledger changes nothing: earning is idempotent by lot id. A lot of no points is kept only when
    /// it was earned on a purchase (it records what was bought, so that a return of it is bounded and recorded);
    /// otherwise it changes nothing.
    public mutating func earn(_ lot: EarnLot, entryID: EntryID) -> [LedgerEntry] {
        guard lot.amount > 0 || lot.purchaseAmount != nil, lots[lot.id] == nil else { return [] }
        put(lot, for: lot.id)
        let active = lot.state == .active
        var entries = [
            LedgerEntry(
                id: entryID, kind: .earn, at: lot.earnedAt, available: active ? lot.amount : 0,
                pending: active ? 0 : lot.amount, draws: [LotDraw(lot: lot.id, points: lot.amount)],
                reference: lot.reference)
        ]
        if active, let settlement = settleOwed(from: lot.id, at: lot.earnedAt) { entries.append(settlement) }
        return entries
    }

    /// Makes every pending lot whose return window has passed by `now` spendable. Idempotent.
    ///
    /// Points owed are paid off from the lots that unlock, in the order a spend draws them (the lot that expires
    /// first first), so that what stays spendable is what lasts longest.
    public mutating func unlock(at now: Timestamp) -> [LedgerEntry] {
        var entries: [LedgerEntry] = []
        let due = lots.values.filter { $0.state == .pending && ($0.pendingUntil.map { $0 <= now } ?? true) }
        for lot in due.sorted(by: { ($0.pendingUntil ?? now, $0.id) < ($1.pendingUntil ?? now, $1.id) }) {
            update(lot.id) { $0.state = .active }
            entries.append(
                LedgerEntry(
                    id: EntryID("unlock:\(lot.id)"), kind: .unlock, at: lot.pendingUntil ?? now,
                    available: lot.remaining, pending: -lot.remaining,
                    draws: [LotDraw(lot: lot.id, points: lot.remaining)]))
        }
        for lot in due.sorted(by: EarnLot.spendsBefore) {
            if let settlement = settleOwed(from: lot.id, at: lot.pendingUntil ?? now) { entries.append(settlement) }
        }
        return entries
    }

    /// Takes every point left in every lot, pending or spendable (an erased member's points are forfeited); nil
    /// when there is none. Idempotent: a second call finds nothing.
    public mutating func forfeitAll(
        at time: Timestamp, entryID: EntryID, reference: String?, kind: LedgerEntry.Kind = .forfeit
    ) -> LedgerEntry? {
        var draws: [LotDraw] = []
        var available = 0
        var pending = 0
        for lot in lots.values.filter({ $0.state != .expired && $0.remaining > 0 }).sorted(by: EarnLot.spendsBefore) {
            if lot.state == .active { available -= lot.remaining } else { pending -= lot.remaining }
            draws.append(LotDraw(lot: lot.id, points: lot.remaining))
            update(lot.id) { $0.remaining = 0 }
        }
        guard !draws.isEmpty else { return nil }
        return LedgerEntry(
            id: entryID, kind: kind, at: time, available: available, pending: pending, draws: draws,
            reference: reference)
    }

    /// Expires what is left of every lot whose expiry date has passed by `now`. Idempotent.
    public mutating func expire(at now: Timestamp) -> [LedgerEntry] {
        var entries: [LedgerEntry] = []
        let due = lots.values.filter { $0.state != .expired && ($0.expiresAt.map { $0 <= now } ?? false) }
        for lot in due.sorted(by: EarnLot.spendsBefore) {
            let wasActive = lot.state == .active
            update(lot.id) {
                $0.state = .expired
                $0.expiredAt = now
                $0.expiredPoints = lot.remaining
                $0.remaining = 0
            }
            entries.append(
                LedgerEntry(
                    id: EntryID("expire:\(lot.id)"), kind: .expire, at: lot.expiresAt ?? now,
                    available: wasActive ? -lot.remaining : 0, pending: wasActive ? 0 : -lot.remaining,
                    draws: [LotDraw(lot: lot.id, points: lot.remaining)]))
        }
        return entries
    }

    /// Spends points from active lots, the lot that expires first first. `limit` caps what may be spent
    /// (the available balance less points reserved for other devices); the spend is refused if it is larger.
    public mutating func spend(
        _ points: Int, at time: Timestamp, entryID: EntryID, reference: String?, limit: Int? = nil
    ) throws(LoyaltyError) -> LedgerEntry {
        precondition(points > 0, "a spend is positive")
        let spendable = min(available, limit ?? .max)
        guard points <= spendable else {
            throw LoyaltyError(
                .insufficientPoints, "\(points) points are needed but only \(max(spendable, 0)) can be spent")
        }
        let draws = drawFromActiveLots(points)
        return LedgerEntry(id: entryID, kind: .spend, at: time, available: -points, draws: draws, reference: reference)
    }

    /// Revokes the points of a lot in proportion to the part of its purchase that was returned:
    /// `round(amount × returned so far / purchase)`, less what was revoked before, so that the total never
    /// exceeds what was earned. The lot's own unspent points are taken first: what remains in it or, once it has
    /// expired, what expired from it (already gone, so nothing more is taken for them). Only the part the member
    /// spent is then taken from other active lots, and what they cannot cover becomes owed.
    public mutating func reverse(
        lot lotID: LotID, returned: Money, at time: Timestamp, entryID: EntryID, reference: String?
    ) throws(LoyaltyError) -> LedgerEntry {
        guard var lot = lots[lotID], let purchase = lot.purchaseAmount else {
            throw LoyaltyError(
                .unknownTransaction, "lot '\(lotID)' was not earned on a purchase and cannot be reversed")
        }
        guard returned.minorUnits > 0 else {
            throw LoyaltyError(.invalidAmount, "a return must be of more than 0.00")
        }
        let returnedTotal = lot.returnedAmount.minorUnits + returned.minorUnits
        guard returnedTotal <= purchase.minorUnits else {
            throw LoyaltyError(
                .returnExceedsPurchase,
                "a return of \(returned) exceeds what is left of the purchase (\(purchase) bought, "
                    + "\(lot.returnedAmount) already returned)")
        }
        // Round half up on the cumulative figure: rounding each partial return separately would drift.
        // (A purchase of 0.00 never gets here: any return of it exceeds what was bought.)
        let revokedTotal = Int(
            (Int64(lot.amount) * returnedTotal * 2 + purchase.minorUnits) / (purchase.minorUnits * 2))
        let toRevoke = min(revokedTotal, lot.amount) - lot.revoked
        lot.returnedAmount = Money(minorUnits: returnedTotal)
        lot.revoked += toRevoke
        let lotWasPending = lot.state == .pending
        var fromLot = 0
        if lot.state == .expired {
            // Points that expired unspent are gone already: revoking them takes nothing more, and they no longer
            // count as expired (they were revoked), so a later return cannot forgive them a second time.
            let forgiven = min(lot.expiredPoints, toRevoke)
            lot.expiredPoints -= forgiven
            fromLot = forgiven
        } else {
            fromLot = min(lot.remaining, toRevoke)
            lot.remaining -= fromLot
        }
        put(lot, for: lotID)
        let takenFromLot = lot.state == .expired ? 0 : fromLot
        var draws = takenFromLot > 0 ? [LotDraw(lot: lotID, points: takenFromLot)] : []
        let shortfall = toRevoke - fromLot
        let fromOthers = min(shortfall, max(available, 0))
        if fromOthers > 0 { draws += drawFromActiveLots(fromOthers) }
        let newlyOwed = shortfall - fromOthers
        owed += newlyOwed
        return LedgerEntry(
            id: entryID, kind: .reversal, at: time,
            available: -(lotWasPending ? 0 : takenFromLot) - fromOthers - newlyOwed,
            pending: lotWasPending ? -takenFromLot : 0, owed: newlyOwed, draws: draws, reference: reference)
    }

    /// An operator's correction: a positive adjustment adds an active lot, a negative one draws points down
    /// (never below zero).
    public mutating func adjust(
        by points: Int, at time: Timestamp, lot lotID: LotID, expiresAt: Timestamp?, entryID: EntryID, reason: String
    ) throws(LoyaltyError) -> [LedgerEntry] {
        if points > 0 {
            let lot = EarnLot(
                id: lotID, cause: .adjustment, amount: points, earnedAt: time, pendingUntil: nil, expiresAt: expiresAt,
                reference: reason)
            var entries = earn(lot, entryID: entryID)
            entries[0].kind = .adjustment
            return entries
        }
        guard points < 0, -points <= available else {
            throw LoyaltyError(
                .insufficientPoints, "an adjustment of \(points) would take the balance of \(available) below zero")
        }
        let draws = drawFromActiveLots(-points)
        return [
            LedgerEntry(id: entryID, kind: .adjustment, at: time, available: points, draws: draws, reference: reason)
        ]
    }

    private mutating func drawFromActiveLots(_ points: Int) -> [LotDraw] {
        var left = points
        var draws: [LotDraw] = []
        let candidates = lots.values.filter { $0.state == .active && $0.remaining > 0 }.sorted(by: EarnLot.spendsBefore)
        for lot in candidates where left > 0 {
            let taken = min(lot.remaining, left)
            update(lot.id) { $0.remaining -= taken }
            left -= taken
            draws.append(LotDraw(lot: lot.id, points: taken))
        }
        precondition(left == 0, "drew more points than the active lots hold")
        return draws
    }

    private mutating func settleOwed(from lotID: LotID, at time: Timestamp) -> LedgerEntry? {
        guard owed > 0, let lot = lots[lotID], lot.state == .active, lot.remaining > 0 else { return nil }
        let paid = min(owed, lot.remaining)
        update(lotID) { $0.remaining -= paid }
        owed -= paid
        return LedgerEntry(
            id: EntryID("settle:\(lotID)"), kind: .settlement, at: time, available: 0, owed: -paid,
            draws: [LotDraw(lot: lotID, points: paid)])
    }
}

/// Points that expire on one date.
public struct ExpiringPoints: Hashable, Sendable, Codable {
    /// How many points.
    public var amount: Int
    /// When they expire.
    public var expiresAt: Timestamp

    /// Creates a figure.
    public init(amount: Int, expiresAt: Timestamp) {
        self.amount = amount
        self.expiresAt = expiresAt
    }
}

/// Running totals over a ledger's lots: each lot is counted in when it is stored and out when it changes or goes.
private struct LotTotals: Hashable, Sendable {
    /// Points left in active lots.
    var active = 0
    /// Points left in pending lots.
    var pending = 0
    /// Points earned less points revoked, over every lot.
    var lifetime = 0
    /// Points left in active lots that expire, by expiry date.
    var expiring: [Timestamp: Int] = [:]
    /// The keys of ``expiring``, soonest first.
    var expiryDates: [Timestamp] = []

    /// Pending lots that expire, counted by expiry date (a lot can expire before its return window ends).
    var pendingExpiring: [Timestamp: Int] = [:]
    /// The keys of ``pendingExpiring``, soonest first.
    var pendingExpiryDates: [Timestamp] = []

    /// Counts a lot in (`sign` 1) or out (`sign` -1).
    mutating func count(_ lot: EarnLot, sign: Int) {
        lifetime += sign * (lot.amount - lot.revoked)
        switch lot.state {
        case .active:
            active += sign * lot.remaining
            if let date = lot.expiresAt, lot.remaining != 0 {
                Self.add(sign * lot.remaining, on: date, to: &expiring, dates: &expiryDates)
            }
        case .pending:
            pending += sign * lot.remaining
            if let date = lot.expiresAt { Self.add(sign, on: date, to: &pendingExpiring, dates: &pendingExpiryDates) }
        case .expired: break
        }
    }

    /// Whether a lot holding points (active) or still pending has an expiry date at or before `now`.
    func hasExpiryDue(at now: Timestamp) -> Bool {
        (expiryDates.first.map { $0 <= now } ?? false) || (pendingExpiryDates.first.map { $0 <= now } ?? false)
    }

    private static func add(
        _ amount: Int, on date: Timestamp, to totals: inout [Timestamp: Int], dates: inout [Timestamp]
    ) {
        let total = totals[date, default: 0] + amount
        let index = dates.partitioningIndex { $0 >= date }
        let listed = index < dates.count && dates[index] == date
        if total == 0 {
            totals[date] = nil
            if listed { dates.remove(at: index) }
        } else {
            totals[date] = total
            if !listed { dates.insert(date, at: index) }
        }
    }
}

extension Array {
    /// The index of the first element for which `belongs` holds, in an array where it holds for a suffix.
    func partitioningIndex(where belongs: (Element) -> Bool) -> Int {
        var low = 0
        var high = count
        while low < high {
            let middle = (low + high) / 2
            if belongs(self[middle]) { high = middle } else { low = middle + 1 }
        }
        return low
    }
}
