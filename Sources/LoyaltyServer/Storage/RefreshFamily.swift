public import LoyaltyCore

/// The lifetimes and retry allowance of refresh tokens.
public struct RefreshPolicy: Sendable, Hashable {
    /// A device that has not refreshed for this long signs in again.
    public var idleLifetime: TimeSpan = .days(180)
    /// A device signs in again this long after it first signed in, however often it refreshed.
    public var absoluteLifetime: TimeSpan = .days(365)
    /// How often the token before the current one may be presented again (a device whose answer was lost retries
    /// with it) before the current one is used. More is taken for a stolen token being replayed.
    ///
    /// A bad network loses several answers in a row (the simulator's 1,000 seeds lost five in a row to one device,
    /// which 3 signed out); a thief replaying the token meanwhile gets at most this many 15-minute access tokens, and
    /// only while the member's app stays away: its next refresh catches the replay (docs/security.md).
    public var retries = 8
    /// How many superseded tokens a device's family remembers, to recognise a replay of any of them.
    public var remembered = 16

    /// The defaults.
    public init() {}
}

/// What presenting a refresh token comes to.
public enum RefreshRotation: Sendable, Hashable {
    /// Exchanged: the device's tokens rotated.
    case rotated
    /// A token of this device's family that was superseded, or a retry beyond the allowance: the whole family is
    /// revoked (the thief and the member both sign in again).
    case reused
    /// The device's tokens are past their idle or absolute lifetime.
    case expired
    /// The device is revoked.
    case revoked
    /// Not a token of this device.
    case unknown
}

/// The rule for a device's family of refresh tokens, as one pure decision: the storage reads the device, asks this,
/// and writes the result in the same transaction, so that the check and the rotation are one atomic step.
public enum RefreshFamily {
    /// Decides what presenting `presented` (a hash) does to `device`, and returns the device as it must be stored.
    public static func decide(
        _ device: DeviceRecord, presented: [UInt8], next: [UInt8], now: Timestamp, policy: RefreshPolicy
    ) -> (RefreshRotation, DeviceRecord) {
        var device = device
        guard device.revokedAt == nil else { return (.revoked, device) }
        let isCurrent = constantTimeEqual(presented, device.refreshHash)
        let isPrevious = device.previousRefreshHash.map { constantTimeEqual(presented, $0) } == true
        let isSuperseded = device.supersededRefreshHashes.contains { constantTimeEqual(presented, $0) }
        if isSuperseded || (isPrevious && device.refreshRetries >= policy.retries) {
            device.revokedAt = now
            device.revokedReason = .refreshTokenReused
            return (.reused, device)
        }
        guard isCurrent || isPrevious else { return (.unknown, device) }
        let lastUse = device.rotatedAt ?? device.createdAt
        if now > lastUse.adding(policy.idleLifetime) || now > device.createdAt.adding(policy.absoluteLifetime) {
            return (.expired, device)
        }
        if isCurrent {
            // The ordinary rotation: the token the device holds becomes "previous", good for a retry until the new
            // one is used; the one before it is superseded for good.
            if let previous = device.previousRefreshHash { device.remember(previous, keeping: policy.remembered) }
            device.previousRefreshHash = presented
            device.refreshRetries = 0
        } else {
            // A retry with the previous token (the answer to it was lost, or a thief replays it): the current token,
            // never used, is superseded, so that whichever party holds it is caught when it is presented.
            device.remember(device.refreshHash, keeping: policy.remembered)
            device.refreshRetries += 1
        }
        device.refreshHash = next
        device.rotatedAt = now
        return (.rotated, device)
    }
}

extension DeviceRecord {
    fileprivate mutating func remember(_ hash: [UInt8], keeping limit: Int) {
        supersededRefreshHashes.append(hash)
        if supersededRefreshHashes.count > limit { supersededRefreshHashes.removeFirst() }
    }
}
