/// The one shape of this package's errors: a stable ``code`` to match on, a ``message`` that says what went wrong
/// and how to fix it (never a secret), and the underlying error kept as ``cause`` (a `DatabaseError`, a file
/// system error), so that a log shows the root cause instead of a flattened string.
///
/// Domain refusals, storage failures, device store failures, wire and command-line errors all use it; the HTTP
/// boundary's `APIFailure` and the client's `TransportError` have the same shape plus their status.
public struct LoyaltyError: Error, Sendable, CustomStringConvertible {
    /// What kind of problem this is.
    public struct Code: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible,
        ExpressibleByStringLiteral
    {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public init(stringLiteral value: String) { self.rawValue = value }
        public var description: String { rawValue }

        // The domain
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

        // Stores (the server's and the device's)
        /// A unique value (e-mail, receipt code, transaction id, card number) is taken.
        public static let duplicate = Code(rawValue: "duplicate")
        /// The member does not exist.
        public static let unknownMember = Code(rawValue: "unknown_member")
        /// A store's file cannot be used (corrupt, another kind of file, not writable); it is left untouched.
        public static let unusableStore = Code(rawValue: "unusable_store")
        /// Another process holds the store.
        public static let locked = Code(rawValue: "locked")
        /// The device has not signed in.
        public static let notSignedIn = Code(rawValue: "not_signed_in")
        /// The device has no data from the server yet.
        public static let notBootstrapped = Code(rawValue: "not_bootstrapped")
        /// The device's own view refused a mutation (the rejection is the cause).
        public static let refused = Code(rawValue: "refused")

        // The wire
        /// A wire value does not map to the domain; the message names the field.
        public static let malformed = Code(rawValue: "malformed")
    }

    /// What kind of problem this is.
    public var code: Code
    /// What went wrong and how to fix it.
    public var message: String
    /// The error underneath, if another layer's error led to this one.
    public var cause: (any Error)?

    /// Creates an error with a code, a message and, if another error led to it, that error.
    public init(_ code: Code, _ message: String, cause: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    /// The code, the message and the cause, for logs.
    public var description: String {
        guard let cause else { return "\(code): \(message)" }
        return "\(code): \(message) (cause: \(String(reflecting: cause)))"
    }
}

extension LoyaltyError: Equatable {
    /// Equal when code and message are (the cause is for diagnosis, not for matching).
    public static func == (lhs: LoyaltyError, rhs: LoyaltyError) -> Bool {
        lhs.code == rhs.code && lhs.message == rhs.message
    }
}
