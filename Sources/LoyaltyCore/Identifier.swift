/// A typed identifier: `Identifier<Offer>` and `Identifier<Reward>` are different types, so an offer id
/// can never be passed where a reward id is expected. On the wire and on disk it is a plain string.
public struct Identifier<Subject>: Hashable, Comparable, Sendable, Codable, CustomStringConvertible,
    ExpressibleByStringLiteral
{
    /// The identifier's text.
    public let rawValue: String

    /// Wraps a raw identifier string.
    public init(_ rawValue: String) {
        self.rawValue = rawValue
    }

    public init(stringLiteral value: String) {
        self.rawValue = value
    }

    public init(from decoder: any Decoder) throws {
        self.rawValue = try decoder.singleValueContainer().decode(String.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }

    public var description: String { rawValue }

    /// Whether the text is a usable identifier: 1 to 64 characters of letters, digits, `-`, `_`, `.` or `:`.
    public var isWellFormed: Bool {
        !rawValue.isEmpty && rawValue.utf8.count <= 64
            && rawValue.unicodeScalars.allSatisfy { scalar in
                switch scalar {
                case "a"..."z", "A"..."Z", "0"..."9", "-", "_", ".", ":": true
                default: false
                }
            }
    }
}

/// The ids of the domain's entities, each its own type so that one cannot be passed for another.
public typealias MemberID = Identifier<MemberRecord>
public typealias DeviceID = Identifier<DeviceTag>
public typealias LotID = Identifier<EarnLot>
public typealias EntryID = Identifier<LedgerEntry>
public typealias OfferID = Identifier<Offer>
public typealias RewardID = Identifier<Reward>
public typealias VoucherID = Identifier<Voucher>
public typealias SurveyID = Identifier<Survey>
public typealias TransactionID = Identifier<PurchaseTag>

/// Tag type for device identifiers (a device has no domain value type of its own in the core).
public enum DeviceTag {}
/// Tag type for till transaction identifiers (purchases and returns).
public enum PurchaseTag {}
