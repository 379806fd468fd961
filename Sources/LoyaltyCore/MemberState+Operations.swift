/// What the programme's side does to a member: the till, the operator and the scheduled jobs. These run only on
/// the server, which then sends the changed entities to every device of the member.
extension MemberState {
    /// The till credits a purchase: points at the programme's rate, pending for the return window.
    /// With a card number, that card must be the member's and active; without, any active card will do.
    /// A purchase that earns no points (under one euro) is recorded all the same, so that it can be returned.
    public mutating func recordPurchase(
        _ transaction: TransactionID, amount: Money, card: CardNumber?, at time: Timestamp
    ) throws(LoyaltyError) -> [Entity] {
        try requireCanEarn(card: card)
        let lotID = LotID("purchase:\(transaction)")
        guard ledger.lots[lotID] == nil else {
            throw LoyaltyError(.duplicateTransaction, "transaction '\(transaction)' was already credited")
        }
        let owedBefore = ledger.owed
        let lot = EarnLot(
            id: lotID, cause: .purchase, amount: program.points(for: amount), earnedAt: time,
            pendingUntil: pendingUntil(purchasedAt: time), expiresAt: program.expiryDate(forLotEarnedAt: time),
            purchaseAmount: amount, reference: transaction.rawValue)
        let entries = ledger.earn(lot, entryID: EntryID("earn:\(lotID)"))
        return ledgerChanges(entries, owedBefore: owedBefore) + refreshTier(at: time)
    }

    /// The till records a return against the lot a purchase or receipt earned: points are revoked pro rata.
    /// A return never needs an active card: points must be revoked whatever became of the card.
    public mutating func recordReturn(
        _ returnID: TransactionID, of lot: LotID, amount: Money, at time: Timestamp
    ) throws(LoyaltyError) -> [Entity] {
        let entryID = EntryID("reversal:\(returnID)")
        let owedBefore = ledger.owed
        let entry = try ledger.reverse(
            lot: lot, returned: amount, at: time, entryID: entryID, reference: returnID.rawValue)
        // The returned purchase's points were never the member's to keep: a return is the one thing that may take
        // points the allowances relied on, and then the allowances shrink to fit.
        // The returned lot changed (what was returned, what was revoked) even when nothing was drawn from it: it
        // was spent already, or expired. (Found by the simulator: without it, a later return saw none of this.)
        return ledgerChanges([entry], owedBefore: owedBefore, also: [lot]) + coverAllowances(at: time)
            + refreshTier(at: time)
    }

    /// The till pays with points: the member's points are spent at the counter, never those reserved for the
    /// member's devices. With a card number, that card must be the member's and active.
    public mutating func redeemAtTill(
        _ transaction: TransactionID, points: Int, card: CardNumber?, at time: Timestamp
    ) throws(LoyaltyError) -> [Entity] {
        guard points > 0, points <= 1_000_000 else {
            throw LoyaltyError(.invalidInput, "points must be between 1 and 1000000")
        }
        try requireCanEarn(card: card, doing: "spends")
        let entryID = EntryID("till:\(transaction)")
        guard ledger.available >= program.minimumRedemption else {
            throw LoyaltyError(
                .insufficientPoints,
                "points can be redeemed from \(program.minimumRedemption) on; the balance is \(ledger.available)")
        }
        let reserved = reservedPoints(at: time)
        let owedBefore = ledger.owed
        let spend = try ledger.spend(
            points, at: time, entryID: entryID, reference: transaction.rawValue,
            limit: max(ledger.available - reserved, 0))
        return ledgerChanges([spend], owedBefore: owedBefore) + refreshTier(at: time)
    }

    /// The operator corrects the balance. A positive adjustment is a new active lot, a negative one never takes
    /// the balance below zero.
    public mutating func adjustPoints(
        by points: Int, reason: String, id: String, at time: Timestamp
    ) throws(LoyaltyError) -> [Entity] {
        // A range check, not abs(): abs(Int.min) traps.
        guard points != 0, (-1_000_000...1_000_000).contains(points) else {
            throw LoyaltyError(.invalidInput, "an adjustment must be between -1000000 and 1000000 points and not 0")
        }
        if points < 0, -points > ledger.available - reservedPoints(at: time), -points <= ledger.available {
            throw LoyaltyError(
                .insufficientPoints,
                "an adjustment of \(points) would take points reserved for the member's devices "
                    + "(\(reservedPoints(at: time)) of \(ledger.available)); revoke a device or wait for its allowance")
        }
        let owedBefore = ledger.owed
        let entries = try ledger.adjust(
            by: points, at: time, lot: LotID("adjustment:\(id)"), expiresAt: program.expiryDate(forLotEarnedAt: time),
            entryID: EntryID("adjustment:\(id)"), reason: reason)
        return ledgerChanges(entries, owedBefore: owedBefore) + refreshTier(at: time)
    }

    /// The scheduled jobs: unlock lots past their return window, expire lots past their expiry date, and
    /// re-evaluate the tier. Idempotent: running it twice at the same time changes nothing the second time.
    public mutating func runJobs(at now: Timestamp) -> [Entity] {
        unlockPending(at: now) + expireLots(at: now)
    }

    /// The unlock job: lots past their return window become spendable (paying owed points first). Idempotent.
    public mutating func unlockPending(at now: Timestamp) -> [Entity] {
        let owedBefore = ledger.owed
        let entries = ledger.unlock(at: now)
        return ledgerChanges(entries, owedBefore: owedBefore) + refreshTier(at: now)
    }

    /// The expiry job: allowances whose hold ended lapse, then lots past their expiry date lose what is left.
    /// Allowances draw only on lots that outlive their hold, so expiry never takes reserved points. Idempotent.
    public mutating func expireLots(at now: Timestamp) -> [Entity] {
        let lapsed = lapseAllowances(at: now)
        let owedBefore = ledger.owed
        let entries = ledger.expire(at: now)
        return lapsed + ledgerChanges(entries, owedBefore: owedBefore) + coverAllowances(at: now) + refreshTier(at: now)
    }

    /// Expiry judged at the time of an action: the server calls this before it judges anything a member, a till or
    /// the operator does, so that points past their expiry date are never spent or counted, whether or not the
    /// expiry job has run since. Does what the expiry job does when a lot is due, and nothing (cheaply) otherwise.
    public mutating func expireDue(at now: Timestamp) -> [Entity] {
        guard ledger.hasExpiryDue(at: now) else { return [] }
        return expireLots(at: now)
    }

    /// Issues a card (at enrolment, or as a replacement): every card still active is marked replaced by it.
    public mutating func issueCard(_ number: CardNumber, at time: Timestamp) throws(LoyaltyError) -> [Entity] {
        guard cards[number] == nil else {
            throw LoyaltyError(.invalidCardNumber, "card \(number) was already issued")
        }
        var changes: [Entity] = []
        for var card in cards.values where card.status == .active {
            card.status = .replaced
            card.replacedBy = number
            cards[card.number] = card
            changes.append(.card(card))
        }
        let card = Card(number: number, issuedAt: time)
        cards[number] = card
        changes.append(.card(card))
        return changes
    }

    /// Blocks a card (reported lost, or by the operator): it earns and spends nothing from now on.
    public mutating func blockCard(_ number: CardNumber) throws(LoyaltyError) -> [Entity] {
        guard var card = cards[number] else { throw LoyaltyError(.unknownCard, "card \(number) is not this member's") }
        guard card.status == .active else { return [] }
        card.status = .blocked
        cards[number] = card
        return [.card(card)]
    }

    /// Changes the member's status.
    public mutating func setStatus(_ status: MemberRecord.Status) -> [Entity] {
        guard member.status != status else { return [] }
        member.status = status
        return [.member(member)]
    }

    /// The operator blocks the member (fraud, a lost card): every points action is refused from now on (consents
    /// can still be withdrawn and the profile corrected), and the points reserved for the member's devices return
    /// to the balance. Blocking a blocked member again changes only the reason.
    public mutating func block(reason: String) throws(LoyaltyError) -> [Entity] {
        guard member.status != .erased else {
            throw LoyaltyError(.memberNotActive, "member \(member.id) was erased: there is nothing to block")
        }
        let returned = allowances.keys.sorted().flatMap { revokeAllowance(of: $0) }
        guard member.status != .blocked || member.statusReason != reason else { return returned }
        member.status = .blocked
        member.statusReason = reason
        return returned + [.member(member)]
    }

    /// Erases the member (GDPR Art. 17; docs/privacy.md, "Erasure"): the status becomes `erased`; every profile
    /// field is emptied (its name, time and source stay, the value goes); survey answers and the values of profile
    /// conflicts are removed; segments are cleared; the cards are blocked; the points left are forfeited in one
    /// movement of their own; the devices' allowances end. The consent history stays as it is (kind, decision,
    /// time, source: the proof of consent the law asks to keep); lots, movements and claims keep their amounts and
    /// dates for the programme's books. Idempotent: erasing an erased member changes nothing.
    public mutating func erase(at time: Timestamp) -> [Entity] {
        guard member.status != .erased else { return [] }
        var changes: [Entity] = allowances.keys.sorted().flatMap { revokeAllowance(of: $0) }
        let kind: LedgerEntry.Kind = program.erasedPoints == .payOut ? .payout : .forfeit
        if let entry = ledger.forfeitAll(
            at: time, entryID: EntryID("\(kind.rawValue):erasure"), reference: "erasure", kind: kind)
        {
            changes += [.ledgerEntry(entry)] + entry.draws.compactMap { ledger.lots[$0.lot].map(Entity.lot) }
        }
        for (field, value) in profile.sorted(by: { $0.key.rawValue < $1.key.rawValue }) where value.value != nil {
            var emptied = value
            emptied.value = nil
            profile[field] = emptied
            changes.append(.profileField(emptied))
        }
        for (id, response) in surveyResponses.sorted(by: { $0.key < $1.key }) where !response.answers.isEmpty {
            var emptied = response
            emptied.answers = [:]
            surveyResponses[id] = emptied
            changes.append(.surveyResponse(emptied))
        }
        for (id, conflict) in conflicts.sorted(by: { $0.key < $1.key })
        where conflict.losingValue != nil || conflict.winningValue != nil {
            var emptied = conflict
            emptied.losingValue = nil
            emptied.winningValue = nil
            conflicts[id] = emptied
            changes.append(.conflict(emptied))
        }
        for (number, card) in cards.sorted(by: { $0.key.digits < $1.key.digits }) where card.status == .active {
            var blocked = card
            blocked.status = .blocked
            cards[number] = blocked
            changes.append(.card(blocked))
        }
        member.status = .erased
        member.statusReason = nil
        member.segments = []
        return changes + [.member(member)]
    }

    /// The operator lifts a block; nothing changes for a member who is not blocked.
    public mutating func unblock() -> [Entity] {
        guard member.status == .blocked else { return [] }
        member.status = .active
        member.statusReason = nil
        return [.member(member)]
    }

    /// Places the member in segments (the segmentation job's result).
    public mutating func setSegments(_ segments: Set<String>) -> [Entity] {
        guard member.segments != segments else { return [] }
        member.segments = segments
        return [.member(member)]
    }

    private func requireCanEarn(card number: CardNumber?, doing verb: String = "earns") throws(LoyaltyError) {
        guard member.status == .active else {
            throw LoyaltyError(
                .memberNotActive, "member \(member.id) is \(member.status.rawValue) and \(verb) nothing")
        }
        if let number {
            guard let card = cards[number] else {
                throw LoyaltyError(.unknownCard, "card \(number) is not this member's")
            }
            guard card.status == .active else {
                throw LoyaltyError(.cardNotActive, "card \(number) is \(card.status.rawValue) and \(verb) nothing")
            }
        } else if activeCard == nil {
            throw LoyaltyError(.cardNotActive, "member \(member.id) has no active card and \(verb) nothing")
        }
    }
}
