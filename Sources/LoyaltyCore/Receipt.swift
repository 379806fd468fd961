/// A till receipt that a member can claim in the app if they forgot the card. It earns once, for whoever
/// claims it first.
public struct Receipt: Hashable, Sendable, Codable {
    /// The code printed on the receipt.
    public var code: String
    /// What was paid.
    public var amount: Money
    /// Where.
    public var shop: String
    /// When.
    public var purchasedAt: Timestamp
    /// The member who claimed it, once someone has.
    public var claimedBy: MemberID?

    /// Creates a receipt.
    public init(code: String, amount: Money, shop: String, purchasedAt: Timestamp, claimedBy: MemberID? = nil) {
        self.code = code
        self.amount = amount
        self.shop = shop
        self.purchasedAt = purchasedAt
        self.claimedBy = claimedBy
    }

    /// Whether a text can be a receipt code: 4 to 32 letters, digits or dashes.
    public static func isWellFormedCode(_ code: String) -> Bool {
        (4...32).contains(code.count)
            && code.unicodeScalars.allSatisfy { ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "-" }
    }
}

/// A member's claim of a receipt.
public struct ReceiptClaim: Hashable, Sendable, Codable {
    /// Where a claim stands.
    public enum Status: String, Hashable, Sendable, Codable {
        /// Sent from a device; the points follow when the server has checked the receipt.
        case submitted
        /// Checked and credited.
        case credited
    }

    /// The receipt's code.
    public var code: String
    /// Where the claim stands.
    public var status: ReceiptClaim.Status
    /// Points credited, once known.
    public var points: Int?
    /// When the member claimed it.
    public var claimedAt: Timestamp

    /// Creates a claim.
    public init(code: String, status: ReceiptClaim.Status, points: Int?, claimedAt: Timestamp) {
        self.code = code
        self.status = status
        self.points = points
        self.claimedAt = claimedAt
    }
}
