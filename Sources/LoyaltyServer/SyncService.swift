internal import Foundation
public import Logging
public import LoyaltyCore
internal import Prometheus
internal import Synchronization

/// A device's session after enrolment, sign-in or refresh.
public struct Session: Sendable, Hashable {
    /// The member signed in.
    public var memberID: MemberID
    /// The device signed in.
    public var deviceID: DeviceID
    /// The member's active card.
    public var cardNumber: CardNumber
    /// The access token for pushes and pulls (short-lived).
    public var accessToken: String
    /// When the access token expires.
    public var accessTokenExpiresAt: Timestamp
    /// The refresh token, exchanged for the next session (once).
    public var refreshToken: String
    /// The server's clock, from which the device measures its offset.
    public var serverTime: Timestamp
}

/// The server's behaviour, callable in-process without HTTP: authentication, push, pull, jobs and the
/// operator's actions. The HTTP layer only translates.
public final class SyncService: Sendable {
    /// The store the service reads and writes.
    public let storage: any ServerStorage
    let clock: any ServerClock
    let configuration: ServerConfiguration
    let tokens: TokenAuthority
    let logger: Logger
    let metrics: ServerMetrics
    private let stamps: Mutex<HybridLogicalClock>
    let makeID: @Sendable (String) -> String
    /// Where password hashes are computed.
    let passwords: PasswordWorkers
    /// Sign-in limits per address and per account.
    let limiter: SignInLimiter

    /// Creates the service. `makeID` makes random ids with a prefix (injected so a simulation can be deterministic).
    public init(
        storage: any ServerStorage, clock: any ServerClock, configuration: ServerConfiguration, tokens: TokenAuthority,
        logger: Logger, metrics: ServerMetrics = ServerMetrics(),
        makeID: @escaping @Sendable (String) -> String = SyncService.randomID
    ) {
        self.storage = storage
        self.clock = clock
        self.configuration = configuration
        self.tokens = tokens
        self.logger = logger
        self.metrics = metrics
        self.stamps = Mutex(HybridLogicalClock(maximumDrift: configuration.maximumStampSkew))
        self.makeID = makeID
        self.passwords = PasswordWorkers(threads: configuration.passwordThreads, capacity: configuration.passwordQueue)
        self.limiter = SignInLimiter(limits: configuration.signInLimits)
    }

    /// A random id: the prefix and 12 characters of Crockford base32.
    public static func randomID(prefix: String) -> String {
        let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ")
        return prefix + String((0..<12).map { _ in alphabet.randomElement()! })
    }

    /// Creates or upgrades the schema and loads the programme and catalogue on first start.
    public func prepare(program: Program, catalogue: Catalogue) async throws {
        try await storage.migrate()
        if try await storage.installProgramme(program, catalogue: catalogue, now: clock.now()) {
            logger.info(
                "loaded programme", metadata: ["program": "\(program.id)", "offers": "\(catalogue.offers.count)"])
        }
    }

    func stamp() -> HLCTimestamp {
        let now = clock.now()
        return stamps.withLock { $0.now(wall: now) }
    }

    // MARK: Authentication

    /// Enrols a member: account, first card, first device.
    public func enroll(_ registration: Registration, password: String, deviceName: String?) async throws -> Session {
        let now = clock.now()
        let values: [ProfileField: String]
        do {
            values = try registration.profileValues(today: CalendarDate.of(now, in: TimeZone(identifier: "UTC")!))
        } catch {
            throw APIFailure(.unprocessable, error.message)
        }
        try Self.checkPassword(password)
        let email = values[.email] ?? registration.email
        // The hash first, whether or not the e-mail is taken: a refusal costs what an enrolment costs.
        let salt = PasswordHasher.salt()
        let parameters = configuration.passwordHashing
        let hash = try await passwords.run { try PasswordHasher.hash(password, salt: salt, parameters: parameters) }
        if try await storage.account(email: email) != nil {
            throw APIFailure(.conflict, "this e-mail address cannot be enrolled again: sign in instead")
        }
        let program = try await storage.withCatalogue(now: now) { $0.program }
        let memberID = MemberID(makeID("m-"))
        let deviceID = DeviceID(makeID("d-"))
        let account = AccountRecord(
            memberID: memberID, email: email, passwordHash: hash, salt: salt, passwordParameters: parameters,
            createdAt: now)
        let refresh = TokenAuthority.refreshToken(for: deviceID)
        let device = DeviceRecord(
            id: deviceID, memberID: memberID, name: Self.deviceName(deviceName), createdAt: now,
            refreshHash: refresh.hash)
        for _ in 0..<5 {
            let card = try newCardNumber()
            var state = MemberState(program: program, member: MemberRecord(id: memberID, createdAt: now))
            var entities: [Entity] = [.member(state.member)]
            entities += try state.issueCard(card, at: now)
            let stamp = stamp()
            for (field, value) in values.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
                entities.append(
                    .profileField(ProfileFieldValue(field: field, value: value, stamp: stamp, source: .operator)))
            }
            entities += state.refreshTier(at: now)
            do {
                try await storage.createMember(account, device: device, card: card, entities: entities, now: now)
            } catch let error as LoyaltyError where error.code == .duplicate && error.message.hasPrefix("card") {
                continue  // a card number collision: draw another
            } catch let error as LoyaltyError where error.code == .duplicate {
                throw APIFailure(.conflict, "this e-mail address cannot be enrolled again: sign in instead")
            }
            metrics.enrolments.increment()
            logger.info("enrolled", metadata: ["member": "\(memberID)", "device": "\(deviceID)"])
            return session(
                Credentials(memberID: memberID, deviceID: deviceID), card: card, refresh: refresh.token, now: now)
        }
        throw APIFailure(.internalError, "could not draw a free card number; try again")
    }

    /// Signs a member in on a new device. An unknown e-mail costs what a wrong password costs (a hash of the same
    /// cost is computed), so the time taken does not tell whether an account exists.
    public func login(email: String, password: String, deviceName: String?) async throws -> Session {
        let now = clock.now()
        let email = email.trimmingCharacters(in: .whitespaces)
        try limiter.checkAccount(email, at: now)
        let account = try await storage.account(email: email)
        let parameters = account?.passwordParameters ?? configuration.passwordHashing
        let salt = account?.salt ?? PasswordHasher.salt()
        let stored = account?.passwordHash ?? Array(repeating: 0, count: 32)
        let matches = try await passwords.run {
            try PasswordHasher.verify(password, hash: stored, salt: salt, parameters: parameters)
        }
        guard let account, matches else {
            metrics.failedSignIns.increment()
            limiter.recordFailure(account: email, at: now)
            logger.notice(
                "security: failed sign-in",
                metadata: [
                    "account": "\(account.map { $0.memberID.rawValue } ?? "unknown")",
                    "client": "\(ClientAddress.current ?? "in-process")",
                ])
            throw APIFailure(.unauthorized, "the e-mail or password is wrong")
        }
        guard !account.signInBlocked else {
            logger.notice("security: sign-in to a blocked account", metadata: ["member": "\(account.memberID)"])
            throw APIFailure(.forbidden, RevocationReason.blocked.message)
        }
        let signedIn = try await storage.devices(member: account.memberID).count { $0.revokedAt == nil }
        guard signedIn < configuration.maxDevicesPerMember else {
            throw APIFailure(
                .conflict,
                "\(signedIn) devices are signed in to this member, the most allowed: sign one out first "
                    + "(loyalty devices, loyalty device revoke ID)")
        }
        if account.passwordParameters != configuration.passwordHashing {
            try await rehash(password, of: account)
        }
        let deviceID = DeviceID(makeID("d-"))
        let refresh = TokenAuthority.refreshToken(for: deviceID)
        try await storage.insertDevice(
            DeviceRecord(
                id: deviceID, memberID: account.memberID, name: Self.deviceName(deviceName), createdAt: now,
                lastSeenAt: now, refreshHash: refresh.hash))
        let card = try await activeCard(of: account.memberID, now: now)
        logger.info("signed in", metadata: ["member": "\(account.memberID)", "device": "\(deviceID)"])
        return session(
            Credentials(memberID: account.memberID, deviceID: deviceID), card: card, refresh: refresh.token, now: now)
    }

    /// Changes the member's password from one of their devices; every other device is signed out.
    public func changePassword(from device: DeviceRecord, current: String, new password: String) async throws {
        let now = clock.now()
        guard let account = try await storage.account(member: device.memberID) else {
            throw APIFailure(.unauthorized, "the access token's member is unknown: sign in again")
        }
        try Self.checkPassword(password)
        try limiter.checkAccount(account.email, at: now)
        let (parameters, salt, stored) = (account.passwordParameters, account.salt, account.passwordHash)
        let matches = try await passwords.run {
            try PasswordHasher.verify(current, hash: stored, salt: salt, parameters: parameters)
        }
        guard matches else {
            metrics.failedSignIns.increment()
            limiter.recordFailure(account: account.email, at: now)
            logger.notice(
                "security: failed password change",
                metadata: ["member": "\(account.memberID)", "client": "\(ClientAddress.current ?? "in-process")"])
            throw APIFailure(.unauthorized, "the current password is wrong")
        }
        try await rehash(password, of: account)
        try await signOut(member: device.memberID, except: device.id, reason: .signedOutEverywhere)
        logger.notice("security: password changed", metadata: ["member": "\(account.memberID)"])
    }

    /// Revokes every device of a member (`except` one), returning their allowances to the balance.
    func signOut(member: MemberID, except kept: DeviceID?, reason: RevocationReason) async throws {
        let revoked = try await storage.revokeDevices(member: member, except: kept, reason: reason, at: clock.now())
        try await storage.withMember(MemberWorkRequest(memberID: member, now: clock.now())) { work in
            for device in revoked { work.write(work.state.revokeAllowance(of: device)) }
        }
        if !revoked.isEmpty {
            logger.notice(
                "security: devices revoked",
                metadata: ["member": "\(member)", "devices": "\(revoked.count)", "reason": "\(reason.rawValue)"])
        }
    }

    /// Hashes a member's password again at the current cost, after it was verified at an older one.
    private func rehash(_ password: String, of account: AccountRecord) async throws {
        let salt = PasswordHasher.salt()
        let parameters = configuration.passwordHashing
        let hash = try await passwords.run { try PasswordHasher.hash(password, salt: salt, parameters: parameters) }
        try await storage.updatePassword(member: account.memberID, hash: hash, salt: salt, parameters: parameters)
        logger.info(
            "password hash renewed",
            metadata: [
                "member": "\(account.memberID)", "from": "\(account.passwordParameters)", "to": "\(parameters)",
            ])
    }

    /// Exchanges a refresh token for a new session of the same device; the token rotates. A superseded token of
    /// the device's family, presented again, revokes the device: whoever holds a copy and the member both sign in
    /// again (``RefreshFamily``).
    public func refresh(token: String) async throws -> Session {
        let now = clock.now()
        let invalid = APIFailure(.unauthorized, "the refresh token is not valid: sign in again")
        guard let deviceID = TokenAuthority.device(ofRefreshToken: token),
            let device = try await storage.device(deviceID)
        else { throw invalid }
        let next = TokenAuthority.refreshToken(for: deviceID)
        let outcome = try await storage.rotateRefreshToken(
            device: deviceID, presented: TokenAuthority.hash(refreshToken: token), next: next.hash, now: now,
            policy: configuration.refresh)
        switch outcome {
        case .rotated:
            if try await storage.account(member: device.memberID)?.signInBlocked == true {
                throw APIFailure(.forbidden, RevocationReason.blocked.message)
            }
            let card = try await activeCard(of: device.memberID, now: now)
            return session(
                Credentials(memberID: device.memberID, deviceID: deviceID), card: card, refresh: next.token, now: now)
        case .reused:
            metrics.refreshReuses.increment()
            logger.warning(
                "security: refresh token reused; the device's tokens are revoked",
                metadata: ["member": "\(device.memberID)", "device": "\(deviceID)"])
            try? await returnAllowance(of: device)
            throw APIFailure(.deviceRevoked, RevocationReason.refreshTokenReused.message)
        case .revoked:
            let reason = try await storage.device(deviceID)?.revokedReason ?? .signedOut
            throw APIFailure(.deviceRevoked, reason.message)
        case .expired:
            throw APIFailure(
                .unauthorized, "this device's sign-in expired (unused for long, or too old): sign in again")
        case .unknown:
            metrics.failedSignIns.increment()
            logger.notice("security: an unknown refresh token was presented", metadata: ["device": "\(deviceID)"])
            throw invalid
        }
    }

    /// Checks an access token and that its device still belongs to the member and is not revoked.
    /// The member and device an access token names, if its signature and expiry hold; the device's row is not read
    /// (a push reads it in its unit of work).
    public func verify(accessToken: String) throws -> Credentials {
        try tokens.verify(accessToken: accessToken, now: clock.now())
    }

    public func authenticate(accessToken: String) async throws -> DeviceRecord {
        let credentials = try verify(accessToken: accessToken)
        return try live(try await storage.device(credentials.deviceID), of: credentials)
    }

    /// The device a token names, as the store holds it, if it is the token's member's and not revoked.
    func live(_ device: DeviceRecord?, of credentials: Credentials) throws -> DeviceRecord {
        guard let device, device.memberID == credentials.memberID else {
            throw APIFailure(.unauthorized, "the access token's device is unknown: sign in again")
        }
        guard device.revokedAt == nil else {
            throw APIFailure(.deviceRevoked, (device.revokedReason ?? .signedOut).message)
        }
        return device
    }

    /// The member's devices.
    public func devices(of member: MemberID) async throws -> [DeviceRecord] {
        try await storage.devices(member: member)
    }

    /// Revokes one of the member's own devices; another member's device is "not found".
    public func revoke(_ deviceID: DeviceID, by member: MemberID) async throws {
        guard let device = try await storage.device(deviceID), device.memberID == member else {
            throw APIFailure(.notFound, "this member has no device \(deviceID)")
        }
        _ = try await storage.revokeDevice(deviceID, at: clock.now())
        try await returnAllowance(of: device)
        logger.notice("security: device revoked", metadata: ["member": "\(member)", "device": "\(deviceID)"])
    }

    /// A revoked device's allowance returns to the member's balance.
    func returnAllowance(of device: DeviceRecord) async throws {
        try await storage.withMember(MemberWorkRequest(memberID: device.memberID, now: clock.now())) { work in
            work.write(work.state.revokeAllowance(of: device.id))
        }
    }

    /// What a pull asks of the device's allowance: lapsed ones end, the one the device gives back is released once
    /// every mutation that may have spent from it is processed, and a device holding none is granted one.
    private func maintainAllowance(of device: DeviceRecord, asked: AllowanceRequest, now: Timestamp) async throws {
        let devices = try await storage.devices(member: device.memberID).count { $0.revokedAt == nil }
        let request = MemberWorkRequest(memberID: device.memberID, now: now, deviceID: device.id)
        let granted = try await storage.withMember(request) { work -> Int? in
            var changes = work.state.lapseAllowances(at: work.now)
            if let grant = asked.release {
                guard let record = work.device, record.lastSequence >= asked.through else {
                    // Mutations that may spend from it are still on their way: keep it until they arrive.
                    work.write(changes)
                    return nil
                }
                changes += work.state.releaseAllowance(of: device.id, grant: grant)
            }
            let grant = work.state.grantAllowance(to: device.id, devices: devices, at: work.now)
            work.write(changes + grant)
            return grant.isEmpty ? nil : work.state.allowances[device.id]?.points
        }
        if let granted {
            metrics.allowancePointsGranted.increment(by: Int64(granted))
            logger.debug("allowance granted", metadata: ["device": "\(device.id)", "points": "\(granted)"])
        }
    }

    private func session(_ credentials: Credentials, card: CardNumber, refresh: String, now: Timestamp) -> Session {
        let access = tokens.accessToken(for: credentials, now: now)
        return Session(
            memberID: credentials.memberID, deviceID: credentials.deviceID, cardNumber: card, accessToken: access.token,
            accessTokenExpiresAt: access.expiresAt, refreshToken: refresh, serverTime: now)
    }

    private func activeCard(of member: MemberID, now: Timestamp) async throws -> CardNumber {
        let state = try await storage.withMember(MemberWorkRequest(memberID: member, now: now)) { $0.state }
        guard let card = state.activeCard ?? state.cards.values.max(by: { $0.issuedAt < $1.issuedAt }) else {
            throw APIFailure(.internalError, "member \(member) has no card")
        }
        return card.number
    }

    /// A card number: the programme's prefix and eight digits drawn from a new id (so that a simulation's seeded
    /// ids make its card numbers too).
    func newCardNumber() throws -> CardNumber {
        let digits = makeID("").unicodeScalars.suffix(8).map { String($0.value % 10) }.joined()
        return try CardNumber(body: "4000" + digits)
    }

    private static func deviceName(_ name: String?) -> String {
        let trimmed = (name ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        return trimmed.isEmpty ? "device" : String(trimmed.prefix(64))
    }

    private static func checkPassword(_ password: String) throws {
        guard password.inputLength >= 8, password.inputLength <= 200 else {
            throw APIFailure(.unprocessable, "password must be 8 to 200 characters")
        }
    }

    // MARK: Sync

    /// Applies a device's mutations exactly once, in sequence order, and answers one result for each.
    public func push(_ request: PushRequest, from device: DeviceRecord) async throws -> PushResponse {
        try await push(request, as: Credentials(memberID: device.memberID, deviceID: device.id))
    }

    /// Applies the mutations of the device an access token names. The device's row is read once, in the member's
    /// unit of work, under its lock: a device unknown, another member's or revoked is refused there, with nothing
    /// applied (the gate checked only the token's signature and expiry, so a push costs one lease of the store).
    public func push(_ request: PushRequest, as device: Credentials) async throws -> PushResponse {
        try validate(request, from: device)
        let now = clock.now()
        for envelope in request.mutations {
            _ = stamps.withLock { try? $0.receive(envelope.stamp, wall: now) }
        }
        let codes = request.mutations.compactMap { envelope -> String? in
            if case .claimReceipt(let code) = envelope.mutation { return code }
            return nil
        }
        let workRequest = MemberWorkRequest(
            memberID: device.memberID, now: now, deviceID: device.deviceID,
            sequences: request.mutations.map(\.sequence),
            receiptCodes: codes)
        let started = ContinuousClock.now
        let (results, last) = try await storage.withMember(workRequest) { work in
            let erasedBefore = work.state.member.status == .erased
            let applied = try self.apply(request.mutations, from: device, to: &work, now: now)
            // The member asked for erasure from this device: the account and the devices go in the same
            // transaction (docs/privacy.md, "Erasure").
            if !erasedBefore, work.state.member.status == .erased { work.eraseAccount() }
            return applied
        }
        metrics.unitDuration.record(ContinuousClock.now - started)
        count(results)
        logger.debug(
            "push",
            metadata: ["member": "\(device.memberID)", "device": "\(device.deviceID)", "mutations": "\(results.count)"])
        return PushResponse(results: results, lastProcessedSequence: last, serverTime: now, serverStamp: stamp())
    }

    /// Refuses a push that is not well formed before any work: another device's, too many mutations, sequence
    /// numbers out of order or from 0.
    func validate(_ request: PushRequest, from device: Credentials) throws {
        guard request.deviceID == device.deviceID else {
            throw APIFailure(.forbidden, "deviceID \(request.deviceID) is not the device of this access token")
        }
        guard request.mutations.count <= configuration.maxMutationsPerPush else {
            throw APIFailure(
                .tooLarge,
                "a push may carry at most \(configuration.maxMutationsPerPush) mutations; this one has \(request.mutations.count)"
            )
        }
        for (previous, next) in zip(request.mutations, request.mutations.dropFirst())
        where next.sequence <= previous.sequence {
            throw APIFailure(
                .badRequest,
                "mutations must be in increasing sequence order (\(next.sequence) after \(previous.sequence))")
        }
        if let first = request.mutations.first, first.sequence == 0 {
            throw APIFailure(.badRequest, "sequence numbers start at 1")
        }
    }

    /// The exactly-once loop, inside the member's unit of work: a mutation the device sent before is answered from
    /// its stored result, the next in sequence is applied and its result stored, one out of order is refused.
    /// Returns the results and the device's last processed sequence number.
    func apply(
        _ mutations: [MutationEnvelope], from device: Credentials, to work: inout MemberWork, now: Timestamp
    ) throws -> ([MutationResult], UInt64) {
        var record = try live(work.device, of: device)
        // Expiry is judged at the time of the push, whether or not the expiry job has run since.
        work.write(work.state.expireDue(at: now))
        var results: [MutationResult] = []
        for envelope in mutations {
            if envelope.sequence <= record.lastSequence {
                configuration.retryHook?(envelope, &work, now)
                results.append(
                    work.storedResults[envelope.sequence]
                        ?? MutationResult(
                            sequence: envelope.sequence,
                            status: .adjusted(message: "already processed; its result is no longer kept")))
                continue
            }
            guard envelope.sequence == record.lastSequence + 1 else {
                let rejection = MutationRejection(
                    .outOfOrder,
                    "sequence \(record.lastSequence + 1) was expected before \(envelope.sequence): send it first")
                results.append(MutationResult(sequence: envelope.sequence, status: .rejected(rejection)))
                continue
            }
            if let rejection = Self.stampTooFarAhead(envelope, now: now, bound: configuration.maximumStampSkew) {
                let result = MutationResult(sequence: envelope.sequence, status: .rejected(rejection))
                work.store(result)
                results.append(result)
                record.lastSequence = envelope.sequence
                continue
            }
            var facts = ServerFacts()
            switch envelope.mutation {
            case .claimReceipt(let code): facts.receipt = work.receipts[code]
            case .redeemReward(let id):
                facts.stock = work.state.rewards[id]?.stock
                facts.voucherCode = makeID("V-")
            default: break
            }
            let context = ApplyContext.server(
                now: now, claimedActedAt: envelope.deviceTime, grace: work.state.program.offlineGrace,
                notBefore: record.lastActedAt, facts: facts)
            let outcome = work.state.apply(envelope, context: context)
            work.write(outcome.changes)
            if let code = outcome.claimedReceipt { work.claim(receipt: code, lot: LotID("receipt:\(code)")) }
            let result = MutationResult(sequence: envelope.sequence, status: outcome.status)
            work.store(result)
            results.append(result)
            record.lastSequence = envelope.sequence
            record.lastActedAt = max(record.lastActedAt ?? context.actedAt, context.actedAt)
        }
        work.device = record
        return (results, record.lastSequence)
    }

    /// Counts a push's results by status.
    private func count(_ results: [MutationResult]) {
        for result in results {
            switch result.status {
            case .applied: metrics.mutationsApplied.increment()
            case .adjusted: metrics.mutationsAdjusted.increment()
            case .rejected: metrics.mutationsRejected.increment()
            }
        }
    }

    /// The refusal of a profile or consent change stamped more than `bound` ahead of the server's clock: applied,
    /// its stamp would win over every later change of that field until the clock caught up.
    static func stampTooFarAhead(_ envelope: MutationEnvelope, now: Timestamp, bound: TimeSpan) -> MutationRejection? {
        switch envelope.mutation {
        case .setProfileField, .setConsent: break
        default: return nil
        }
        let ahead = envelope.stamp.wallMilliseconds - now.millisecondsSince1970
        guard ahead > bound.milliseconds else { return nil }
        return MutationRejection(
            .clockAhead,
            "this device's clock was about \(TimeSpan.minutes(ahead / 60_000)) ahead of the programme's when the change was "
                + "made (at most \(bound) is accepted): the change was not kept; check the clock and make it again")
    }

    /// One page of the member's change feed after the device's cursor, or a reset.
    public func pull(_ request: PullRequest, from device: DeviceRecord) async throws -> PullResponse {
        try await pullStored(request, from: device).decoded()
    }

    /// ``pull(_:from:)`` with the entities as stored, for an answer written from their bytes (the HTTP layer).
    public func pullStored(_ request: PullRequest, from device: DeviceRecord) async throws -> StoredPullResponse {
        try await pullStored(request, as: Credentials(memberID: device.memberID, deviceID: device.id))
    }

    /// A page of the feed for the device an access token names. Without an allowance to maintain, the device's
    /// row and the page are one read of the store (``ServerStorage/pullPage(device:member:after:limit:)``).
    public func pullStored(_ request: PullRequest, as caller: Credentials) async throws -> StoredPullResponse {
        guard request.deviceID == caller.deviceID else {
            throw APIFailure(.forbidden, "deviceID \(request.deviceID) is not the device of this access token")
        }
        guard request.limit >= 1 else { throw APIFailure(.unprocessable, "limit must be at least 1") }
        let limit = min(request.limit, configuration.maxPageSize)
        let now = clock.now()
        let device: DeviceRecord
        var page: FeedPage
        if let asked = request.allowance {
            device = try live(try await storage.device(caller.deviceID), of: caller)
            try await maintainAllowance(of: device, asked: asked, now: now)
            page = try await storage.feed(member: device.memberID, after: request.cursor, limit: limit)
        } else {
            let read = try await storage.pullPage(
                device: caller.deviceID, member: caller.memberID, after: request.cursor, limit: limit)
            device = try live(read.device, of: caller)
            page = read.page
        }
        // A reset when the device was away longer than the feed promises to keep, when its cursor is before a
        // deletion the feed has forgotten, or when the cursor is not from this store at all.
        let away = device.lastPulledAt.map { $0 < now.adding(-configuration.feedRetention) } ?? false
        let asked = request.cursor.version
        let reset = asked > 0 && (away || asked < page.horizon || asked > page.latest)
        if reset {
            page = try await storage.feed(member: device.memberID, after: .start, limit: limit)
            metrics.resets.increment()
            logger.info("feed reset", metadata: ["member": "\(device.memberID)", "device": "\(device.id)"])
        }
        // One write per device per hour at most: enough to judge an absence of days.
        if device.lastPulledAt.map({ $0 < now.adding(.hours(-1)) }) ?? true {
            try await storage.markPulled(device.id, at: now)
        }
        let cursor = page.changes.last.map { Cursor(version: $0.version) } ?? (reset ? .start : request.cursor)
        metrics.changesPulled.increment(by: Int64(page.changes.count))
        // The device record was read with the page (or before it, with an allowance). A push of the same device that
        // lands in between only makes the number lag, which keeps those mutations in the outbox one sync longer.
        return StoredPullResponse(
            changes: page.changes, cursor: cursor, hasMore: page.hasMore, reset: reset,
            lastProcessedSequence: device.lastSequence,
            serverTime: clock.now(), serverStamp: stamp())
    }
}
