/// One piece of a member's state as the change feed carries it: the whole current value of one entity.
///
/// Ledger entries are history, not state: they are carried (and stored) but ``MemberState`` does not keep them.
public enum Entity: Hashable, Sendable, Codable {
    case member(MemberRecord)
    case card(Card)
    case lot(EarnLot)
    case ledgerEntry(LedgerEntry)
    case account(PointsAccount)
    case tier(TierStatus)
    case offer(Offer)
    case memberOffer(MemberOffer)
    case reward(Reward)
    case voucher(Voucher)
    case survey(Survey)
    case surveyResponse(SurveyResponse)
    case receiptClaim(ReceiptClaim)
    case profileField(ProfileFieldValue)
    case consentChange(ConsentChange)
    case conflict(ConflictRecord)
    case program(Program)
    case allowance(Allowance)

    /// The entity's identity within the member's state.
    public var key: EntityKey {
        switch self {
        case .member: EntityKey(.member, "member")
        case .card(let card): EntityKey(.card, card.number.digits)
        case .lot(let lot): EntityKey(.lot, lot.id.rawValue)
        case .ledgerEntry(let entry): EntityKey(.ledgerEntry, entry.id.rawValue)
        case .account: EntityKey(.account, "account")
        case .tier: EntityKey(.tier, "tier")
        case .offer(let offer): EntityKey(.offer, offer.id.rawValue)
        case .memberOffer(let memberOffer): EntityKey(.memberOffer, memberOffer.offerID.rawValue)
        case .reward(let reward): EntityKey(.reward, reward.id.rawValue)
        case .voucher(let voucher): EntityKey(.voucher, voucher.id.rawValue)
        case .survey(let survey): EntityKey(.survey, survey.id.rawValue)
        case .surveyResponse(let response): EntityKey(.surveyResponse, response.surveyID.rawValue)
        case .receiptClaim(let claim): EntityKey(.receiptClaim, claim.code)
        case .profileField(let value): EntityKey(.profileField, value.field.rawValue)
        case .consentChange(let change): EntityKey(.consentChange, change.id)
        case .conflict(let record): EntityKey(.conflict, record.id)
        case .program: EntityKey(.program, "program")
        case .allowance(let allowance): EntityKey(.allowance, allowance.deviceID.rawValue)
        }
    }
}

/// The kind and id of an entity: what a change upserts or deletes.
public struct EntityKey: Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    /// The kinds of entity.
    public enum Kind: String, Hashable, Sendable, Codable, CaseIterable {
        case member, card, lot, ledgerEntry, account, tier, offer, memberOffer, reward, voucher, survey
        case surveyResponse, receiptClaim, profileField, consentChange, conflict, program, allowance
    }

    /// The entity's kind.
    public var kind: Kind
    /// The entity's id within its kind.
    public var id: String

    /// Creates a key.
    public init(_ kind: Kind, _ id: String) {
        self.kind = kind
        self.id = id
    }

    public static func < (lhs: Self, rhs: Self) -> Bool { (lhs.kind.rawValue, lhs.id) < (rhs.kind.rawValue, rhs.id) }

    public var description: String { "\(kind.rawValue)/\(id)" }
}

/// Ledger-wide figures that are not a lot: the points owed after a reversal of spent points.
public struct PointsAccount: Hashable, Sendable, Codable {
    /// Points owed.
    public var owed: Int

    /// Creates an account figure.
    public init(owed: Int) {
        self.owed = owed
    }
}
