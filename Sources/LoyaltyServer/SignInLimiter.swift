public import LoyaltyCore
internal import Synchronization

/// How many sign-ins the server takes, per client address and per account.
public struct SignInLimits: Sendable, Hashable {
    /// Sign-in, enrolment and refresh requests one client address may make per ``addressWindow``.
    public var perAddress = 30
    /// The window of ``perAddress``.
    public var addressWindow: TimeSpan = .minutes(1)
    /// Failed sign-ins to one account per ``accountWindow``, from any address, after which the account takes no
    /// sign-in (not even the right password) until the window ends: a member is locked out by someone else's
    /// guessing for at most this window.
    public var failuresPerAccount = 10
    /// The window of ``failuresPerAccount``.
    public var accountWindow: TimeSpan = .minutes(15)
    /// Whether limits apply at all (a load test or a simulation turns them off).
    public var enabled = true

    /// The defaults.
    public init() {}
}

/// Fixed-window counters in this process's memory, bounded in size: each server instance limits what reaches it
/// (a PostgreSQL deployment of several instances multiplies the per-address figure by their number).
final class SignInLimiter: Sendable {
    private struct Window {
        var start: Int64
        var count: Int
    }

    private let limits: SignInLimits
    private let windows = Mutex([String: Window]())
    /// Most keys kept; beyond it the expired windows are dropped, and if none has expired, all of them.
    private let capacity = 100_000

    init(limits: SignInLimits) { self.limits = limits }

    /// Counts a request from `address`; refuses it (429) once the address is over its limit.
    func admit(address: String, at now: Timestamp) throws(APIFailure) {
        guard limits.enabled else { return }
        let wait = count("address:\(address)", limit: limits.perAddress, window: limits.addressWindow, at: now)
        if let wait { throw Self.refusal("too many sign-in requests from this address", wait: wait) }
    }

    /// Refuses a sign-in to `account` (429) while it is over its limit of failures.
    func checkAccount(_ account: String, at now: Timestamp) throws(APIFailure) {
        guard limits.enabled else { return }
        let key = "account:\(account.lowercased())"
        let wait = windows.withLock { windows -> Int64? in
            guard let window = windows[key] else { return nil }
            let end = window.start + limits.accountWindow.milliseconds
            return window.count >= limits.failuresPerAccount && now.millisecondsSince1970 < end
                ? end - now.millisecondsSince1970 : nil
        }
        if let wait {
            throw Self.refusal("too many failed sign-ins to this account; it takes none for a while", wait: wait)
        }
    }

    /// Records a failed sign-in to `account`.
    func recordFailure(account: String, at now: Timestamp) {
        guard limits.enabled else { return }
        _ = count(
            "account:\(account.lowercased())", limit: .max, window: limits.accountWindow, at: now)
    }

    /// Counts one more in `key`'s window; returns the milliseconds to wait if that is over `limit`.
    private func count(_ key: String, limit: Int, window span: TimeSpan, at now: Timestamp) -> Int64? {
        let time = now.millisecondsSince1970
        return windows.withLock { windows -> Int64? in
            if windows.count >= capacity, windows[key] == nil {
                let longest = max(limits.addressWindow.milliseconds, limits.accountWindow.milliseconds)
                windows = windows.filter { time - $0.value.start < longest }
                if windows.count >= capacity { windows.removeAll() }
            }
            var window = windows[key] ?? Window(start: time, count: 0)
            if time - window.start >= span.milliseconds { window = Window(start: time, count: 0) }
            window.count += 1
            windows[key] = window
            return window.count > limit ? window.start + span.milliseconds - time : nil
        }
    }

    private static func refusal(_ message: String, wait milliseconds: Int64) -> APIFailure {
        let seconds = Int(max(1, (milliseconds + 999) / 1000))
        var failure = APIFailure(.tooManyRequests, "\(message): try again in \(seconds) s")
        failure.retryAfterSeconds = seconds
        return failure
    }
}
