/// An offer (coupon) from the programme: targeted at segments or everyone, valid within a window, possibly to
/// be activated ("clipped") before use, usable once or a set number of times per member.
public struct Offer: Hashable, Sendable, Codable, Identifiable {
    /// The offer's id.
    public var id: OfferID
    /// Title shown to members.
    public var title: String
    /// Text shown to members.
    public var details: String
    /// Segments it is targeted at; empty means every member.
    public var segments: Set<String>
    /// First moment it may be used.
    public var validFrom: Timestamp
    /// Last moment it may be used; nil if open-ended.
    public var validUntil: Timestamp?
    /// Whether a member must activate it before redeeming it.
    public var activationRequired: Bool
    /// How many times one member may redeem it (1 for single-use).
    public var usesPerMember: Int
    /// When the operator withdrew it, if it was withdrawn.
    public var withdrawnAt: Timestamp?

    /// Creates an offer.
    public init(
        id: OfferID, title: String, details: String = "", segments: Set<String> = [], validFrom: Timestamp,
        validUntil: Timestamp?, activationRequired: Bool = false, usesPerMember: Int = 1, withdrawnAt: Timestamp? = nil
    ) {
        self.id = id
        self.title = title
        self.details = details
        self.segments = segments
        self.validFrom = validFrom
        self.validUntil = validUntil
        self.activationRequired = activationRequired
        self.usesPerMember = usesPerMember
        self.withdrawnAt = withdrawnAt
    }

    /// Whether the offer is single-use.
    public var isSingleUse: Bool { usesPerMember == 1 }

    /// Whether a member in these segments is targeted.
    public func targets(_ memberSegments: Set<String>) -> Bool {
        segments.isEmpty || !segments.isDisjoint(with: memberSegments)
    }

    /// Why the offer could not be used at `time` by a member in `memberSegments`, or nil if it could.
    public func unusableReason(at time: Timestamp, memberSegments: Set<String>) -> MutationRejection? {
        if let withdrawnAt, withdrawnAt <= time {
            return MutationRejection(.offerWithdrawn, "the offer '\(title)' was withdrawn by the programme")
        }
        if time < validFrom {
            return MutationRejection(.offerNotYetValid, "the offer '\(title)' is valid only from \(validFrom)")
        }
        if let validUntil, time > validUntil {
            return MutationRejection(.offerExpired, "the offer '\(title)' expired at \(validUntil)")
        }
        if !targets(memberSegments) {
            return MutationRejection(.offerNotTargeted, "the offer '\(title)' is not available to this member")
        }
        return nil
    }
}

/// What one member did with one offer.
public struct MemberOffer: Hashable, Sendable, Codable {
    /// The offer.
    public var offerID: OfferID
    /// When the member activated it, if they did.
    public var activatedAt: Timestamp?
    /// When the member redeemed it, once per use.
    public var redemptions: [Timestamp]

    /// Creates a member's offer record.
    public init(offerID: OfferID, activatedAt: Timestamp? = nil, redemptions: [Timestamp] = []) {
        self.offerID = offerID
        self.activatedAt = activatedAt
        self.redemptions = redemptions
    }
}

/// An offer as one member sees it.
public enum OfferState: String, Hashable, Sendable, Codable, CaseIterable {
    /// Can be activated (or redeemed, if no activation is needed).
    case available
    /// Activated and ready to redeem.
    case activated
    /// All uses redeemed.
    case redeemed
    /// Past its validity window.
    case expired
    /// Withdrawn by the programme.
    case withdrawn
}

extension Offer {
    /// The state a member sees at `now`. Redeemed wins over expiry and withdrawal: what was used stays used.
    public func state(for memberOffer: MemberOffer?, at now: Timestamp) -> OfferState {
        if let memberOffer, memberOffer.redemptions.count >= usesPerMember { return .redeemed }
        if let withdrawnAt, withdrawnAt <= now { return .withdrawn }
        if let validUntil, now > validUntil { return .expired }
        if memberOffer?.activatedAt != nil { return .activated }
        return .available
    }
}
