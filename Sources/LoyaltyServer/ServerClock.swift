public import Foundation
public import LoyaltyCore
internal import Synchronization

/// The server's source of time. Production uses the system clock; `--test-clock` lets the operator set or advance
/// it through the admin API, so that expiry, grace and pending windows can be tested without waiting.
public protocol ServerClock: Sendable {
    /// The current server time.
    func now() -> Timestamp
    /// Whether the operator may move this clock.
    var isAdjustable: Bool { get }
    /// Moves the clock to `time` (adjustable clocks only).
    func set(_ time: Timestamp) throws(APIFailure)
    /// Moves the clock forward (adjustable clocks only).
    func advance(by span: TimeSpan) throws(APIFailure)
}

/// The machine's clock.
public struct SystemClock: ServerClock {
    /// The machine's clock.
    public init() {}
    public func now() -> Timestamp { Timestamp(Date()) }
    public var isAdjustable: Bool { false }
    public func set(_ time: Timestamp) throws(APIFailure) { throw Self.refusal }
    public func advance(by span: TimeSpan) throws(APIFailure) { throw Self.refusal }
    private static let refusal = APIFailure(
        .conflict, "the server clock is the system clock: start the server with --test-clock to move it")
}

/// A clock the operator can move: the system clock plus an offset, or a fixed time once set.
public final class TestClock: ServerClock {
    private let offset: Mutex<Int64>
    private let base: @Sendable () -> Timestamp

    /// A test clock that runs with the system clock until moved.
    public init(base: @escaping @Sendable () -> Timestamp = { Timestamp(Date()) }) {
        self.offset = Mutex(0)
        self.base = base
    }

    public func now() -> Timestamp { base().adding(.milliseconds(offset.withLock { $0 })) }
    public var isAdjustable: Bool { true }

    public func set(_ time: Timestamp) throws(APIFailure) {
        let base = base()
        offset.withLock { $0 = time.millisecondsSince1970 - base.millisecondsSince1970 }
    }

    public func advance(by span: TimeSpan) throws(APIFailure) {
        guard span >= .zero else { throw APIFailure(.unprocessable, "advance: the clock only moves forward; use set") }
        let limit = TimeSpan.days(365 * 200).milliseconds
        try offset.withLock { (offset: inout Int64) throws(APIFailure) in
            // The offset stays within two centuries of the machine's clock: anything further is a mistake, and an
            // unbounded sum would overflow.
            guard span.milliseconds <= limit, offset + span.milliseconds <= limit else {
                throw APIFailure(.unprocessable, "advance: the clock may move at most 200 years from the machine's")
            }
            offset += span.milliseconds
        }
    }
}
