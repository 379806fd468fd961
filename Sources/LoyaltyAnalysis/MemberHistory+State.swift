public import LoyaltyCore

extension MemberHistory {
    /// What the analysis reads of a member's state (docs/analysis.md, "From the raw events"): purchases are the lots
    /// earned by a purchase at a till or a claimed receipt, at the time they were earned, with their revenue net of
    /// returns; redemptions are the vouchers the server confirmed; points come from the lots (earned: what lots
    /// received and kept; expired: what expired of them; redeemed: what was spent of them); ratings are the answers
    /// to rating questions, put on a scale of 1 to 5.
    public init(_ state: MemberState, at now: Timestamp) {
        var purchases: [PurchaseFact] = []
        var earned = 0
        var expired = 0
        var redeemed = 0
        for lot in state.ledger.lots.values {
            if lot.isQualifying, let amount = lot.purchaseAmount {
                let revenue = max(0, amount.minorUnits - lot.returnedAmount.minorUnits)
                purchases.append(PurchaseFact(at: lot.earnedAt, revenue: Money(minorUnits: revenue)))
            }
            let kept = max(0, lot.amount - lot.revoked)
            earned += kept
            expired += lot.expiredPoints
            redeemed += max(0, kept - lot.expiredPoints - lot.remaining)
        }
        let balance = state.balance(at: now)
        var ratings: [Double] = []
        var answers: [String: [String: String]] = [:]
        for (surveyID, response) in state.surveyResponses {
            answers[surveyID.rawValue] = response.answers
            for question in state.surveys[surveyID]?.questions ?? [] {
                guard case .rating(let maximum) = question.kind, maximum >= 2,
                    let given = response.answers[question.id].flatMap(Int.init), (1...maximum).contains(given)
                else { continue }
                ratings.append(1 + 4 * Double(given - 1) / Double(maximum - 1))
            }
        }
        self.init(
            memberID: state.member.id, enrolledAt: state.member.createdAt, purchases: purchases,
            redemptions: state.vouchers.values.filter { $0.status == .confirmed }.map(\.issuedAt),
            pointsEarned: earned, pointsRedeemed: redeemed, pointsExpired: expired,
            pointsHeld: balance.available + balance.pending, ratings: ratings, tier: state.tier?.tierID,
            birthDate: state.profile[.birthdate]?.value.flatMap { CalendarDate($0) },
            postcode: state.profile[.address]?.value,
            consents: Set(ConsentKind.allCases.filter { state.consents.isGranted($0) }), answers: answers)
    }
}
