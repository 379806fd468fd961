public import Foundation
public import LoyaltyCore
public import LoyaltyStore
internal import Synchronization

/// What one sync did.
public struct SyncReport: Sendable, Hashable {
    /// Mutations sent.
    public var pushed = 0
    /// Of those, applied (as sent or adjusted).
    public var applied = 0
    /// Of those, rejected.
    public var rejected = 0
    /// Changes received.
    public var pulled = 0
    /// Whether this sync asked about the device's allowance yet (on its first pulled page).
    var askedAllowance = false
    /// New notices.
    public var notices: [Notice] = []
    /// How it ended.
    public var outcome: SyncOutcome = .synced

    /// An empty report.
    public init() {}
}

/// Runs syncs for one device: push the outbox, pull the feed, rebase the view, with token refresh, backoff,
/// revocation and upgrade handling as ``SyncPlanner`` decides. Clock, jitter and sleeping are injected so that
/// tests and the simulation control time.
public actor SyncEngine {
    nonisolated public let store: DeviceStore
    private let transport: any SyncTransport
    private let policy: SyncPolicy
    private let wallClock: @Sendable () -> Timestamp
    private let jitter: @Sendable () -> Double
    private let sleep: @Sendable (TimeSpan) async throws -> Void

    /// Creates an engine.
    public init(
        store: DeviceStore, transport: any SyncTransport, policy: SyncPolicy = SyncPolicy(),
        wallClock: @escaping @Sendable () -> Timestamp = { Timestamp(Date()) },
        jitter: @escaping @Sendable () -> Double = { Double.random(in: 0...1) },
        sleep: @escaping @Sendable (TimeSpan) async throws -> Void = {
            try await Task.sleep(for: .milliseconds($0.milliseconds))
        }
    ) {
        self.store = store
        self.transport = transport
        self.policy = policy
        self.wallClock = wallClock
        self.jitter = jitter
        self.sleep = sleep
    }

    // MARK: Signing in

    /// Enrols a new member with this device, then syncs to bootstrap.
    public func enroll(
        _ registration: Registration, password: String, deviceName: String?, serverURL: String,
        progress: (@Sendable (SyncReport) -> Void)? = nil
    ) async throws(TransportError) -> SyncReport {
        let grant = try await transport.enroll(registration, password: password, deviceName: deviceName)
        try saveGrant(grant, serverURL: serverURL)
        return await sync(progress: progress)
    }

    /// Signs this device in to an existing member, then syncs to bootstrap.
    public func login(
        email: String, password: String, deviceName: String?, serverURL: String,
        progress: (@Sendable (SyncReport) -> Void)? = nil
    ) async throws(TransportError) -> SyncReport {
        let grant = try await transport.login(email: email, password: password, deviceName: deviceName)
        try saveGrant(grant, serverURL: serverURL)
        return await sync(progress: progress)
    }

    private func saveGrant(_ grant: SessionGrant, serverURL: String) throws(TransportError) {
        do {
            try store.saveIdentity(
                DeviceIdentity(
                    serverURL: serverURL, memberID: grant.memberID, deviceID: grant.deviceID,
                    cardNumber: grant.cardNumber,
                    accessToken: grant.accessToken, accessTokenExpiresAt: grant.accessTokenExpiresAt,
                    refreshToken: grant.refreshToken))
        } catch {
            throw .refused(status: 0, code: "store", message: "the session could not be stored: \(error)")
        }
    }

    // MARK: Syncing

    /// Pushes every pending mutation, pulls until caught up, and rebases the view. Never throws: the report's
    /// outcome says how it ended, and nothing pending is lost whatever happens. `progress` is called with the
    /// report so far after every push and every pulled page (for long bootstraps).
    public func sync(progress: (@Sendable (SyncReport) -> Void)? = nil) async -> SyncReport {
        var report = SyncReport()
        var planner = SyncPlanner(policy: policy)
        var prefetched: Prefetch?
        let window = PrefetchWindow()
        defer { prefetched?.cancel() }
        do {
            guard try store.identity() != nil else {
                report.outcome = .signedOut("this device is not signed in")
                return report
            }
            var action = planner.next(after: .begin(hasPending: try !unresolved().isEmpty))
            while true {
                switch action {
                case .push:
                    do {
                        let more = try await pushBatch(into: &report)
                        progress?(report)
                        action = planner.next(after: .pushed(morePending: more))
                    } catch let error as TransportError {
                        action = planner.next(after: .failed(error), jitter: jitter())
                    }
                case .pull:
                    do {
                        let hasMore = try await pullPage(
                            into: &report, askAllowance: !report.askedAllowance, prefetched: &prefetched,
                            window: window)
                        report.askedAllowance = true
                        progress?(report)
                        action = planner.next(after: .pulled(hasMore: hasMore))
                    } catch let error as TransportError {
                        action = planner.next(after: .failed(error), jitter: jitter())
                    }
                case .refresh:
                    do {
                        try await refreshSession()
                        action = planner.next(after: .refreshed)
                    } catch let error as TransportError {
                        // A refused refresh cannot be fixed by refreshing again.
                        action = planner.next(
                            after: error == .tokenExpired ? .failed(.unauthorized("sign in again")) : .failed(error))
                    }
                case .wait(let delay):
                    try await sleep(delay)
                    action = planner.next(after: .waited)
                case .wipe(let reason):
                    try store.wipe()
                    // Why, for the member: the store keeps it as the signed-out device's last error.
                    try store.setCondition(.signedOut, error: reason)
                    report.outcome = .revoked
                    return report
                case .finish(let outcome):
                    report.outcome = outcome
                    try finish(outcome)
                    return report
                }
            }
        } catch {
            report.outcome = .failed("the device store failed: \(error)")
            try? store.recordAttempt(at: wallClock(), error: "\(error)")
            return report
        }
    }

    private func finish(_ outcome: SyncOutcome) throws {
        let now = wallClock()
        switch outcome {
        case .synced: try store.recordAttempt(at: now, error: nil)
        case .offline(let message), .failed(let message): try store.recordAttempt(at: now, error: message)
        case .signedOut(let message): try store.setCondition(.signedOut, error: message)
        case .upgradeRequired(let message): try store.setCondition(.upgradeRequired, error: message)
        case .revoked: break
        }
    }

    /// Pending mutations without a result yet.
    private func unresolved() throws -> [PendingMutation] {
        try store.pendingMutations().filter { $0.result == nil }
    }

    /// Pushes one batch; true if undecided mutations remain that another push can make progress on.
    private func pushBatch(into report: inout SyncReport) async throws -> Bool {
        let batch = Array(try unresolved().prefix(policy.batchSize))
        guard !batch.isEmpty, let identity = try store.identity() else { return false }
        let sent = wallClock()
        let response = try await transport.push(
            PushRequest(deviceID: identity.deviceID, mutations: batch.map(\.envelope)),
            accessToken: identity.accessToken)
        let received = wallClock()
        try store.observeServer(time: response.serverTime, stamp: response.serverStamp, sent: sent, received: received)
        let notices = try store.recordResults(response.results, at: received)
        report.notices += notices
        report.pushed += batch.count
        var decided = 0
        for result in response.results {
            switch result.status {
            case .applied, .adjusted:
                report.applied += 1
                decided += 1
            case .rejected(let rejection) where rejection.code != .outOfOrder:
                report.rejected += 1
                decided += 1
            case .rejected:
                continue
            }
        }
        // No progress (the server expects a sequence number this device no longer has): stop pushing; the pull
        // still brings the server's state, and the outbox is kept.
        let remaining = try unresolved()
        return decided > 0 && !remaining.isEmpty
    }

    /// A page asked for ahead, while the one before it is applied.
    struct Prefetch: Sendable {
        /// The cursor it was asked from.
        let cursor: LoyaltyCore.Cursor
        let task: Task<PulledPage, any Error>

        /// Stops it, and the page it went on to ask for if it got that far.
        func cancel() {
            task.cancel()
            let task = self.task
            Task.detached { (try? await task.value)?.next?.cancel() }
        }
    }

    /// A pull's answer and when it was asked and answered (for the clock estimate).
    struct PulledPage: Sendable {
        let response: PullResponse
        let sent: Timestamp
        let received: Timestamp
        /// Asked for ahead: its answer may have waited while the device was busy, so it does not measure the clock.
        var prefetched = false
        /// The page after it, asked for as soon as this one's cursor was known, before it was decoded.
        var next: Prefetch?
    }

    /// How far ahead of the engine pages are asked for: the page it applies is number `taken` of the sync, and
    /// pages up to `taken + depth` may be asked for. A device slower than its network then holds at most two pages
    /// it has not stored, instead of reading the feed ever further ahead.
    final class PrefetchWindow: Sendable {
        static let depth = 2
        private let taken = Mutex(0)

        /// The engine has taken its next page.
        func took() { taken.withLock { $0 += 1 } }
        /// The number the next page the engine asks for ahead will have.
        var nextIndex: Int { taken.withLock { $0 + 1 } }
        func allows(_ index: Int) -> Bool { taken.withLock { index <= $0 + Self.depth } }
    }

    /// Where a page asked for ahead keeps the request it made for the page after it (from its early cursor) until
    /// it hands its own answer back.
    private final class Following: Sendable {
        let prefetch = Mutex<Prefetch?>(nil)
    }

    /// Asks for a page ahead, as page `index` of the sync. As soon as its cursor is known (before it is decoded,
    /// with the HTTP transport), it asks for the page after it too, if the window allows: the server then works
    /// on the next page while the device decodes and applies this one.
    private static func prefetch(
        _ request: PullRequest, index: Int, accessToken: String, transport: any SyncTransport,
        wallClock: @escaping @Sendable () -> Timestamp, window: PrefetchWindow
    ) -> Prefetch {
        // Detached: a task of the engine's actor would not start before the page being applied is.
        let task = Task.detached {
            let following = Following()
            let sent = wallClock()
            do {
                let answer = try await transport.pull(request, accessToken: accessToken) { cursor, hasMore in
                    guard hasMore, !Task.isCancelled, window.allows(index + 1) else { return }
                    let next = PullRequest(deviceID: request.deviceID, cursor: cursor, limit: request.limit)
                    following.prefetch.withLock {
                        $0 = prefetch(
                            next, index: index + 1, accessToken: accessToken, transport: transport,
                            wallClock: wallClock, window: window)
                    }
                }
                return PulledPage(
                    response: answer, sent: sent, received: wallClock(), prefetched: true,
                    next: following.prefetch.withLock { $0 })
            } catch {
                following.prefetch.withLock { $0 }?.cancel()
                throw error
            }
        }
        return Prefetch(cursor: request.cursor, task: task)
    }

    /// Pulls and applies one page; true if more follow. While it is applied, the next page is already asked for
    /// (``SyncPolicy/prefetch``; ``prefetch(_:index:accessToken:transport:wallClock:window:)``); that answer is
    /// used only if it was asked from the cursor the device then holds. The first page of a sync also asks for the
    /// device's allowance when it needs one.
    private func pullPage(
        into report: inout SyncReport, askAllowance: Bool, prefetched: inout Prefetch?, window: PrefetchWindow
    ) async throws -> Bool {
        guard let identity = try store.identity() else { return false }
        let cursor = try store.cursor()
        let ahead = prefetched
        prefetched = nil
        let page: PulledPage
        if let ahead, ahead.cursor == cursor, !askAllowance {
            page = try await ahead.task.value
        } else {
            ahead?.cancel()
            let sent = wallClock()
            let allowance = askAllowance ? try store.allowanceRequest(at: sent) : nil
            let response = try await transport.pull(
                PullRequest(deviceID: identity.deviceID, cursor: cursor, limit: policy.pageSize, allowance: allowance),
                accessToken: identity.accessToken)
            page = PulledPage(response: response, sent: sent, received: wallClock())
        }
        window.took()
        let response = page.response
        if response.hasMore, policy.prefetch {
            if let next = page.next, next.cursor == response.cursor {
                prefetched = next
            } else {
                page.next?.cancel()
                prefetched = Self.prefetch(
                    PullRequest(deviceID: identity.deviceID, cursor: response.cursor, limit: policy.pageSize),
                    index: window.nextIndex, accessToken: identity.accessToken, transport: transport,
                    wallClock: wallClock, window: window)
            }
        } else {
            page.next?.cancel()
        }
        try store.observeServer(
            time: response.serverTime, stamp: response.serverStamp, sent: page.sent, received: page.received,
            measuresOffset: !page.prefetched)
        report.notices += try store.applyPage(response, at: page.received)
        report.pulled += response.changes.count
        return response.hasMore
    }

    private func refreshSession() async throws {
        guard var identity = try store.identity() else {
            throw TransportError.unauthorized("this device is not signed in")
        }
        let grant = try await transport.refresh(refreshToken: identity.refreshToken)
        identity.accessToken = grant.accessToken
        identity.accessTokenExpiresAt = grant.accessTokenExpiresAt
        identity.refreshToken = grant.refreshToken
        try store.saveIdentity(identity)
    }

    // MARK: Devices

    /// The member's devices.
    public func devices() async throws -> [DeviceSummary] {
        try await withRefresh { token in try await self.transport.devices(accessToken: token) }
    }

    /// Everything the programme holds about the member, as the export's JSON document (needs the network).
    public func exportData() async throws -> Data {
        try await withRefresh { token in try await self.transport.exportData(accessToken: token) }
    }

    /// Revokes one of the member's devices.
    public func revoke(_ device: DeviceID) async throws {
        try await withRefresh { token in try await self.transport.revoke(device: device, accessToken: token) }
    }

    /// Changes the member's password; every other device of the member is signed out.
    public func changePassword(current: String, new: String) async throws {
        try await withRefresh { token in
            try await self.transport.changePassword(current: current, new: new, accessToken: token)
        }
    }

    /// Signs every device of the member out, this one included.
    public func signOutEverywhere() async throws {
        try await withRefresh { token in try await self.transport.signOutEverywhere(accessToken: token) }
    }

    /// Makes a call with the access token, refreshing it once if it expired.
    private func withRefresh<T: Sendable>(_ call: @Sendable (String) async throws -> T) async throws -> T {
        guard let identity = try store.identity() else {
            throw TransportError.unauthorized("this device is not signed in")
        }
        do {
            return try await call(identity.accessToken)
        } catch let error as TransportError where error == .tokenExpired {
            try await refreshSession()
            return try await call(try store.identity()?.accessToken ?? "")
        }
    }
}
