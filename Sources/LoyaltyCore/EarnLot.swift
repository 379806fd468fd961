/// A lot of earned points: one purchase, receipt, survey or adjustment, spent down by later spends.
///
/// A lot is **pending** until its return window has passed (it cannot be spent yet), then **active**
/// (its ``remaining`` points count towards the balance), and **expired** once its expiry date has passed
/// (what was left is gone). Only the server moves a lot between states (unlock and expiry jobs).
public struct EarnLot: Hashable, Sendable, Identifiable {
    /// Where a lot's points came from.
    public enum Cause: String, Hashable, Sendable, Codable, CaseIterable {
        /// A purchase at a till, credited by card or member id.
        case purchase
        /// A receipt the member claimed in the app.
        case receiptClaim
        /// A survey the member answered.
        case survey
        /// A manual correction by the operator.
        case adjustment
        /// Points an unused device allowance gave back.
        case allowanceReturn

        /// Whether points of this cause count towards tier qualification (spend-based causes only).
        public var isQualifying: Bool { self == .purchase || self == .receiptClaim }
    }

    /// Where a lot stands.
    public enum State: String, Hashable, Sendable, Codable {
        /// Within the return window: shown as pending, not spendable.
        case pending
        /// Spendable.
        case active
        /// Past its expiry date: nothing left.
        case expired
    }

    // A device holds every lot in memory, so the layout is kept tight: an optional 8-byte value takes 16 bytes
    // in a struct, so the optional times and amount are kept as raw values with `none` for nil, and the two
    // one-byte enums come last. 120 bytes a lot instead of 160.

    /// The lot's id.
    public var id: LotID
    /// Points earned.
    public var amount: Int
    /// Points not yet spent, expired or revoked.
    public var remaining: Int
    /// When the points were earned.
    public var earnedAt: Timestamp
    /// The part of ``purchaseAmount`` already returned.
    public var returnedAmount: Money
    /// Points revoked by returns so far (never more than ``amount``).
    public var revoked: Int
    /// What caused it: a transaction id, a receipt code, a survey id.
    public var reference: String?
    /// Points that were left when it expired, less those a later return revoked (they stop counting as expired).
    public var expiredPoints: Int
    private var pendingUntilRaw: Int64
    private var expiresAtRaw: Int64
    private var purchaseAmountRaw: Int64
    private var expiredAtRaw: Int64
    /// Where the points came from.
    public var cause: EarnLot.Cause
    /// The lot's state.
    public var state: EarnLot.State

    /// The raw value that stands for nil.
    fileprivate static let none = Int64.min

    private static func raw(_ value: Int64?) -> Int64 {
        guard let value else { return none }
        precondition(value != none, "\(none) is reserved")
        return value
    }

    private static func value(_ raw: Int64) -> Int64? { raw == none ? nil : raw }

    /// When the lot becomes spendable; nil if it was spendable at once.
    public var pendingUntil: Timestamp? {
        get { Self.value(pendingUntilRaw).map(Timestamp.init(millisecondsSince1970:)) }
        set { pendingUntilRaw = Self.raw(newValue?.millisecondsSince1970) }
    }
    /// When the lot expires; nil if it never does.
    public var expiresAt: Timestamp? {
        get { Self.value(expiresAtRaw).map(Timestamp.init(millisecondsSince1970:)) }
        set { expiresAtRaw = Self.raw(newValue?.millisecondsSince1970) }
    }
    /// The purchase amount the points were earned on, for pro-rata revocation on a return.
    public var purchaseAmount: Money? {
        get { Self.value(purchaseAmountRaw).map(Money.init(minorUnits:)) }
        set { purchaseAmountRaw = Self.raw(newValue?.minorUnits) }
    }
    /// When the expiry job expired it.
    public var expiredAt: Timestamp? {
        get { Self.value(expiredAtRaw).map(Timestamp.init(millisecondsSince1970:)) }
        set { expiredAtRaw = Self.raw(newValue?.millisecondsSince1970) }
    }

    /// Creates a lot; `remaining` starts at `amount`.
    public init(
        id: LotID, cause: EarnLot.Cause, amount: Int, earnedAt: Timestamp, pendingUntil: Timestamp?,
        expiresAt: Timestamp?, purchaseAmount: Money? = nil, reference: String? = nil
    ) {
        self.id = id
        self.cause = cause
        self.amount = amount
        self.remaining = amount
        self.earnedAt = earnedAt
        self.pendingUntilRaw = Self.raw(pendingUntil?.millisecondsSince1970)
        self.expiresAtRaw = Self.raw(expiresAt?.millisecondsSince1970)
        self.state = pendingUntil.map { $0 > earnedAt } == true ? .pending : .active
        self.purchaseAmountRaw = Self.raw(purchaseAmount?.minorUnits)
        self.returnedAmount = Money(minorUnits: 0)
        self.revoked = 0
        self.reference = reference
        self.expiredAtRaw = Self.none
        self.expiredPoints = 0
    }

    /// Whether the lot counts towards tier qualification.
    public var isQualifying: Bool { cause.isQualifying }

    /// Spend order: the lot that expires first is spent first; lots that never expire last; then oldest first.
    static func spendsBefore(_ lhs: EarnLot, _ rhs: EarnLot) -> Bool {
        let left = lhs.expiresAt?.millisecondsSince1970 ?? .max
        let right = rhs.expiresAt?.millisecondsSince1970 ?? .max
        return (left, lhs.earnedAt, lhs.id) < (right, rhs.earnedAt, rhs.id)
    }
}

extension EarnLot: Codable {
    // Written out because the stored layout differs from the JSON form; the keys, their order and the omission of
    // nil fields are what the synthesised conformance gave.
    private enum CodingKeys: String, CodingKey {
        case id, cause, amount, remaining, earnedAt, pendingUntil, expiresAt, state, purchaseAmount, returnedAmount
        case revoked, reference, expiredAt, expiredPoints
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        // The one time the lot cannot hold (it stands for nil): an error, not a crash.
        func time(_ key: CodingKeys) throws -> Timestamp? {
            let time = try container.decodeIfPresent(Timestamp.self, forKey: key)
            guard time?.millisecondsSince1970 != EarnLot.none else {
                throw DecodingError.dataCorruptedError(
                    forKey: key, in: container, debugDescription: "\(EarnLot.none) is not a usable time")
            }
            return time
        }
        self.init(
            id: try container.decode(LotID.self, forKey: .id), cause: try container.decode(Cause.self, forKey: .cause),
            amount: try container.decode(Int.self, forKey: .amount),
            earnedAt: try container.decode(Timestamp.self, forKey: .earnedAt), pendingUntil: try time(.pendingUntil),
            expiresAt: try time(.expiresAt),
            purchaseAmount: try container.decodeIfPresent(Money.self, forKey: .purchaseAmount),
            reference: try container.decodeIfPresent(String.self, forKey: .reference))
        remaining = try container.decode(Int.self, forKey: .remaining)
        state = try container.decode(State.self, forKey: .state)
        returnedAmount = try container.decode(Money.self, forKey: .returnedAmount)
        revoked = try container.decode(Int.self, forKey: .revoked)
        expiredAt = try time(.expiredAt)
        expiredPoints = try container.decode(Int.self, forKey: .expiredPoints)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(cause, forKey: .cause)
        try container.encode(amount, forKey: .amount)
        try container.encode(remaining, forKey: .remaining)
        try container.encode(earnedAt, forKey: .earnedAt)
        try container.encodeIfPresent(pendingUntil, forKey: .pendingUntil)
        try container.encodeIfPresent(expiresAt, forKey: .expiresAt)
        try container.encode(state, forKey: .state)
        try container.encodeIfPresent(purchaseAmount, forKey: .purchaseAmount)
        try container.encode(returnedAmount, forKey: .returnedAmount)
        try container.encode(revoked, forKey: .revoked)
        try container.encodeIfPresent(reference, forKey: .reference)
        try container.encodeIfPresent(expiredAt, forKey: .expiredAt)
        try container.encode(expiredPoints, forKey: .expiredPoints)
    }
}

/// How many points a movement took from one lot.
public struct LotDraw: Hashable, Sendable, Codable {
    /// The lot drawn from.
    public var lot: LotID
    /// Points taken.
    public var points: Int

    /// Creates a draw.
    public init(lot: LotID, points: Int) {
        self.lot = lot
        self.points = points
    }
}

/// One movement of points. The ledger is the sum of its movements: the available balance is the sum of every
/// entry's ``available`` change and the pending points the sum of every ``pending`` change.
public struct LedgerEntry: Hashable, Sendable, Codable, Identifiable {
    /// What kind of movement this is.
    public enum Kind: String, Hashable, Sendable, Codable, CaseIterable {
        /// Points earned (into a new lot, pending or active).
        case earn
        /// A pending lot became spendable.
        case unlock
        /// Points spent on a reward; drawn from lots oldest expiry first.
        case spend
        /// What was left of a lot at its expiry date.
        case expire
        /// Points revoked because the purchase was returned.
        case reversal
        /// A manual correction by the operator.
        case adjustment
        /// Owed points (from a reversal of points already spent) paid off from a newly spendable lot.
        case settlement
        /// Every point the member held, lost when the member's data was erased (docs/privacy.md).
        case forfeit
        /// Every point the member held, paid out when the member's data was erased (the programme's
        /// `erasedPoints` rule says so).
        case payout
    }

    /// The entry's id; derived from what caused it, so that re-running the cause yields the same id.
    public var id: EntryID
    /// What kind of movement this is.
    public var kind: LedgerEntry.Kind
    /// When it happened (server time, or the device's corrected time while provisional).
    public var at: Timestamp
    /// Change to the available (spendable) balance.
    public var available: Int
    /// Change to the pending points.
    public var pending: Int
    /// Change to the points owed (a reversal larger than what is left raises it; settlements lower it).
    public var owed: Int
    /// The lots it took points from or gave points to.
    public var draws: [LotDraw]
    /// What caused it: a reward id, transaction id, receipt code, survey id, or the operator's reason.
    public var reference: String?

    /// Creates an entry.
    public init(
        id: EntryID, kind: LedgerEntry.Kind, at: Timestamp, available: Int, pending: Int = 0, owed: Int = 0,
        draws: [LotDraw] = [], reference: String? = nil
    ) {
        self.id = id
        self.kind = kind
        self.at = at
        self.available = available
        self.pending = pending
        self.owed = owed
        self.draws = draws
        self.reference = reference
    }

    /// The change to the member's total points (available plus pending), as a history shows it.
    public var points: Int { available + pending }
}
