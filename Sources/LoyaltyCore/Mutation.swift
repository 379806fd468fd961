/// What a member did: an intent recorded on a device and re-run authoritatively by the server.
///
/// A mutation names what the member wanted, never the rows it changes, so that the server can judge it
/// against state the device could not see (another device's spend, an expired lot, an empty stock).
public enum Mutation: Hashable, Sendable {
    /// Activate ("clip") an offer so it can be used.
    case activateOffer(OfferID)
    /// Use an offer (a coupon) from the app.
    case redeemOffer(OfferID)
    /// Spend points on a reward and get a voucher.
    case redeemReward(RewardID)
    /// Claim a till receipt that was not credited to the card.
    case claimReceipt(code: String)
    /// Answer a survey.
    case answerSurvey(SurveyID, answers: [String: String])
    /// Change one profile field (nil clears it). `basedOn` is the stamp of the value the device showed when the
    /// member edited it: a write that overwrites any other value is a concurrent edit, and goes to the conflict log.
    case setProfileField(ProfileField, value: String?, basedOn: HLCTimestamp?)
    /// Grant or withdraw a consent.
    case setConsent(ConsentKind, granted: Bool)
    /// Ask for the member's data to be erased (GDPR Art. 17): recorded offline like any action, done by the server
    /// when it arrives (docs/privacy.md, "Erasure").
    case requestErasure

    /// The mutation's kind, as written on the wire and in logs.
    public var kind: String {
        switch self {
        case .activateOffer: "activateOffer"
        case .redeemOffer: "redeemOffer"
        case .redeemReward: "redeemReward"
        case .claimReceipt: "claimReceipt"
        case .answerSurvey: "answerSurvey"
        case .setProfileField: "setProfileField"
        case .setConsent: "setConsent"
        case .requestErasure: "requestErasure"
        }
    }

    /// Every kind this version understands.
    public static let kinds = [
        "activateOffer", "redeemOffer", "redeemReward", "claimReceipt", "answerSurvey", "setProfileField", "setConsent",
        "requestErasure",
    ]

    /// Checks the mutation's own fields (not the state it is applied to); the rejection names the field.
    public func validateInput() -> MutationRejection? {
        func bad(_ message: String) -> MutationRejection { MutationRejection(.invalidInput, message) }
        switch self {
        case .activateOffer(let id), .redeemOffer(let id):
            return id.isWellFormed ? nil : bad("offerID \(id.rawValue.quoted) is not a valid id")
        case .redeemReward(let id):
            return id.isWellFormed ? nil : bad("rewardID \(id.rawValue.quoted) is not a valid id")
        case .claimReceipt(let code):
            return Receipt.isWellFormedCode(code)
                ? nil : bad("code \(code.quoted) is not a receipt code (4 to 32 capital letters, digits or dashes)")
        case .answerSurvey(let id, let answers):
            if !id.isWellFormed { return bad("surveyID \(id.rawValue.quoted) is not a valid id") }
            if answers.isEmpty { return bad("answers must not be empty") }
            if answers.count > 100 { return bad("answers has \(answers.count) entries; at most 100 are allowed") }
            if let long = answers.first(where: { $0.key.inputLength > 64 || $0.value.inputLength > 500 }) {
                return bad(
                    "answers[\(long.key.quoted)] is too long (question ids ≤ 64, answers ≤ 500 characters)")
            }
            return nil
        case .setProfileField(_, let value, _):
            if let value, value.inputLength > 300 {
                return bad("value is \(value.inputLength) characters; at most 300 are allowed")
            }
            return nil
        case .setConsent, .requestErasure:
            return nil
        }
    }
}

extension Mutation: Codable {
    private enum CodingKeys: String, CodingKey {
        case kind, offerID, rewardID, code, surveyID, answers, field, value, basedOn, consent, granted
    }

    /// Decodes `{"kind": "...", ...fields}`. An unknown kind, a missing or mistyped field, or a field that does not
    /// belong to the kind is an error that names it.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let kind = try container.decode(String.self, forKey: .kind)
        let expected: Set<CodingKeys>
        switch kind {
        case "activateOffer":
            self = .activateOffer(try container.decode(OfferID.self, forKey: .offerID))
            expected = [.offerID]
        case "redeemOffer":
            self = .redeemOffer(try container.decode(OfferID.self, forKey: .offerID))
            expected = [.offerID]
        case "redeemReward":
            self = .redeemReward(try container.decode(RewardID.self, forKey: .rewardID))
            expected = [.rewardID]
        case "claimReceipt":
            self = .claimReceipt(code: try container.decode(String.self, forKey: .code))
            expected = [.code]
        case "answerSurvey":
            self = .answerSurvey(
                try container.decode(SurveyID.self, forKey: .surveyID),
                answers: try container.decode([String: String].self, forKey: .answers))
            expected = [.surveyID, .answers]
        case "setProfileField":
            self = .setProfileField(
                try container.decode(ProfileField.self, forKey: .field),
                value: try container.decodeIfPresent(String.self, forKey: .value),
                basedOn: try container.decodeIfPresent(HLCTimestamp.self, forKey: .basedOn))
            expected = [.field, .value, .basedOn]
        case "setConsent":
            self = .setConsent(
                try container.decode(ConsentKind.self, forKey: .consent),
                granted: try container.decode(Bool.self, forKey: .granted))
            expected = [.consent, .granted]
        case "requestErasure":
            self = .requestErasure
            expected = []
        default:
            throw DecodingError.dataCorruptedError(
                forKey: .kind, in: container,
                debugDescription:
                    "unknown mutation kind \(kind.quoted); known kinds: \(Mutation.kinds.joined(separator: ", "))")
        }
        // `allKeys` of a typed container lists only keys it knows: list every key the JSON has instead.
        let allowed = Set((expected.union([.kind])).map(\.stringValue))
        let present = try decoder.container(keyedBy: AnyCodingKey.self).allKeys.map(\.stringValue)
        if let extra = present.sorted().first(where: { !allowed.contains($0) }) {
            throw DecodingError.dataCorrupted(
                DecodingError.Context(
                    codingPath: decoder.codingPath, debugDescription: "field \(extra.quoted) does not belong to \(kind)"
                ))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(kind, forKey: .kind)
        switch self {
        case .activateOffer(let id), .redeemOffer(let id):
            try container.encode(id, forKey: .offerID)
        case .redeemReward(let id):
            try container.encode(id, forKey: .rewardID)
        case .claimReceipt(let code):
            try container.encode(code, forKey: .code)
        case .answerSurvey(let id, let answers):
            try container.encode(id, forKey: .surveyID)
            try container.encode(answers, forKey: .answers)
        case .setProfileField(let field, let value, let basedOn):
            try container.encode(field, forKey: .field)
            try container.encodeIfPresent(value, forKey: .value)
            try container.encodeIfPresent(basedOn, forKey: .basedOn)
        case .setConsent(let kind, let granted):
            try container.encode(kind, forKey: .consent)
            try container.encode(granted, forKey: .granted)
        case .requestErasure:
            break
        }
    }
}

/// A coding key for any name, to see every key a JSON object has.
struct AnyCodingKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}
