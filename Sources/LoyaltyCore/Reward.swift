/// A reward in the catalogue: what points can be redeemed for.
public struct Reward: Hashable, Sendable, Codable, Identifiable {
    /// The reward's id.
    public var id: RewardID
    /// Title shown to members.
    public var title: String
    /// Price in points.
    public var cost: Int
    /// How many are left, or nil if unlimited. The server's figure is authoritative; a device's copy may be old.
    public var stock: Int?
    /// Whether members can still redeem it.
    public var isActive: Bool

    /// Creates a reward.
    public init(id: RewardID, title: String, cost: Int, stock: Int? = nil, isActive: Bool = true) {
        self.id = id
        self.title = title
        self.cost = cost
        self.stock = stock
        self.isActive = isActive
    }
}

/// What a member gets for a redeemed reward: a code to show at the till.
public struct Voucher: Hashable, Sendable, Codable, Identifiable {
    /// Where a voucher stands.
    public enum Status: String, Hashable, Sendable, Codable {
        /// Made on a device that has not heard back from the server: may still be refused.
        case provisional
        /// Made on a device within its allowance, not yet heard back: the server will accept it (the points were
        /// reserved for this device).
        case guaranteed
        /// Issued by the server: valid.
        case confirmed
        /// Cancelled: the redemption was refused or reversed.
        case void
    }

    /// The voucher's id; the same on the device that redeemed offline and on the server.
    public var id: VoucherID
    /// The reward redeemed.
    public var rewardID: RewardID
    /// The code to show at the till; the server issues it, so a provisional voucher has none yet.
    public var code: String?
    /// Points paid.
    public var cost: Int
    /// Where it stands.
    public var status: Voucher.Status
    /// When it was redeemed.
    public var issuedAt: Timestamp

    /// Creates a voucher.
    public init(
        id: VoucherID, rewardID: RewardID, code: String?, cost: Int, status: Voucher.Status, issuedAt: Timestamp
    ) {
        self.id = id
        self.rewardID = rewardID
        self.code = code
        self.cost = cost
        self.status = status
        self.issuedAt = issuedAt
    }
}
