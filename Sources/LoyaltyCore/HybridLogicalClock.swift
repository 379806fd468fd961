/// A hybrid logical clock stamp (Kulkarni et al., 2014): the physical time in milliseconds it was taken at,
/// or later, plus a counter that orders stamps taken within the same millisecond.
///
/// Stamps are totally ordered by (`wallMilliseconds`, `counter`). Encoded in 64 bits: the top 48 bits are
/// the wall time (enough until the year 10889), the low 16 the counter.
public struct HLCTimestamp: Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    /// Physical component in milliseconds since 1970.
    public var wallMilliseconds: Int64
    /// Logical component for stamps that share a physical component.
    public var counter: UInt16

    /// The stamp before every other.
    public static let zero = HLCTimestamp(wallMilliseconds: 0, counter: 0)

    /// Creates a stamp from its parts.
    public init(wallMilliseconds: Int64, counter: UInt16) {
        precondition(wallMilliseconds >= 0 && wallMilliseconds < (1 << 48), "HLC wall time out of range")
        self.wallMilliseconds = wallMilliseconds
        self.counter = counter
    }

    /// Decodes the 64-bit form.
    public init(encoded: UInt64) {
        self.wallMilliseconds = Int64(encoded >> 16)
        self.counter = UInt16(truncatingIfNeeded: encoded)
    }

    /// The 64-bit form: ordering the integers orders the stamps.
    public var encoded: UInt64 { UInt64(wallMilliseconds) << 16 | UInt64(counter) }

    /// The physical component as a timestamp.
    public var wallTime: Timestamp { Timestamp(millisecondsSince1970: wallMilliseconds) }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.encoded < rhs.encoded }

    public init(from decoder: any Decoder) throws {
        self.init(encoded: try decoder.singleValueContainer().decode(UInt64.self))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(encoded)
    }

    public var description: String { "\(wallTime)#\(counter)" }
}

/// The clock state of one node (a device or the server).
///
/// `now(wall:)` stamps a local event; `receive(_:wall:)` folds in a stamp seen from elsewhere, so that every
/// later local stamp is greater than anything this node has seen (causality). When the wall clock stands
/// still or goes backwards, stamps keep increasing through the counter; when the counter would overflow,
/// the physical component moves on by a millisecond. A remote stamp further ahead of the local wall clock
/// than `maximumDrift` is refused, so that one broken clock cannot drag every node's stamps into the future.
public struct HybridLogicalClock: Sendable, Hashable, Codable {
    /// The last stamp this clock issued or received.
    public private(set) var last: HLCTimestamp
    /// How far a received stamp may run ahead of the local wall clock.
    public var maximumDrift: TimeSpan

    /// Creates a clock that has seen nothing yet, or resumes one from its last stamp.
    public init(last: HLCTimestamp = .zero, maximumDrift: TimeSpan = .days(3)) {
        self.last = last
        self.maximumDrift = maximumDrift
    }

    /// A stamp for a local event at the given (corrected) wall time, greater than every earlier stamp.
    public mutating func now(wall: Timestamp) -> HLCTimestamp {
        advance(to: Self.clamped(wall), seen: nil)
    }

    /// Folds in a stamp from another node and returns a local stamp greater than both.
    public mutating func receive(_ remote: HLCTimestamp, wall: Timestamp) throws(LoyaltyError) -> HLCTimestamp {
        let drift = TimeSpan(milliseconds: remote.wallMilliseconds - wall.millisecondsSince1970)
        guard drift <= maximumDrift else {
            throw LoyaltyError(
                .clockDrift,
                "a stamp \(drift) ahead of this clock arrived (at most \(maximumDrift) is accepted); check the clock")
        }
        return advance(to: Self.clamped(wall), seen: remote)
    }

    /// A wall time within the 48 bits a stamp holds (a clock set absurdly far off must not stop the device).
    private static func clamped(_ wall: Timestamp) -> Int64 {
        min(max(wall.millisecondsSince1970, 0), (1 << 48) - 2)
    }

    private mutating func advance(to wall: Int64, seen remote: HLCTimestamp?) -> HLCTimestamp {
        let top = max(last, remote ?? .zero)
        let next: HLCTimestamp
        if wall > top.wallMilliseconds {
            next = HLCTimestamp(wallMilliseconds: wall, counter: 0)
        } else if top.counter < .max {
            next = HLCTimestamp(wallMilliseconds: top.wallMilliseconds, counter: top.counter + 1)
        } else if top.wallMilliseconds < (1 << 48) - 1 {
            next = HLCTimestamp(wallMilliseconds: top.wallMilliseconds + 1, counter: 0)
        } else {
            next = top  // the stamp space ends in the year 10889: saturate rather than trap
        }
        last = next
        return next
    }
}

/// A device clock's measured offset against the server: add it to the device's wall time to get server time.
///
/// Measured at every contact from the request's send and receive times and the server's time in the answer
/// (Cristian's algorithm): offset = server − (sent + received) / 2, with an error bound of half the round trip.
public struct ClockOffset: Hashable, Sendable, Codable {
    /// Server time minus device time.
    public var offset: TimeSpan
    /// Half the round trip of the measurement: the true offset lies within ± this.
    public var uncertainty: TimeSpan

    /// No offset: the device clock is taken as right.
    public static let zero = ClockOffset(offset: .zero, uncertainty: .zero)

    /// Creates an offset from its parts.
    public init(offset: TimeSpan, uncertainty: TimeSpan) {
        self.offset = offset
        self.uncertainty = uncertainty
    }

    /// Measures the offset from one request: when it was sent and answered by the device clock, and the
    /// server's time in the answer.
    public init(sent: Timestamp, received: Timestamp, serverTime: Timestamp) {
        let roundTrip = max(received.millisecondsSince1970 - sent.millisecondsSince1970, 0)
        let midpoint = sent.millisecondsSince1970 + roundTrip / 2
        self.offset = TimeSpan(milliseconds: serverTime.millisecondsSince1970 - midpoint)
        self.uncertainty = TimeSpan(milliseconds: roundTrip / 2)
    }

    /// A device time turned into server time.
    public func corrected(_ deviceTime: Timestamp) -> Timestamp { deviceTime.adding(offset) }
}
