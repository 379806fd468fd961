/// An amount of the programme's currency in minor units (cents), never negative.
///
/// Amounts are written with up to two decimals (`12.34`, `12.3`, `12`); anything else is refused rather than
/// rounded, because a till that sends `12.345` has a bug that rounding would hide.
public struct Money: Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    /// The amount in minor units (1 euro = 100).
    public var minorUnits: Int64

    /// The largest amount a single purchase, return or receipt may carry: 1,000,000.00.
    public static let maximum = Money(minorUnits: 100_000_000)

    /// Creates an amount from minor units.
    public init(minorUnits: Int64) {
        self.minorUnits = minorUnits
    }

    /// Parses a decimal amount with at most two decimals, between 0 and ``maximum``.
    public init(parsing text: String) throws(LoyaltyError) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        let whole = parts.first ?? ""
        let fraction = parts.count == 2 ? parts[1] : ""
        guard parts.count <= 2, !whole.isEmpty, whole.count <= 9, fraction.count <= 2,
            parts.count == 1 || !fraction.isEmpty,
            whole.allSatisfy({ ("0"..."9").contains($0) }), fraction.allSatisfy({ ("0"..."9").contains($0) }),
            let units = Int64(whole)
        else {
            throw LoyaltyError(
                .invalidAmount,
                "\(text.quoted) is not an amount: write a non-negative number with at most two decimals, e.g. 12.50")
        }
        let cents = fraction.isEmpty ? 0 : Int64(fraction.count == 1 ? "\(fraction)0" : String(fraction))!
        self.minorUnits = units * 100 + cents
        guard self <= Money.maximum else {
            throw LoyaltyError(
                .invalidAmount, "\(text.quoted) is more than the largest amount allowed (\(Money.maximum))")
        }
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let value = try container.decode(Int64.self)
        guard value >= 0, value <= Money.maximum.minorUnits else {
            throw DecodingError.dataCorruptedError(
                in: container,
                debugDescription: "amount \(value) (minor units) is outside 0...\(Money.maximum.minorUnits)")
        }
        self.minorUnits = value
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(minorUnits)
    }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.minorUnits < rhs.minorUnits }

    /// The amount with two decimals, e.g. `12.50`.
    public var description: String {
        let cents = minorUnits % 100
        return "\(minorUnits / 100).\(cents < 10 ? "0" : "")\(cents)"
    }
}
