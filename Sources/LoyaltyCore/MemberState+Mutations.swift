extension MemberState {
    /// Applies a member's mutation: validates it against this state (and, on the server, the server's facts),
    /// and on success changes the state and returns what changed. A rejected mutation changes nothing.
    ///
    /// The same function runs optimistically on a device and authoritatively on the server.
    ///
    /// The mutation is applied in place, not on a copy: a copy would make the first write to each collection
    /// copy it whole (a ledger of 100,000 lots, a long consent history). This is safe because every operation
    /// below makes all of its checks before it changes anything; `MutationRejectionTests` holds them to it.
    public mutating func apply(_ envelope: MutationEnvelope, context: ApplyContext) -> MutationOutcome {
        if let rejection = envelope.mutation.validateInput() { return .rejected(rejection) }
        do {
            return try perform(envelope, context: context)
        } catch {
            return .rejected(error)
        }
    }

    private mutating func perform(
        _ envelope: MutationEnvelope, context: ApplyContext
    ) throws(MutationRejection) -> MutationOutcome {
        switch envelope.mutation {
        case .activateOffer(let id): return try activateOffer(id, context: context)
        case .redeemOffer(let id): return try redeemOffer(id, context: context)
        case .redeemReward(let id): return try redeemReward(id, envelope: envelope, context: context)
        case .claimReceipt(let code): return try claimReceipt(code, context: context)
        case .answerSurvey(let id, let answers): return try answerSurvey(id, answers: answers, context: context)
        case .setProfileField(let field, let value, let basedOn):
            return try setProfileField(field, value: value, basedOn: basedOn, envelope: envelope, context: context)
        case .setConsent(let kind, let granted):
            return try setConsent(kind, granted: granted, envelope: envelope, context: context)
        case .requestErasure:
            // The server erases; a device shows the request as pending until the server's answer arrives.
            guard case .server = context.authority else { return MutationOutcome(status: .applied) }
            return MutationOutcome(status: .applied, changes: erase(at: context.now))
        }
    }

    // MARK: Checks shared by several mutations

    private func requireActiveMember() throws(MutationRejection) {
        guard member.status == .active else {
            throw MutationRejection(.memberNotActive, "the membership is \(member.status.rawValue)")
        }
    }

    /// Earning and spending need an active card: a blocked or replaced card earns and spends nothing.
    private func requireActiveCard() throws(MutationRejection) {
        try requireActiveMember()
        guard activeCard != nil else {
            throw MutationRejection(.noActiveCard, "there is no active card: earning and spending are paused")
        }
    }

    private func requireNotErased() throws(MutationRejection) {
        guard member.status != .erased else {
            throw MutationRejection(.memberNotActive, "the membership was erased")
        }
    }

    private func offer(_ id: OfferID, usableAt time: Timestamp) throws(MutationRejection) -> Offer {
        guard let offer = offers[id] else {
            throw MutationRejection(.offerNotFound, "there is no offer '\(id)'")
        }
        if let reason = offer.unusableReason(at: time, memberSegments: member.segments) { throw reason }
        return offer
    }

    // MARK: Offers

    private mutating func activateOffer(
        _ id: OfferID, context: ApplyContext
    ) throws(MutationRejection) -> MutationOutcome {
        try requireActiveMember()
        _ = try offer(id, usableAt: context.actedAt)
        var record = memberOffers[id] ?? MemberOffer(offerID: id)
        // Add-wins and idempotent: activating twice (from two devices) is one activation.
        guard record.activatedAt == nil else { return MutationOutcome(status: .applied) }
        record.activatedAt = context.actedAt
        memberOffers[id] = record
        return MutationOutcome(status: .applied, changes: [.memberOffer(record)])
    }

    private mutating func redeemOffer(_ id: OfferID, context: ApplyContext) throws(MutationRejection) -> MutationOutcome
    {
        try requireActiveCard()
        let offer = try offer(id, usableAt: context.actedAt)
        var record = memberOffers[id] ?? MemberOffer(offerID: id)
        if offer.activationRequired && record.activatedAt == nil {
            throw MutationRejection(.offerNotActivated, "the offer '\(offer.title)' must be activated before use")
        }
        guard record.redemptions.count < offer.usesPerMember else {
            let uses = offer.isSingleUse ? "it can be used once" : "all \(offer.usesPerMember) uses are taken"
            throw MutationRejection(.offerAlreadyRedeemed, "the offer '\(offer.title)' was already redeemed: \(uses)")
        }
        record.redemptions.append(context.actedAt)
        memberOffers[id] = record
        return MutationOutcome(status: .applied, changes: [.memberOffer(record)])
    }

    // MARK: Rewards

    private mutating func redeemReward(
        _ id: RewardID, envelope: MutationEnvelope, context: ApplyContext
    ) throws(MutationRejection) -> MutationOutcome {
        try requireActiveCard()
        guard var reward = rewards[id] else { throw MutationRejection(.rewardNotFound, "there is no reward '\(id)'") }
        guard reward.isActive else {
            throw MutationRejection(.rewardUnavailable, "the reward '\(reward.title)' can no longer be redeemed")
        }
        let facts = context.serverFacts
        let stock = facts.map(\.stock) ?? reward.stock
        if let stock, stock <= 0 {
            throw MutationRejection(.rewardOutOfStock, "the reward '\(reward.title)' is out of stock")
        }
        // Points reserved for the member's other devices are theirs to spend; this device's own are included.
        let device = envelope.deviceID
        let spendable = max(ledger.available - reservedPoints(at: context.now, excluding: device), 0)
        guard reward.cost <= spendable else {
            if facts != nil, spendable + ledger.pointsExpired(since: context.actedAt) >= reward.cost {
                throw MutationRejection(
                    .pointsExpired,
                    "the reward '\(reward.title)' costs \(reward.cost) points, but points expired before the "
                        + "redemption reached the programme; \(spendable) are left")
            }
            let reserved = ledger.available > spendable ? " (the rest is reserved for your other devices)" : ""
            throw MutationRejection(
                .insufficientPoints,
                "the reward '\(reward.title)' costs \(reward.cost) points; only \(spendable) are available\(reserved)")
        }
        guard ledger.available >= program.minimumRedemption else {
            throw MutationRejection(
                .belowMinimumRedemption,
                "points can be redeemed from \(program.minimumRedemption) on; the balance is \(ledger.available)")
        }
        // On the device: a redemption its allowance covers while the lease runs is certain to be accepted.
        let covered = (allowances[device]?.spendable(at: context.actedAt) ?? 0) >= reward.cost
        let owedBefore = ledger.owed
        let spend: LedgerEntry
        do {
            spend = try ledger.spend(
                reward.cost, at: context.now, entryID: EntryID("spend:\(envelope.mutationID)"),
                reference: "reward:\(id)", limit: spendable)
        } catch {
            // Unreachable: the cost was checked against what can be spent just above.
            throw MutationRejection(.insufficientPoints, error.message)
        }
        let voucher = Voucher(
            id: VoucherID(envelope.mutationID), rewardID: id, code: facts?.voucherCode, cost: reward.cost,
            status: facts != nil ? .confirmed : covered ? .guaranteed : .provisional, issuedAt: context.now)
        vouchers[voucher.id] = voucher
        if let stock {
            reward.stock = stock - 1
            rewards[id] = reward
        }
        var changes = ledgerChanges([spend], owedBefore: owedBefore)
        changes += useAllowance(of: device, points: reward.cost, at: context.now)
        changes.append(.voucher(voucher))
        if stock != nil { changes.append(.reward(reward)) }
        changes += refreshTier(at: context.now)
        return MutationOutcome(status: .applied, changes: changes, stockTaken: stock == nil ? nil : id)
    }

    // MARK: Receipts

    private mutating func claimReceipt(
        _ code: String, context: ApplyContext
    ) throws(MutationRejection) -> MutationOutcome {
        try requireActiveCard()
        if receiptClaims[code] != nil {
            throw MutationRejection(.receiptAlreadyClaimed, "the receipt \(code) was already claimed by this member")
        }
        guard let facts = context.serverFacts else {
            // A device cannot see receipts: it records the claim, and the points arrive when the server credits it.
            let claim = ReceiptClaim(code: code, status: .submitted, points: nil, claimedAt: context.actedAt)
            receiptClaims[code] = claim
            return MutationOutcome(status: .applied, changes: [.receiptClaim(claim)])
        }
        guard let receipt = facts.receipt, receipt.code == code else {
            throw MutationRejection(.receiptNotFound, "there is no receipt \(code): check the code on the receipt")
        }
        guard receipt.claimedBy == nil else {
            throw MutationRejection(.receiptAlreadyClaimed, "the receipt \(code) was already claimed")
        }
        let deadline = receipt.purchasedAt.adding(.days(Int64(program.receiptClaimDays)))
        guard context.actedAt <= deadline else {
            throw MutationRejection(
                .receiptTooOld, "receipts can be claimed within \(program.receiptClaimDays) days of the purchase")
        }
        let owedBefore = ledger.owed
        let points = program.points(for: receipt.amount)
        let lot = EarnLot(
            id: LotID("receipt:\(code)"), cause: .receiptClaim, amount: points, earnedAt: context.now,
            pendingUntil: pendingUntil(purchasedAt: receipt.purchasedAt),
            expiresAt: program.expiryDate(forLotEarnedAt: context.now),
            purchaseAmount: receipt.amount, reference: code)
        let entries = ledger.earn(lot, entryID: EntryID("earn:\(lot.id)"))
        let claim = ReceiptClaim(code: code, status: .credited, points: points, claimedAt: context.actedAt)
        receiptClaims[code] = claim
        var changes = ledgerChanges(entries, owedBefore: owedBefore)
        changes.append(.receiptClaim(claim))
        changes += refreshTier(at: context.now)
        return MutationOutcome(status: .applied, changes: changes, claimedReceipt: code)
    }

    // MARK: Surveys

    private mutating func answerSurvey(
        _ id: SurveyID, answers: [String: String], context: ApplyContext
    ) throws(MutationRejection) -> MutationOutcome {
        try requireActiveCard()
        guard let survey = surveys[id] else { throw MutationRejection(.surveyNotFound, "there is no survey '\(id)'") }
        guard surveyResponses[id] == nil else {
            throw MutationRejection(.surveyAlreadyAnswered, "the survey '\(survey.title)' was already answered")
        }
        if let closesAt = survey.closesAt, context.actedAt > closesAt {
            throw MutationRejection(.surveyClosed, "the survey '\(survey.title)' closed at \(closesAt)")
        }
        if let rejection = survey.validate(answers) { throw rejection }
        let response = SurveyResponse(
            surveyID: id, answers: answers, answeredAt: context.actedAt, points: survey.points)
        surveyResponses[id] = response
        var changes: [Entity] = [.surveyResponse(response)]
        if survey.points > 0 {
            let owedBefore = ledger.owed
            let lot = EarnLot(
                id: LotID("survey:\(id)"), cause: .survey, amount: survey.points, earnedAt: context.now,
                pendingUntil: nil, expiresAt: program.expiryDate(forLotEarnedAt: context.now), reference: id.rawValue)
            // Earn first, then read the ledger: `ledgerChanges(ledger.earn(...))` would read the ledger before the earn.
            let entries = ledger.earn(lot, entryID: EntryID("earn:\(lot.id)"))
            changes += ledgerChanges(entries, owedBefore: owedBefore)
        }
        return MutationOutcome(status: .applied, changes: changes)
    }

    // MARK: Profile and consents

    private mutating func setProfileField(
        _ field: ProfileField, value: String?, basedOn: HLCTimestamp?, envelope: MutationEnvelope, context: ApplyContext
    ) throws(MutationRejection) -> MutationOutcome {
        try requireNotErased()
        let today = CalendarDate.of(context.now, in: program.zone)
        let cleaned: String?
        switch field.validate(value, today: today) {
        case .success(let value): cleaned = value
        case .failure(let rejection): throw rejection
        }
        let incoming = ProfileFieldValue(
            field: field, value: cleaned, stamp: envelope.stamp, source: .device(envelope.deviceID))
        guard let current = profile[field] else {
            profile[field] = incoming
            return MutationOutcome(status: .applied, changes: [.profileField(incoming)])
        }
        let conflictID = "conflict:\(envelope.mutationID)"
        if current.wins(over: incoming) {
            // This write lost to a later one: keep what the member typed in the conflict log.
            guard current.value != incoming.value else { return MutationOutcome(status: .applied) }
            let record = ConflictRecord(
                id: conflictID, field: field, losingValue: incoming.value, losingSource: incoming.source,
                winningValue: current.value, winningSource: current.source, decidedAt: context.now)
            let kept = conflicts.count < Self.conflictRecordLimit
            if kept { conflicts[record.id] = record }
            return MutationOutcome(
                status: .adjusted(
                    message:
                        "your change to \(field.rawValue) was not kept: a later change (from \(current.source)) was"),
                changes: kept ? [.conflict(record)] : [])
        }
        profile[field] = incoming
        var changes: [Entity] = [.profileField(incoming)]
        // Overwriting a value this device had not seen is a concurrent edit: the overwritten value is logged,
        // and its author will be told. Overwriting the value it had seen is an ordinary edit.
        if current.stamp != basedOn && current.value != incoming.value {
            let record = ConflictRecord(
                id: conflictID, field: field, losingValue: current.value, losingSource: current.source,
                winningValue: incoming.value, winningSource: incoming.source, decidedAt: context.now)
            if conflicts.count < Self.conflictRecordLimit {
                conflicts[record.id] = record
                changes.append(.conflict(record))
            }
        }
        return MutationOutcome(status: .applied, changes: changes)
    }

    private mutating func setConsent(
        _ kind: ConsentKind, granted: Bool, envelope: MutationEnvelope, context: ApplyContext
    ) throws(MutationRejection) -> MutationOutcome {
        // Withdrawing consent must stay as easy as giving it (GDPR Art. 7(3)): a blocked member can still withdraw.
        if granted { try requireActiveMember() } else { try requireNotErased() }
        let change = ConsentChange(
            id: "consent:\(envelope.mutationID)", kind: kind, granted: granted, stamp: envelope.stamp,
            at: context.actedAt, source: .device(envelope.deviceID))
        if consents.changes.count >= Self.consentHistoryLimit {
            // The history is full: it grows no further by grants or repeats, while a withdrawal that changes the
            // value is always recorded (withdrawing must stay possible), at most one per kind.
            let current = consents.isGranted(kind)
            if granted {
                throw MutationRejection(
                    .invalidInput,
                    "this member's consent history holds \(Self.consentHistoryLimit) changes, the most kept: "
                        + "granting \(kind.rawValue) again needs customer service")
            }
            guard current else {
                return MutationOutcome(status: .adjusted(message: "\(kind.rawValue) is withdrawn already"))
            }
        }
        consents.record(change)
        let winner = consents.current(kind)
        guard let winner, winner.id != change.id else {
            return MutationOutcome(status: .applied, changes: [.consentChange(change)])
        }
        let state = winner.granted ? "granted" : "withdrawn"
        return MutationOutcome(
            status: .adjusted(
                message:
                    "kept in the history, but a later change (from \(winner.source)) left \(kind.rawValue) \(state)"),
            changes: [.consentChange(change)])
    }

    // MARK: Helpers shared with the operator's operations

    func pendingUntil(purchasedAt: Timestamp) -> Timestamp? {
        program.returnWindowEnd(forPurchaseAt: purchasedAt)
    }

    /// The entities a set of ledger movements changed: the movements, every lot they drew from or `also` names
    /// (a lot a return updated without drawing from it), the owed figure.
    func ledgerChanges(_ entries: [LedgerEntry], owedBefore: Int, also: [LotID] = []) -> [Entity] {
        var changes = entries.map(Entity.ledgerEntry)
        var seen: Set<LotID> = []
        for id in entries.flatMap(\.draws).map(\.lot) + also where seen.insert(id).inserted {
            if let lot = ledger.lots[id] { changes.append(.lot(lot)) }
        }
        if ledger.owed != owedBefore { changes.append(.account(PointsAccount(owed: ledger.owed))) }
        return changes
    }

    /// Re-evaluates the tier at `now`; returns the tier entity if it changed.
    ///
    /// A tier above the lowest is first evaluated at each moment since it was last evaluated at which a qualifying
    /// lot was about to leave the window (its last moment inside), as an evaluator watching without pause would
    /// have: the tier's retention then runs from the last moment the points qualified, however long ago the last
    /// evaluation was. So the outcome does not depend on when the jobs happened to run.
    public mutating func refreshTier(at now: Timestamp) -> [Entity] {
        var next = tier
        if let current = tier, program.tiers.index(of: current.tierID) > 0 {
            for instant in tierInstants(after: current.since, before: now) {
                let points = ledger.qualifyingPoints(
                    from: program.qualificationWindowStart(at: instant), through: instant)
                next = program.evaluateTier(current: next, qualifyingPoints: points, at: instant)
            }
        }
        let qualifying = ledger.qualifyingPoints(from: program.qualificationWindowStart(at: now), through: now)
        let evaluated = program.evaluateTier(current: next, qualifyingPoints: qualifying, at: now)
        guard evaluated != tier else { return [] }
        tier = evaluated
        return [.tier(evaluated)]
    }
}
