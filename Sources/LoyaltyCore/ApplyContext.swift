/// What a mutation is judged against besides the member's state: the time, and on the server the facts only the
/// server knows.
public struct ApplyContext: Sendable {
    /// Who applies the mutation.
    public enum Authority: Sendable {
        /// A device, optimistically, on its own view: what only the server knows is assumed to be fine.
        case device
        /// The server, authoritatively, with the facts it looked up for this mutation.
        case server(ServerFacts)
    }

    /// The time the mutation is applied at: the server's clock, or the device's corrected clock.
    public var now: Timestamp
    /// The time the member is taken to have acted at; validity windows (offers, surveys) are judged at it.
    public var actedAt: Timestamp
    /// Who applies it.
    public var authority: Authority

    /// Creates a context.
    public init(now: Timestamp, actedAt: Timestamp, authority: Authority) {
        self.now = now
        self.actedAt = actedAt
        self.authority = authority
    }

    /// A device applying its own mutation: it acted when it says it did.
    public static func device(now: Timestamp, actedAt: Timestamp) -> ApplyContext {
        ApplyContext(now: now, actedAt: actedAt, authority: .device)
    }

    /// The server applying a device's mutation at server time `now`. The device's claim of when it acted is
    /// believed only within `grace` before now, never before `notBefore` (the latest time the server has
    /// already seen from that device), and never in the future.
    public static func server(
        now: Timestamp, claimedActedAt: Timestamp, grace: TimeSpan, notBefore: Timestamp?, facts: ServerFacts
    ) -> ApplyContext {
        let actedAt = min(now, max(claimedActedAt, now.adding(-grace), notBefore ?? claimedActedAt))
        return ApplyContext(now: now, actedAt: actedAt, authority: .server(facts))
    }

    var serverFacts: ServerFacts? {
        if case .server(let facts) = authority { return facts }
        return nil
    }
}

/// What the server looked up for one mutation, so that the core can judge it without I/O.
public struct ServerFacts: Sendable, Hashable {
    /// For a receipt claim: the receipt with that code, if it exists.
    public var receipt: Receipt?
    /// For a reward redemption: the reward's authoritative stock (nil if unlimited).
    public var stock: Int?
    /// For a reward redemption: the voucher code the server issues if it is accepted.
    public var voucherCode: String?

    /// Creates server facts.
    public init(receipt: Receipt? = nil, stock: Int? = nil, voucherCode: String? = nil) {
        self.receipt = receipt
        self.stock = stock
        self.voucherCode = voucherCode
    }
}

/// What applying a mutation did: how it was decided, the entities it changed, and what the server must record
/// outside the member's state.
public struct MutationOutcome: Hashable, Sendable {
    /// How it was decided.
    public var status: MutationStatus
    /// The entities it changed (whole new states), in order; empty when rejected.
    public var changes: [Entity]
    /// A receipt the server must mark as claimed by this member.
    public var claimedReceipt: String?
    /// A reward whose stock the server must lower by one.
    public var stockTaken: RewardID?

    /// Creates an outcome.
    public init(
        status: MutationStatus, changes: [Entity] = [], claimedReceipt: String? = nil, stockTaken: RewardID? = nil
    ) {
        self.status = status
        self.changes = changes
        self.claimedReceipt = claimedReceipt
        self.stockTaken = stockTaken
    }

    /// A rejection: nothing changed.
    public static func rejected(_ rejection: MutationRejection) -> MutationOutcome {
        MutationOutcome(status: .rejected(rejection))
    }

    /// Whether it is a redemption the device's own allowance covered: its voucher is guaranteed.
    public var isGuaranteed: Bool {
        changes.contains { change in
            if case .voucher(let voucher) = change { return voucher.status == .guaranteed }
            return false
        }
    }

    /// The rejection, if it was rejected.
    public var rejection: MutationRejection? {
        if case .rejected(let rejection) = status { return rejection }
        return nil
    }
}
