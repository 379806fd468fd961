internal import LoyaltyCore

/// What the member reads: the English wording of notices, in one place.
enum NoticeWording {
    /// The server carried out the member's action differently (fewer points, another voucher).
    static func adjusted(_ mutation: Mutation, _ message: String) -> String { describe(mutation) + ": " + message }

    /// The server refused the member's action, and what undoing it on the device restored.
    static func refused(_ mutation: Mutation, _ rejection: MutationRejection) -> String {
        "\(describe(mutation)) was refused: \(rejection.message). " + undone(mutation)
    }

    /// The device's copy was rebuilt from the server.
    static let reset =
        "this device was away longer than the programme keeps changes, so its copy was rebuilt from the server; "
        + "changes made here that were not yet sent are kept and will be sent"

    /// A profile change of this device lost to a later one.
    static func replaced(_ record: ConflictRecord) -> String {
        "your change to \(record.field.rawValue) ('\(record.losingValue ?? "cleared")') was replaced by a later "
            + "change from \(record.winningSource): '\(record.winningValue ?? "cleared")'"
    }

    /// The member's action in words.
    static func describe(_ mutation: Mutation) -> String {
        switch mutation {
        case .activateOffer(let id): "activating offer \(id)"
        case .redeemOffer(let id): "using offer \(id)"
        case .redeemReward(let id): "redeeming reward \(id)"
        case .claimReceipt(let code): "claiming receipt \(code)"
        case .answerSurvey(let id, _): "answering survey \(id)"
        case .setProfileField(let field, _, _): "changing your \(field.rawValue)"
        case .setConsent(let kind, let granted): "\(granted ? "granting" : "withdrawing") \(kind.rawValue) consent"
        case .requestErasure: "asking for your data to be erased"
        }
    }

    /// What undoing a refused mutation restored.
    static func undone(_ mutation: Mutation) -> String {
        switch mutation {
        case .redeemReward: "The points were restored and the provisional voucher withdrawn."
        case .redeemOffer: "The offer is shown as it is on the server again."
        case .activateOffer: "The offer is not activated."
        case .claimReceipt: "No points were credited for it."
        case .answerSurvey: "No points were credited for it."
        case .setProfileField: "Your profile shows the value the server keeps."
        case .setConsent: "Your consent shows the value the server keeps."
        case .requestErasure: "Nothing was erased."
        }
    }
}
