/// Why a mutation was refused: a code a program can match and a message a member can read.
public struct MutationRejection: Error, Hashable, Sendable, Codable, CustomStringConvertible {
    /// The reason, as a stable code. New codes may be added; clients show the message for codes they do not know.
    public struct Code: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public init(from decoder: any Decoder) throws {
            self.rawValue = try decoder.singleValueContainer().decode(String.self)
        }
        public func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            try container.encode(rawValue)
        }
        public var description: String { rawValue }

        /// The codes: docs/domain.md#mutations says when each is given.
        public static let invalidInput = Code(rawValue: "invalid_input")
        public static let memberNotActive = Code(rawValue: "member_not_active")
        public static let noActiveCard = Code(rawValue: "no_active_card")
        public static let insufficientPoints = Code(rawValue: "insufficient_points")
        public static let belowMinimumRedemption = Code(rawValue: "below_minimum_redemption")
        public static let pointsExpired = Code(rawValue: "points_expired")
        public static let offerNotFound = Code(rawValue: "offer_not_found")
        public static let offerWithdrawn = Code(rawValue: "offer_withdrawn")
        public static let offerExpired = Code(rawValue: "offer_expired")
        public static let offerNotYetValid = Code(rawValue: "offer_not_yet_valid")
        public static let offerNotTargeted = Code(rawValue: "offer_not_targeted")
        public static let offerNotActivated = Code(rawValue: "offer_not_activated")
        public static let offerAlreadyRedeemed = Code(rawValue: "offer_already_redeemed")
        public static let rewardNotFound = Code(rawValue: "reward_not_found")
        public static let rewardUnavailable = Code(rawValue: "reward_unavailable")
        public static let rewardOutOfStock = Code(rawValue: "reward_out_of_stock")
        public static let receiptNotFound = Code(rawValue: "receipt_not_found")
        public static let receiptAlreadyClaimed = Code(rawValue: "receipt_already_claimed")
        public static let receiptTooOld = Code(rawValue: "receipt_too_old")
        public static let surveyNotFound = Code(rawValue: "survey_not_found")
        public static let surveyClosed = Code(rawValue: "survey_closed")
        public static let surveyAlreadyAnswered = Code(rawValue: "survey_already_answered")
        public static let invalidAnswer = Code(rawValue: "invalid_answer")
        public static let invalidFieldValue = Code(rawValue: "invalid_field_value")
        public static let outOfOrder = Code(rawValue: "out_of_order")
        public static let clockAhead = Code(rawValue: "clock_ahead")
    }

    /// The reason code.
    public var code: Code
    /// What happened and why, for the member.
    public var message: String

    /// Creates a rejection.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }
}
