/// Everything the app shows for one member, as one value: the programme, the member and cards, the ledger's
/// lots, tier, offers, rewards, vouchers, surveys, receipts, profile and consents.
///
/// The same value runs on both sides: the server keeps the authoritative one; a device keeps the one the server
/// confirmed and replays its pending mutations on a copy to get what the member sees. Ledger entries (history)
/// are produced by the operations and stored beside it, not in it.
public struct MemberState: Hashable, Sendable, Codable {
    /// The programme's rules.
    public var program: Program
    /// The member.
    public var member: MemberRecord
    /// The member's cards, by number.
    public var cards: [CardNumber: Card]
    /// The member's points.
    public var ledger: Ledger
    /// The member's tier, once evaluated.
    public var tier: TierStatus?
    /// Offers the member can see, by id.
    public var offers: [OfferID: Offer]
    /// What the member did with each offer.
    public var memberOffers: [OfferID: MemberOffer]
    /// The reward catalogue.
    public var rewards: [RewardID: Reward]
    /// The member's vouchers.
    public var vouchers: [VoucherID: Voucher]
    /// Surveys the member can answer.
    public var surveys: [SurveyID: Survey]
    /// The member's survey responses.
    public var surveyResponses: [SurveyID: SurveyResponse]
    /// The member's receipt claims, by code.
    public var receiptClaims: [String: ReceiptClaim]
    /// The member's profile, field by field.
    public var profile: [ProfileField: ProfileFieldValue]
    /// Every consent change ever made.
    public var consents: ConsentHistory
    /// Profile writes that lost to others.
    public var conflicts: [String: ConflictRecord]
    /// Points reserved for each device (escrow), by device.
    public var allowances: [DeviceID: Allowance]

    /// A new member with nothing yet.
    public init(program: Program, member: MemberRecord) {
        self.program = program
        self.member = member
        self.cards = [:]
        self.ledger = Ledger()
        self.tier = nil
        self.offers = [:]
        self.memberOffers = [:]
        self.rewards = [:]
        self.vouchers = [:]
        self.surveys = [:]
        self.surveyResponses = [:]
        self.receiptClaims = [:]
        self.profile = [:]
        self.consents = ConsentHistory()
        self.conflicts = [:]
        self.allowances = [:]
    }

    // MARK: What the member sees

    /// The balance screen at `now`.
    public func balance(at now: Timestamp) -> BalanceSummary {
        BalanceSummary(
            available: ledger.available, pending: ledger.pendingPoints,
            expiringSoon: ledger.expiring(within: .days(Int64(program.expiringSoonDays)), at: now),
            owed: ledger.owed)
    }

    /// Each offer's state for this member at `now`, by id.
    public func offerStates(at now: Timestamp) -> [OfferID: OfferState] {
        offers.mapValues { $0.state(for: memberOffers[$0.id], at: now) }
    }

    /// The card in use, if any.
    public var activeCard: Card? {
        cards.values.filter { $0.status == .active }.max { $0.issuedAt < $1.issuedAt }
    }

    /// The current tier (the lowest if not evaluated yet).
    public var currentTier: Tier {
        let ladder = program.tiers.ladder
        return ladder.first { $0.id == tier?.tierID } ?? ladder[0]
    }

    /// Conflict records kept per member: past it, a lost write is still answered `adjusted`, but not logged again.
    public static let conflictRecordLimit = 100
    /// Consent changes kept per member (proof of consent is never deleted): past it, grants are refused and
    /// repeats are not recorded, while a withdrawal that changes a consent is always recorded.
    /// (Twice what a benchmark of 10,000 local changes records: no member comes near it by hand.)
    public static let consentHistoryLimit = 20_000

    /// The value of a profile field, if set.
    public func profileValue(_ field: ProfileField) -> String? { profile[field]?.value }

    /// The whole state as entities: what a bootstrap or reset sends. History (ledger entries) is not included.
    public var entities: [Entity] {
        var result: [Entity] = [.program(program), .member(member), .account(PointsAccount(owed: ledger.owed))]
        result += cards.values.sorted { $0.number < $1.number }.map(Entity.card)
        result += ledger.lots.values.sorted { $0.id < $1.id }.map(Entity.lot)
        if let tier { result.append(.tier(tier)) }
        result += offers.values.sorted { $0.id < $1.id }.map(Entity.offer)
        result += memberOffers.values.sorted { $0.offerID < $1.offerID }.map(Entity.memberOffer)
        result += rewards.values.sorted { $0.id < $1.id }.map(Entity.reward)
        result += vouchers.values.sorted { $0.id < $1.id }.map(Entity.voucher)
        result += surveys.values.sorted { $0.id < $1.id }.map(Entity.survey)
        result += surveyResponses.values.sorted { $0.surveyID < $1.surveyID }.map(Entity.surveyResponse)
        result += receiptClaims.values.sorted { $0.code < $1.code }.map(Entity.receiptClaim)
        result += profile.values.sorted { $0.field.rawValue < $1.field.rawValue }.map(Entity.profileField)
        result += consents.changes.map(Entity.consentChange)
        result += conflicts.values.sorted { $0.id < $1.id }.map(Entity.conflict)
        result += allowances.values.sorted { $0.deviceID < $1.deviceID }.map(Entity.allowance)
        return result
    }

    // MARK: Applying the change feed

    /// Takes an entity exactly as the server sent it. Ledger entries are history and leave the state unchanged.
    public mutating func merge(_ entity: Entity) {
        switch entity {
        case .member(let record): member = record
        case .card(let card): cards[card.number] = card
        case .lot(let lot): ledger.store(lot)
        case .ledgerEntry: break
        case .account(let account): ledger.setOwed(account.owed)
        case .tier(let status): tier = status
        case .offer(let offer): offers[offer.id] = offer
        case .memberOffer(let record): memberOffers[record.offerID] = record
        case .reward(let reward): rewards[reward.id] = reward
        case .voucher(let voucher): vouchers[voucher.id] = voucher
        case .survey(let survey): surveys[survey.id] = survey
        case .surveyResponse(let response): surveyResponses[response.surveyID] = response
        case .receiptClaim(let claim): receiptClaims[claim.code] = claim
        case .profileField(let value): profile[value.field] = value
        case .consentChange(let change): consents.record(change)
        case .conflict(let record): conflicts[record.id] = record
        case .program(let program): self.program = program
        case .allowance(let allowance): allowances[allowance.deviceID] = allowance
        }
    }

    /// Removes an entity the server deleted (a reward taken out of the catalogue, a survey closed).
    public mutating func remove(_ key: EntityKey) {
        switch key.kind {
        case .card: if let number = try? CardNumber(key.id) { cards[number] = nil }
        case .lot: ledger.remove(LotID(key.id))
        case .offer: offers[OfferID(key.id)] = nil
        case .memberOffer: memberOffers[OfferID(key.id)] = nil
        case .reward: rewards[RewardID(key.id)] = nil
        case .voucher: vouchers[VoucherID(key.id)] = nil
        case .survey: surveys[SurveyID(key.id)] = nil
        case .surveyResponse: surveyResponses[SurveyID(key.id)] = nil
        case .receiptClaim: receiptClaims[key.id] = nil
        case .profileField: if let field = ProfileField(rawValue: key.id) { profile[field] = nil }
        case .conflict: conflicts[key.id] = nil
        case .allowance: allowances[DeviceID(key.id)] = nil
        case .member, .ledgerEntry, .account, .tier, .consentChange, .program: break
        }
    }

    /// Applies one change of the feed.
    public mutating func apply(_ change: Change) {
        switch change.operation {
        case .upsert(let entity): merge(entity)
        case .delete(let key): remove(key)
        }
    }
}

/// The balance screen's figures.
public struct BalanceSummary: Hashable, Sendable, Codable {
    /// Spendable points (negative only while points are owed).
    public var available: Int
    /// Points within the return window.
    public var pending: Int
    /// Points expiring within the programme's "soon", per date.
    public var expiringSoon: [ExpiringPoints]
    /// Points owed after a return of points already spent.
    public var owed: Int

    /// Creates a summary.
    public init(available: Int, pending: Int, expiringSoon: [ExpiringPoints], owed: Int) {
        self.available = available
        self.pending = pending
        self.expiringSoon = expiringSoon
        self.owed = owed
    }
}
