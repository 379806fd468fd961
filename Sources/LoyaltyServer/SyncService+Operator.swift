internal import Foundation
internal import Logging
public import LoyaltyCore
internal import Prometheus

/// What an operator's action created or moved.
public struct OperatorReceipt: Sendable, Hashable {
    /// The id of what was created (an offer, a reward, a receipt's code, a card's number, a transaction).
    public var id: String
    /// The member concerned, if any.
    public var memberID: MemberID?
    /// Points credited or revoked, for a purchase or a return.
    public var points: Int?
    /// A new card's number.
    public var number: String?
    /// A new receipt's code.
    public var code: String?
}

/// A member as the back office sees it.
public struct MemberOverview: Sendable {
    /// The member's state on the server.
    public var state: MemberState
    /// The member's account (e-mail, whether sign-in is blocked).
    public var account: AccountRecord
    /// The member's devices, revoked ones included.
    public var devices: [DeviceRecord]
}

/// What a job run did.
public struct JobReport: Sendable, Hashable {
    /// The job's name (`unlock`, `expire`, `segment`).
    public var job: String
    /// Members the job changed (for `segment`: whose figures or segments changed).
    public var members: Int
    /// Ledger movements the job made (for `segment`: members entering or leaving segments).
    public var movements: Int
}

/// The jobs that run on a schedule and on demand.
public enum Job: String, Sendable, CaseIterable {
    case unlock, expire
    /// The segment job (docs/analysis.md): figures, stages and rule-based segments.
    case segment
}

extension SyncService {
    /// The server's current time (the test clock's, if one is in use).
    public var now: Timestamp { clock.now() }

    /// Whether the operator may move the clock.
    public var hasTestClock: Bool { clock.isAdjustable }

    /// Moves the test clock.
    public func setClock(to time: Timestamp?, advanceBy span: TimeSpan?) throws -> Timestamp {
        switch (time, span) {
        case (let time?, nil): try clock.set(time)
        case (nil, let span?): try clock.advance(by: span)
        default:
            throw APIFailure(
                .unprocessable, "give exactly one of set (a date-time) or advance (a duration such as 15d)")
        }
        logger.notice("test clock moved", metadata: ["now": "\(clock.now())"])
        return clock.now()
    }

    /// Runs a member-level unit of work for the operator, turning domain refusals into 422s. An action first
    /// expires what is due by now (expiry is judged at the time of the action, whether or not the expiry job has run
    /// since); a read (`expiringFirst: false`) changes nothing.
    private func operate<T: Sendable>(
        on member: MemberID, expiringFirst: Bool = true, _ body: @Sendable @escaping (inout MemberWork) throws -> T
    ) async throws -> T {
        do {
            return try await storage.withMember(MemberWorkRequest(memberID: member, now: clock.now())) { work in
                if expiringFirst { work.write(work.state.expireDue(at: work.now)) }
                return try body(&work)
            }
        } catch let error as LoyaltyError where error.code == .unknownMember {
            throw APIFailure(.notFound, error.message)
        } catch let error as LoyaltyError where error.code == .duplicate || error.code == .duplicateTransaction {
            throw APIFailure(.conflict, error.message)
        } catch let error as LoyaltyError
            where error.code != .unusableStore && error.code != .locked && error.code != .unavailable
        {
            throw APIFailure(.unprocessable, error.message)
        }
    }

    // MARK: Till

    /// The till credits a purchase to a card (as scanned) or a member, in a shop, with the basket's categories.
    public func recordPurchase(
        amount text: String, card cardText: String?, member memberText: String?, receiptCode: String?,
        transaction transactionText: String?, shop: String? = nil, categories: [String] = []
    ) async throws -> OperatorReceipt {
        let amount = try Self.money(text, field: "amount")
        try Self.checkTillPlace(shop: shop, categories: categories)
        let (memberID, card) = try await tillCustomer(card: cardText, member: memberText)
        let transaction = try await newTransaction(transactionText)
        if let receiptCode {
            guard Receipt.isWellFormedCode(receiptCode) else {
                throw APIFailure(
                    .unprocessable,
                    "receiptCode \(receiptCode.quoted) is not a receipt code (4 to 32 capitals, digits or dashes)")
            }
            if let (receipt, _) = try await storage.receipt(code: receiptCode) {
                guard receipt.claimedBy == nil else {
                    throw APIFailure(.conflict, "receipt \(receiptCode) was already credited")
                }
            } else {
                try await storage.insertReceipt(
                    Receipt(code: receiptCode, amount: amount, shop: shop ?? "till", purchasedAt: clock.now()))
            }
        }
        let scanned = card
        let points = try await operate(on: memberID) { work in
            let lotID = LotID("purchase:\(transaction)")
            let changes = try work.state.recordPurchase(transaction, amount: amount, card: scanned, at: work.now)
            work.write(changes)
            work.record(
                TransactionRecord(
                    id: transaction, kind: .purchase, memberID: work.state.member.id, lot: lotID,
                    receiptCode: receiptCode, shop: shop, categories: categories))
            return work.state.ledger.lots[lotID]?.amount ?? 0
        }
        logger.info(
            "purchase", metadata: ["member": "\(memberID)", "transaction": "\(transaction)", "points": "\(points)"])
        return OperatorReceipt(id: transaction.rawValue, memberID: memberID, points: points)
    }

    /// The till pays with points (a card scanned, or a member): never with points reserved for the member's
    /// devices.
    public func redeemAtTill(
        points: Int, card cardText: String?, member memberText: String?, transaction transactionText: String?,
        shop: String? = nil
    ) async throws -> OperatorReceipt {
        try Self.checkTillPlace(shop: shop, categories: [])
        let (memberID, card) = try await tillCustomer(card: cardText, member: memberText)
        let transaction = try await newTransaction(transactionText)
        try await operate(on: memberID) { work in
            work.write(try work.state.redeemAtTill(transaction, points: points, card: card, at: work.now))
            work.record(
                TransactionRecord(
                    id: transaction, kind: .redemption, memberID: work.state.member.id, lot: nil, receiptCode: nil,
                    shop: shop))
        }
        logger.info(
            "till redemption",
            metadata: ["member": "\(memberID)", "transaction": "\(transaction)", "points": "\(points)"])
        return OperatorReceipt(id: transaction.rawValue, memberID: memberID, points: -points)
    }

    /// A till's shop (1 to 64 characters, no control characters) and basket categories (at most 10 different, each
    /// 1 to 32 lower-case letters, digits or '-'), as docs/openapi.yaml states them.
    static func checkTillPlace(shop: String?, categories: [String]) throws {
        if let shop { try checkText(shop, "shop", maximum: 64) }
        guard categories.count <= 10, Set(categories).count == categories.count else {
            throw APIFailure(.unprocessable, "categories: at most 10, each once")
        }
        for category in categories {
            guard (1...32).contains(category.utf8.count),
                category.utf8.allSatisfy({ (0x61...0x7A).contains($0) || (0x30...0x39).contains($0) || $0 == 0x2D })
            else {
                throw APIFailure(
                    .unprocessable,
                    "category \(category.quoted) must be 1 to 32 lower-case letters, digits or '-' (e.g. food)")
            }
        }
    }

    /// Text an operator or a till gives (a shop, a reason for a block or an erasure): 1 to `maximum` characters as
    /// input limits count them, and no control characters (it is shown on devices and in the console).
    static func checkText(_ text: String, _ field: String, maximum: Int) throws {
        guard (1...maximum).contains(text.inputLength),
            !text.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F })
        else {
            throw APIFailure(.unprocessable, "\(field) must be 1 to \(maximum) characters without control characters")
        }
    }

    /// The member a till names, by the card scanned or by id, and the card if one was scanned.
    private func tillCustomer(
        card cardText: String?, member memberText: String?
    ) async throws -> (
        MemberID, CardNumber?
    ) {
        var card: CardNumber?
        if let cardText {
            do { card = try CardNumber(cardText) } catch {
                throw APIFailure(.unprocessable, "cardNumber: \(error.message)")
            }
        }
        switch (card, memberText) {
        case (.some(let card), nil):
            guard let owner = try await storage.cardOwner(card) else {
                throw APIFailure(.notFound, "card \(card) is not a card of this programme")
            }
            return (owner, card)
        case (nil, .some(let text)): return (MemberID(text), nil)
        default: throw APIFailure(.unprocessable, "give exactly one of cardNumber or memberID")
        }
    }

    /// A till's transaction id (generated when the till gives none), checked to be new.
    private func newTransaction(_ text: String?) async throws -> TransactionID {
        let transaction = TransactionID(text ?? makeRandomID("T-"))
        guard transaction.isWellFormed else {
            throw APIFailure(.unprocessable, "transactionID \(transaction.rawValue.quoted) is not a valid id")
        }
        if try await storage.transaction(transaction) != nil {
            throw APIFailure(.conflict, "transaction \(transaction) was already recorded")
        }
        return transaction
    }

    /// The till records a return of (part of) a purchase, named by its receipt or its transaction.
    public func recordReturn(
        amount text: String, receiptCode: String?, transaction transactionText: String?, returnID: String?,
        shop: String? = nil, categories: [String] = []
    ) async throws -> OperatorReceipt {
        let amount = try Self.money(text, field: "amount")
        try Self.checkTillPlace(shop: shop, categories: categories)
        let memberID: MemberID
        let lot: LotID
        switch (receiptCode, transactionText) {
        case (let code?, nil):
            guard let (receipt, lotID) = try await storage.receipt(code: code), let owner = receipt.claimedBy, let lotID
            else {
                throw APIFailure(.notFound, "receipt \(code) was not credited to any member: nothing to revoke")
            }
            (memberID, lot) = (owner, lotID)
        case (nil, let text?):
            guard let record = try await storage.transaction(TransactionID(text)), record.kind == .purchase,
                let lotID = record.lot
            else { throw APIFailure(.notFound, "there is no purchase \(text)") }
            (memberID, lot) = (record.memberID, lotID)
        default:
            throw APIFailure(.unprocessable, "give exactly one of receiptCode or transactionID")
        }
        let returnTransaction = TransactionID(returnID ?? makeRandomID("RT-"))
        if try await storage.transaction(returnTransaction) != nil {
            throw APIFailure(.conflict, "return \(returnTransaction) was already recorded")
        }
        let revoked = try await operate(on: memberID) { work in
            let changes = try work.state.recordReturn(returnTransaction, of: lot, amount: amount, at: work.now)
            work.write(changes)
            work.record(
                TransactionRecord(
                    id: returnTransaction, kind: .return, memberID: work.state.member.id, lot: lot,
                    receiptCode: receiptCode, shop: shop, categories: categories))
            return changes.reduce(0) { sum, entity in
                if case .ledgerEntry(let entry) = entity { return sum - entry.points }
                return sum
            }
        }
        logger.info(
            "return", metadata: ["member": "\(memberID)", "return": "\(returnTransaction)", "points": "\(revoked)"])
        return OperatorReceipt(id: returnTransaction.rawValue, memberID: memberID, points: revoked)
    }

    /// Issues a receipt a member can claim in the app.
    public func issueReceipt(
        amount text: String, code: String?, shop: String?, purchasedAt: Timestamp?
    ) async throws -> OperatorReceipt {
        let amount = try Self.money(text, field: "amount")
        try Self.checkTillPlace(shop: shop, categories: [])
        let code = code ?? makeRandomID("R-")
        guard Receipt.isWellFormedCode(code) else {
            throw APIFailure(
                .unprocessable, "code \(code.quoted) is not a receipt code (4 to 32 capitals, digits or dashes)")
        }
        do {
            try await storage.insertReceipt(
                Receipt(code: code, amount: amount, shop: shop ?? "store", purchasedAt: purchasedAt ?? clock.now()))
        } catch let error as LoyaltyError where error.code == .duplicate {
            throw APIFailure(.conflict, "receipt \(code) exists already")
        }
        return OperatorReceipt(id: code, code: code)
    }

    // MARK: Members

    /// Corrects a member's points.
    public func adjustPoints(member: MemberID, points: Int, reason: String) async throws -> OperatorReceipt {
        let reason = reason.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !reason.isEmpty, reason.inputLength <= 200 else {
            throw APIFailure(.unprocessable, "reason must be 1 to 200 characters")
        }
        let id = makeRandomID("ADJ-")
        try await operate(on: member) { work in
            work.write(try work.state.adjustPoints(by: points, reason: reason, id: id, at: work.now))
        }
        logger.info("adjustment", metadata: ["member": "\(member)", "points": "\(points)"])
        return OperatorReceipt(id: "adjustment:\(id)", memberID: member, points: points)
    }

    /// Issues a new card; the member's active cards become replaced.
    public func replaceCard(member: MemberID) async throws -> OperatorReceipt {
        for _ in 0..<5 {
            let number = try newCardNumber()
            if try await storage.cardOwner(number) != nil { continue }
            try await operate(on: member) { work in
                work.write(try work.state.issueCard(number, at: work.now))
                work.register(card: number)
            }
            logger.info("card replaced", metadata: ["member": "\(member)"])
            return OperatorReceipt(id: number.digits, memberID: member, number: number.digits)
        }
        throw APIFailure(.internalError, "could not draw a free card number; try again")
    }

    /// Places a member in segments.
    public func setSegments(member: MemberID, segments: [String]) async throws {
        let clean = Set(segments.map { $0.trimmingCharacters(in: .whitespaces) })
        guard clean.allSatisfy({ Identifier<Offer>($0).isWellFormed }) else {
            throw APIFailure(.unprocessable, "segments must be ids of letters, digits, '-', '_', '.' or ':'")
        }
        try await operate(on: member) { work in work.write(work.state.setSegments(clean)) }
    }

    /// Blocks sign-in to an account (its devices are signed out) or allows it again.
    public func setSignInBlocked(member: MemberID, blocked: Bool) async throws {
        guard try await storage.setSignInBlocked(member: member, blocked: blocked) else {
            throw APIFailure(.notFound, "there is no member \(member)")
        }
        if blocked { try await signOut(member: member, except: nil, reason: .blocked) }
        logger.notice(
            "security: sign-in \(blocked ? "blocked" : "allowed again") by the operator",
            metadata: ["member": "\(member)"])
    }

    /// A member's whole account.
    public func overview(of member: MemberID) async throws -> MemberOverview {
        guard let account = try await storage.account(member: member) else {
            throw APIFailure(.notFound, "there is no member \(member)")
        }
        let state = try await operate(on: member, expiringFirst: false) { $0.state }
        return MemberOverview(state: state, account: account, devices: try await storage.devices(member: member))
    }

    /// Members in id order, a page at a time.
    public func members(after: MemberID?, limit: Int) async throws -> [MemberOverview] {
        guard (1...500).contains(limit) else {
            throw APIFailure(.unprocessable, "limit must be from 1 to 500, not \(limit)")
        }
        var result: [MemberOverview] = []
        for id in try await storage.memberIDs(after: after, limit: limit) {
            result.append(try await overview(of: id))
        }
        return result
    }

    /// Revokes any device.
    public func revokeAnyDevice(_ id: DeviceID) async throws {
        guard let device = try await storage.device(id), try await storage.revokeDevice(id, at: clock.now()) else {
            throw APIFailure(.notFound, "there is no device \(id)")
        }
        try await returnAllowance(of: device)
        logger.info("device revoked by the operator", metadata: ["device": "\(id)"])
    }

    // MARK: Catalogue

    /// Publishes an offer.
    public func createOffer(_ offer: Offer) async throws -> OperatorReceipt {
        try await publish(.offer(offer), in: Catalogue(offers: [offer])) { $0.offers.contains { $0.id == offer.id } }
    }

    /// Withdraws an offer from now on.
    public func withdrawOffer(_ id: OfferID) async throws {
        let now = clock.now()
        try await storage.withCatalogue(now: now) { work in
            guard var offer = work.catalogue.offers.first(where: { $0.id == id }) else {
                throw APIFailure(.notFound, "there is no offer \(id)")
            }
            guard offer.withdrawnAt == nil else { return }
            offer.withdrawnAt = now
            work.write([.offer(offer)])
        }
        logger.info("offer withdrawn", metadata: ["offer": "\(id)"])
    }

    /// Adds a reward.
    public func createReward(_ reward: Reward) async throws -> OperatorReceipt {
        try await publish(.reward(reward), in: Catalogue(rewards: [reward])) {
            $0.rewards.contains { $0.id == reward.id }
        }
    }

    /// Publishes a survey.
    public func createSurvey(_ survey: Survey) async throws -> OperatorReceipt {
        try await publish(.survey(survey), in: Catalogue(surveys: [survey])) {
            $0.surveys.contains { $0.id == survey.id }
        }
    }

    /// Validates a new catalogue item and writes it unless its id is taken.
    private func publish(
        _ entity: Entity, in catalogue: Catalogue, exists: @escaping @Sendable (Catalogue) -> Bool
    ) async throws -> OperatorReceipt {
        do { try catalogue.validate() } catch { throw APIFailure(.unprocessable, error.message) }
        let key = entity.key
        try await storage.withCatalogue(now: clock.now()) { work in
            guard !exists(work.catalogue) else {
                throw APIFailure(.conflict, "\(key.kind.rawValue) \(key.id) exists already")
            }
            work.write([entity])
        }
        return OperatorReceipt(id: key.id)
    }

    // MARK: Jobs

    /// Runs a job over the members it has work for (every member with `everyMember`, as before the index: after a
    /// change of the programme's rules, say). Idempotent and safe while devices sync and while other instances run
    /// it: each member is one unit of work under the member's lock, which records when the job next has work.
    public func run(_ job: Job, everyMember: Bool = false) async throws -> JobReport {
        if job == .segment {
            let started = ContinuousClock.now
            defer { metrics.segmentJobDuration.record(ContinuousClock.now - started) }
            let report = try await runSegmentJob(everyMember: everyMember)
            try await recordProgrammeGauges()
            return JobReport(job: job.rawValue, members: report.analysed, movements: report.entered + report.left)
        }
        var report = JobReport(job: job.rawValue, members: 0, movements: 0)
        var after: MemberID?
        let start = clock.now()
        let started = ContinuousClock.now
        defer {
            (job == .unlock ? metrics.unlockJobDuration : metrics.expireJobDuration).record(
                ContinuousClock.now - started)
        }
        while true {
            let page =
                everyMember
                ? try await storage.memberIDs(after: after, limit: 200)
                : try await storage.membersDue(job, by: start, after: after, limit: 200)
            guard let last = page.last else { break }
            for member in page {
                var request = MemberWorkRequest(memberID: member, now: clock.now())
                request.recordsJobsDue = true
                let movements = try await storage.withMember(request) { work in
                    let changes =
                        job == .unlock ? work.state.unlockPending(at: work.now) : work.state.expireLots(at: work.now)
                    work.write(changes)
                    return changes.count { if case .ledgerEntry = $0 { true } else { false } }
                }
                if movements > 0 {
                    report.members += 1
                    report.movements += movements
                }
            }
            after = last
        }
        metrics.jobMovements.increment(by: Int64(report.movements))
        logger.info(
            "job",
            metadata: ["job": "\(job.rawValue)", "members": "\(report.members)", "movements": "\(report.movements)"])
        return report
    }

    /// Forgets what the feed no longer needs to keep (see ``ServerConfiguration/feedRetention``).
    public func compactFeed() async throws {
        let started = ContinuousClock.now
        defer { metrics.compactionDuration.record(ContinuousClock.now - started) }
        try await storage.compact(before: clock.now().adding(-configuration.feedRetention))
    }

    // MARK: Helpers

    func makeRandomID(_ prefix: String) -> String { makeID(prefix) }

    static func money(_ text: String, field: String) throws -> Money {
        do {
            return try Money(parsing: text)
        } catch {
            throw APIFailure(.unprocessable, "\(field): \(error.message)")
        }
    }
}
