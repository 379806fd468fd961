/// A member of the programme as the server keeps it: identity, status, segments.
///
/// Contact data (name, e-mail, phone, birth date, address) lives in the member's ``Profile``, where each field
/// carries the stamp that decides concurrent edits.
public struct MemberRecord: Hashable, Sendable, Codable {
    /// Whether a member may take part.
    public enum Status: String, Hashable, Sendable, Codable {
        /// Earns and spends.
        case active
        /// Blocked by the operator: earns and spends nothing, can still withdraw consents.
        case blocked
        /// Erased on request (GDPR Art. 17): personal data removed, ledger kept anonymised.
        case erased
    }

    /// The member's id.
    public var id: MemberID
    /// Whether the member may take part.
    public var status: Status
    /// Segments the server placed the member in (targeting for offers).
    public var segments: Set<String>
    /// When the member enrolled.
    public var createdAt: Timestamp
    /// Why the operator blocked the member, in words for the member (nil while active).
    public var statusReason: String?

    /// Creates a member record.
    public init(
        id: MemberID, status: Status = .active, segments: Set<String> = [], createdAt: Timestamp,
        statusReason: String? = nil
    ) {
        self.id = id
        self.status = status
        self.segments = segments
        self.createdAt = createdAt
        self.statusReason = statusReason
    }
}

/// A member card: the number on it, its barcode, and whether it may be used.
public struct Card: Hashable, Sendable, Codable {
    /// Whether a card may be used at a till.
    public enum Status: String, Hashable, Sendable, Codable {
        /// In use.
        case active
        /// Blocked by the operator or the member (lost); earns and spends nothing.
        case blocked
        /// Replaced by another card (see ``Card/replacedBy``); earns and spends nothing.
        case replaced
    }

    /// The card number (with its check digit).
    public var number: CardNumber
    /// Whether the card may be used.
    public var status: Status
    /// The card that replaced this one, if it was replaced.
    public var replacedBy: CardNumber?
    /// When the card was issued.
    public var issuedAt: Timestamp

    /// Creates a card.
    public init(number: CardNumber, status: Status = .active, replacedBy: CardNumber? = nil, issuedAt: Timestamp) {
        self.number = number
        self.status = status
        self.replacedBy = replacedBy
        self.issuedAt = issuedAt
    }

    /// What a till scans: the programme prefix and the card number, e.g. `LOYALTY:4000001234567`.
    public var barcodePayload: String { "LOYALTY:\(number.digits)" }
}

/// A card number: 8 to 19 digits whose last digit is a Luhn check digit (ISO/IEC 7812), so that a mistyped
/// digit or two swapped neighbours are caught at the till.
public struct CardNumber: Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    /// The digits, check digit last.
    public let digits: String

    /// Accepts a number whose check digit is right; spaces are ignored.
    public init(_ text: String) throws(LoyaltyError) {
        let digits = text.filter { $0 != " " }
        guard (8...19).contains(digits.count), digits.allSatisfy({ ("0"..."9").contains($0) }) else {
            throw LoyaltyError(.invalidCardNumber, "\(text.quoted) is not a card number: it must have 8 to 19 digits")
        }
        guard CardNumber.luhnCheckDigit(for: digits.dropLast()) == digits.last else {
            throw LoyaltyError(
                .invalidCardNumber, "\(text.quoted) is not a card number: its check digit is wrong (mistyped?)")
        }
        self.digits = digits
    }

    /// Makes a card number from a body of digits by appending its check digit.
    public init(body: String) throws(LoyaltyError) {
        guard (7...18).contains(body.count), body.allSatisfy({ ("0"..."9").contains($0) }) else {
            throw LoyaltyError(.invalidCardNumber, "a card number body must have 7 to 18 digits, not \(body.quoted)")
        }
        self.digits = body + String(CardNumber.luhnCheckDigit(for: Substring(body)))
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        do {
            try self.init(text)
        } catch {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: error.message)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(digits)
    }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.digits < rhs.digits }

    /// The number in groups of four, as printed on the card.
    public var description: String {
        var groups: [Substring] = []
        var rest = Substring(digits)
        while !rest.isEmpty {
            groups.append(rest.prefix(4))
            rest = rest.dropFirst(4)
        }
        return groups.joined(separator: " ")
    }

    static func luhnCheckDigit(for body: Substring) -> Character {
        var sum = 0
        for (offset, character) in body.reversed().enumerated() {
            var digit = Int(character.asciiValue! - 48)
            if offset % 2 == 0 {
                digit *= 2
                if digit > 9 { digit -= 9 }
            }
            sum += digit
        }
        return Character(String((10 - sum % 10) % 10))
    }
}
