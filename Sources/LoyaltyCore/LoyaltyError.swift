/// An error from the loyalty domain that is not a mutation rejection: bad input to a constructor, a programme
/// definition that does not hold together, an operator action that cannot be carried out.
///
/// Matchable by ``code``; the message says what went wrong and how to fix it, and never carries secrets.
public struct LoyaltyError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What kind of problem this is.
    public struct Code: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        public static let invalidAmount = Code(rawValue: "invalid_amount")
        public static let invalidProgram = Code(rawValue: "invalid_program")
        public static let invalidCardNumber = Code(rawValue: "invalid_card_number")
        public static let invalidInput = Code(rawValue: "invalid_input")
        public static let unknownCard = Code(rawValue: "unknown_card")
        public static let cardNotActive = Code(rawValue: "card_not_active")
        public static let memberNotActive = Code(rawValue: "member_not_active")
        public static let unknownTransaction = Code(rawValue: "unknown_transaction")
        public static let duplicateTransaction = Code(rawValue: "duplicate_transaction")
        public static let returnExceedsPurchase = Code(rawValue: "return_exceeds_purchase")
        public static let insufficientPoints = Code(rawValue: "insufficient_points")
        public static let clockDrift = Code(rawValue: "clock_drift")
    }

    /// What kind of problem this is.
    public var code: Code
    /// What went wrong and how to fix it.
    public var message: String

    /// Creates an error with a code and a message.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }
}
