public import LoyaltyCore
public import LoyaltyServer
public import Synchronization

/// Delays for a ``ThrottledStorage``, changeable while a test runs, and a stream that says when a push or a pull
/// entered the store.
public final class Throttle: Sendable {
    /// What entered the store.
    public enum Call: Sendable { case push, pull }

    private let delays: Mutex<[Call: Duration]>
    private let sink: AsyncStream<Call>.Continuation
    /// Yields each held push (a unit of work with mutations) and pull (a feed page) as it enters the store.
    public let entered: AsyncStream<Call>

    /// Creates a throttle with these delays (none by default).
    public init(push: Duration? = nil, pull: Duration? = nil) {
        var delays: [Call: Duration] = [:]
        delays[.push] = push
        delays[.pull] = pull
        self.delays = Mutex(delays)
        (entered, sink) = AsyncStream.makeStream(of: Call.self)
    }

    /// An error every look-up of an account by e-mail throws while set (a store failing during a sign-in).
    public let accountLookupFailure = Mutex<(any Error)?>(nil)

    /// Changes the delay of one kind of call (nil: none).
    public func set(_ call: Call, _ delay: Duration?) { delays.withLock { $0[call] = delay } }

    /// Only calls that are held are told: a test waiting for its held call does not see earlier ones.
    func hold(_ call: Call) async throws {
        guard let delay = delays.withLock({ $0[call] }) else { return }
        sink.yield(call)
        try await Task.sleep(for: delay)
    }
}

/// The real store, made slow on demand: the only way to hold a push or a pull in flight while a test kills the
/// client or shuts the server down.
public struct ThrottledStorage: ServerStorage {
    public let base: any ServerStorage
    public let throttle: Throttle

    /// Creates a `ThrottledStorage` from its parts.
    public init(base: any ServerStorage, throttle: Throttle) {
        self.base = base
        self.throttle = throttle
    }

    public func migrate() async throws { try await base.migrate() }
    public func ping() async throws { try await base.ping() }
    public func installProgramme(_ program: Program, catalogue: Catalogue, now: Timestamp) async throws -> Bool {
        try await base.installProgramme(program, catalogue: catalogue, now: now)
    }
    public func withMember<T: Sendable>(
        _ request: MemberWorkRequest, _ body: @Sendable (inout MemberWork) throws -> T
    ) async throws -> T {
        if request.deviceID != nil, !request.sequences.isEmpty { try await throttle.hold(.push) }
        return try await base.withMember(request, body)
    }
    public var commitStatistics: CommitStatistics { base.commitStatistics }
    public func withCatalogue<T: Sendable>(
        now: Timestamp, _ body: @Sendable (inout CatalogueWork) throws -> T
    ) async throws -> T {
        try await base.withCatalogue(now: now, body)
    }
    public func feed(member: MemberID, after cursor: Cursor, limit: Int) async throws -> FeedPage {
        try await throttle.hold(.pull)
        return try await base.feed(member: member, after: cursor, limit: limit)
    }
    public func createMember(
        _ account: AccountRecord, device: DeviceRecord, card: CardNumber, entities: [Entity], now: Timestamp
    ) async throws {
        try await base.createMember(account, device: device, card: card, entities: entities, now: now)
    }
    public func account(email: String) async throws -> AccountRecord? {
        if let failure = throttle.accountLookupFailure.withLock({ $0 }) { throw failure }
        return try await base.account(email: email)
    }
    public func account(member: MemberID) async throws -> AccountRecord? { try await base.account(member: member) }
    public func setSignInBlocked(member: MemberID, blocked: Bool) async throws -> Bool {
        try await base.setSignInBlocked(member: member, blocked: blocked)
    }
    public func revokeDevices(
        member: MemberID, except kept: DeviceID?, reason: RevocationReason, at time: Timestamp
    ) async throws -> [DeviceID] {
        try await base.revokeDevices(member: member, except: kept, reason: reason, at: time)
    }
    public func updatePassword(
        member: MemberID, hash: [UInt8], salt: [UInt8], parameters: ScryptParameters
    ) async throws {
        try await base.updatePassword(member: member, hash: hash, salt: salt, parameters: parameters)
    }
    public var analysis: any AnalysisStore { base.analysis }

    public func memberIDs(after: MemberID?, limit: Int) async throws -> [MemberID] {
        try await base.memberIDs(after: after, limit: limit)
    }
    public func membersDue(_ job: Job, by time: Timestamp, after: MemberID?, limit: Int) async throws -> [MemberID] {
        try await base.membersDue(job, by: time, after: after, limit: limit)
    }
    public func device(_ id: DeviceID) async throws -> DeviceRecord? { try await base.device(id) }
    public func devices(member: MemberID) async throws -> [DeviceRecord] { try await base.devices(member: member) }
    public func insertDevice(_ device: DeviceRecord) async throws { try await base.insertDevice(device) }
    public func rotateRefreshToken(
        device: DeviceID, presented: [UInt8], next: [UInt8], now: Timestamp, policy: RefreshPolicy
    ) async throws -> RefreshRotation {
        try await base.rotateRefreshToken(device: device, presented: presented, next: next, now: now, policy: policy)
    }
    public func revokeDevice(_ id: DeviceID, at time: Timestamp) async throws -> Bool {
        try await base.revokeDevice(id, at: time)
    }
    public func markPulled(_ id: DeviceID, at time: Timestamp) async throws { try await base.markPulled(id, at: time) }
    public func touchDevice(_ id: DeviceID, at time: Timestamp) async throws {
        try await base.touchDevice(id, at: time)
    }
    public func cardOwner(_ number: CardNumber) async throws -> MemberID? { try await base.cardOwner(number) }
    public func insertReceipt(_ receipt: Receipt) async throws { try await base.insertReceipt(receipt) }
    public func receipt(code: String) async throws -> (Receipt, LotID?)? { try await base.receipt(code: code) }
    public func transaction(_ id: TransactionID) async throws -> TransactionRecord? { try await base.transaction(id) }
    public func compact(before time: Timestamp) async throws { try await base.compact(before: time) }
}
