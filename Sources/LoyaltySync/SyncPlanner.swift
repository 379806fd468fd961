public import LoyaltyCore

/// How hard the engine tries.
public struct SyncPolicy: Sendable, Hashable {
    /// Mutations per push.
    public var batchSize = 100
    /// Changes per pull page.
    public var pageSize = 2_000
    /// Whether the next page is asked for while the one before it is applied (the server and the device then work
    /// at the same time; off in the deterministic simulation, which runs everything on one thread).
    public var prefetch = true
    /// Retries after a transient failure (unreachable, 5xx) within one sync; 0 fails at once (offline).
    public var retries = 3
    /// The first retry's delay; each further retry doubles it, up to `maximumDelay`, with jitter.
    public var baseDelay: TimeSpan = .milliseconds(500)
    /// The longest wait between retries.
    public var maximumDelay: TimeSpan = .seconds(30)

    /// Creates a `SyncPolicy` from its parts.
    public init(
        batchSize: Int = 100, pageSize: Int = 2_000, prefetch: Bool = true, retries: Int = 3,
        baseDelay: TimeSpan = .milliseconds(500)
    ) {
        self.batchSize = batchSize
        self.pageSize = pageSize
        self.prefetch = prefetch
        self.retries = retries
        self.baseDelay = baseDelay
    }
}

/// How a sync ended.
public enum SyncOutcome: Sendable, Hashable {
    /// Everything pushed was decided and the pulled state is current.
    case synced
    /// The server could not be reached (after the allowed retries); everything is kept for next time.
    case offline(String)
    /// The session cannot be renewed: sign in again. Data and outbox are kept.
    case signedOut(String)
    /// The member revoked this device: its data was wiped.
    case revoked
    /// The server speaks a newer protocol: update the app. Data and outbox are kept.
    case upgradeRequired(String)
    /// The server refused a request; the message says why.
    case failed(String)
}

/// The sync engine's decisions, as a pure state machine: given what just happened, what to do next. The
/// ``SyncEngine`` actor performs the actions; this type does no I/O and is tested on its own.
///
/// A sync pushes until every pending mutation has a result, then pulls until the feed is caught up. An expired
/// token is refreshed once; a second expiry, or a refused refresh, signs the device out. A revoked device is
/// wiped. A transient failure is retried after an exponentially growing, jittered delay, a bounded number
/// of times.
public struct SyncPlanner: Sendable {
    /// What happened.
    public enum Event: Sendable, Hashable {
        case begin(hasPending: Bool)
        case pushed(morePending: Bool)
        case pulled(hasMore: Bool)
        case refreshed
        case waited
        case failed(TransportError)
    }

    /// What to do next.
    public enum Action: Sendable, Hashable {
        case push
        case pull
        case refresh
        case wait(TimeSpan)
        case wipe(String)
        case finish(SyncOutcome)
    }

    private enum Phase: Sendable { case push, pull }

    private let policy: SyncPolicy
    private var phase = Phase.push
    private var hasRefreshed = false
    private var failures = 0

    /// Creates a `SyncPlanner` from its parts.
    public init(policy: SyncPolicy) {
        self.policy = policy
    }

    /// The next action after an event. `jitter` (0...1) spreads retries of many devices apart.
    public mutating func next(after event: Event, jitter: Double = 1) -> Action {
        switch event {
        case .begin(let hasPending):
            phase = hasPending ? .push : .pull
            return hasPending ? .push : .pull
        case .pushed(let morePending):
            failures = 0
            if morePending { return .push }
            phase = .pull
            return .pull
        case .pulled(let hasMore):
            failures = 0
            return hasMore ? .pull : .finish(.synced)
        case .refreshed, .waited:
            return phase == .push ? .push : .pull
        case .failed(let error):
            switch error.kind {
            case .tokenExpired:
                guard !hasRefreshed else { return .finish(.signedOut("the session expired and could not be renewed")) }
                hasRefreshed = true
                return .refresh
            case .unauthorized: return .finish(.signedOut(error.message))
            case .deviceRevoked: return .wipe(error.message)
            case .upgradeRequired: return .finish(.upgradeRequired(error.message))
            case .refused: return .finish(.failed(error.message))
            case .unreachable, .serverFailure:
                failures += 1
                guard failures <= policy.retries else { return .finish(.offline(error.description)) }
                return .wait(Self.delay(attempt: failures, policy: policy, jitter: jitter))
            }
        }
    }

    /// The wait before retry `attempt` (1, 2, ...): base × 2^(attempt−1), capped, times a jitter in 0.5...1.
    public static func delay(attempt: Int, policy: SyncPolicy, jitter: Double) -> TimeSpan {
        let exponential = policy.baseDelay.milliseconds << min(max(attempt - 1, 0), 20)
        let capped = min(exponential, policy.maximumDelay.milliseconds)
        let factor = 0.5 + 0.5 * min(max(jitter, 0), 1)
        return .milliseconds(Int64(Double(capped) * factor))
    }
}
