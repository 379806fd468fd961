/// A failure answered to a client: an HTTP status, a stable code and a message that says what to do.
/// Messages never carry passwords, tokens or personal data.
public struct APIFailure: Error, Hashable, Sendable, CustomStringConvertible {
    /// The kind of failure, with its HTTP status.
    public struct Kind: Hashable, Sendable {
        /// The HTTP status.
        public var status: Int
        /// The code in the error body (`error.code`).
        public var code: String

        /// The kinds: docs/protocol.md lists when each is answered.
        public static let badRequest = Kind(status: 400, code: "bad_request")
        public static let unauthorized = Kind(status: 401, code: "unauthorized")
        public static let tokenExpired = Kind(status: 401, code: "token_expired")
        public static let deviceRevoked = Kind(status: 401, code: "device_revoked")
        public static let forbidden = Kind(status: 403, code: "forbidden")
        public static let notFound = Kind(status: 404, code: "not_found")
        public static let conflict = Kind(status: 409, code: "conflict")
        public static let tooLarge = Kind(status: 413, code: "too_large")
        public static let unprocessable = Kind(status: 422, code: "unprocessable")
        public static let upgradeRequired = Kind(status: 426, code: "upgrade_required")
        public static let tooManyRequests = Kind(status: 429, code: "too_many_requests")
        public static let unavailable = Kind(status: 503, code: "unavailable")
        public static let internalError = Kind(status: 500, code: "internal_error")
    }

    /// The kind of failure.
    public var kind: Kind
    /// What went wrong and how to fix it.
    public var message: String
    /// For 429 and 503: when to try again, sent as `Retry-After`.
    public var retryAfterSeconds: Int?

    /// Creates a failure.
    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { "\(kind.status) \(kind.code): \(message)" }
}
