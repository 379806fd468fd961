/// Points the server reserved for one device alone (escrow): the device may spend them offline with the
/// certainty that the server accepts the redemption, whatever the member's other devices, the till or the expiry
/// job do meanwhile. See docs/allowances.md for the rule and why it cannot overdraw.
///
/// A device holds at most one allowance at a time; each new grant has the next ``grant`` number. Only the
/// device itself gives an allowance back (it asks when it syncs), so the server never takes back points a
/// device may already have spent offline. The exceptions are the end of the hold, a revoked device and a
/// return of the purchase the points came from (``cut``).
public struct Allowance: Hashable, Sendable, Codable {
    /// Where an allowance stands.
    public enum Status: String, Hashable, Sendable, Codable {
        /// Reserved for the device.
        case held
        /// Given back by the device when it synced.
        case released
        /// Its hold ended before the device gave it back.
        case lapsed
        /// Its device was signed out.
        case revoked
    }

    /// The device it is reserved for.
    public var deviceID: DeviceID
    /// Which grant of this device it is: 1, 2, ...
    public var grant: Int
    /// Points reserved when it was granted.
    public var points: Int
    /// Points the device has spent under it.
    public var used: Int
    /// Points a return took back from it.
    public var cut: Int
    /// When it was granted (server time).
    public var grantedAt: Timestamp
    /// The device may count on it for redemptions made until then.
    public var leaseUntil: Timestamp
    /// The server keeps the points reserved until then: the lease plus the programme's offline grace, so that a
    /// redemption made just before the lease ends can still reach the server.
    public var holdUntil: Timestamp
    /// Where it stands.
    public var status: Status

    /// Creates an allowance.
    public init(
        deviceID: DeviceID, grant: Int, points: Int, used: Int = 0, cut: Int = 0, grantedAt: Timestamp,
        leaseUntil: Timestamp, holdUntil: Timestamp, status: Status = .held
    ) {
        self.deviceID = deviceID
        self.grant = grant
        self.points = points
        self.used = used
        self.cut = cut
        self.grantedAt = grantedAt
        self.leaseUntil = leaseUntil
        self.holdUntil = holdUntil
        self.status = status
    }

    /// Points not yet spent or taken back (whatever the status).
    public var unused: Int { max(points - used - cut, 0) }

    /// Whether the points are still reserved at `now`.
    public func isHeld(at now: Timestamp) -> Bool { status == .held && now <= holdUntil }

    /// Points reserved for the device at `now`.
    public func reserved(at now: Timestamp) -> Int { isHeld(at: now) ? unused : 0 }

    /// Points the device may redeem with certainty at `time`: the lease must still run.
    public func spendable(at time: Timestamp) -> Int { status == .held && time < leaseUntil ? unused : 0 }
}

/// How the server grants allowances: part of the programme's rules.
public struct AllowancePolicy: Hashable, Sendable, Codable {
    /// Percent of the member's reservable points that is split across the member's devices (0 turns allowances
    /// off; 100 reserves everything, leaving nothing for the till).
    public var share: Int
    /// The most points one device holds.
    public var cap: Int
    /// How long a device may count on its allowance; it asks for a fresh one when half of it is gone.
    public var lease: TimeSpan

    /// Creates a policy.
    public init(share: Int, cap: Int, lease: TimeSpan) {
        self.share = share
        self.cap = cap
        self.lease = lease
    }

    /// Half of the reservable points across the devices, at most 1,000 per device, for 7 days.
    public static let standard = AllowancePolicy(share: 50, cap: 1000, lease: .days(7))

    /// No allowances: every offline redemption is provisional.
    public static let off = AllowancePolicy(share: 0, cap: 0, lease: .days(1))

    func validate(program: String) throws(LoyaltyError) {
        guard (0...100).contains(share), (0...10_000_000).contains(cap), lease >= .hours(1), lease <= .days(90)
        else {
            throw LoyaltyError(
                .invalidProgram,
                "programme '\(program)': allowances need share 0...100, cap 0...10000000 and a lease of 1h to 90d")
        }
    }
}

/// What a device asks of its allowance when it pulls.
public struct AllowanceRequest: Hashable, Sendable, Codable {
    /// The grant the device gives back, if it holds one. It stopped counting on it before it asked.
    public var release: Int?
    /// The device's last recorded sequence number when it stopped counting on that grant: the server releases it
    /// only once it has processed every mutation up to this one, since any of them may have spent from it.
    public var through: UInt64

    /// Creates a request.
    public init(release: Int?, through: UInt64) {
        self.release = release
        self.through = through
    }
}
