/// Allowances (escrow): the server reserves points for each device, so that a redemption a device makes offline
/// within its allowance cannot bounce. The rule, kept by every operation that moves points:
///
///     Σ reserved(d) ≤ reservable(through: the latest hold of any held allowance)
///
/// where `reservable(through: t)` is what is left in active lots that outlive `t`, less what is owed. Expiry
/// before every hold ends takes nothing the rule counts; a spend of device `d` is allowed up to
/// `available − Σ reserved(others)`, and drawing the lot that expires first first keeps the rule (see
/// docs/allowances.md for the argument). Only a return can break it; then the allowances are cut to fit.
extension MemberState {
    /// Points reserved at `now` for devices other than `device` (for every device when nil).
    public func reservedPoints(at now: Timestamp, excluding device: DeviceID? = nil) -> Int {
        allowances.values.reduce(0) { $0 + ($1.deviceID == device ? 0 : $1.reserved(at: now)) }
    }

    /// What allowances held until `time` may draw on: points in active lots that never expire or expire after
    /// `time`, less the points owed.
    public func reservablePoints(through time: Timestamp) -> Int {
        let lasting = ledger.lots.values.reduce(0) { sum, lot in
            lot.state == .active && (lot.expiresAt.map { $0 > time } ?? true) ? sum + lot.remaining : sum
        }
        return lasting - ledger.owed
    }

    /// Whether the allowances' rule holds at `now`: what is reserved is covered by points that outlive every hold.
    public func allowancesAreCovered(at now: Timestamp) -> Bool {
        let held = allowances.values.filter { $0.isHeld(at: now) }
        guard let latest = held.map(\.holdUntil).max() else { return true }
        return reservedPoints(at: now) <= max(reservablePoints(through: latest), 0)
    }

    /// Grants `device` a new allowance at `now` if it holds none, following the programme's policy: its share of
    /// the reservable points split across `devices`, at most the cap, and never more than is left unreserved.
    public mutating func grantAllowance(to device: DeviceID, devices: Int, at now: Timestamp) -> [Entity] {
        let policy = program.allowances
        guard policy.share > 0, member.status == .active, activeCard != nil else { return [] }
        let current = allowances[device]
        if let current, current.isHeld(at: now) { return [] }
        let leaseUntil = now.adding(policy.lease)
        let holdUntil = leaseUntil.adding(program.offlineGrace)
        let otherHolds = allowances.values.filter { $0.deviceID != device && $0.isHeld(at: now) }.map(\.holdUntil)
        let base = reservablePoints(through: max(holdUntil, otherHolds.max() ?? holdUntil))
        let target = min(policy.cap, max(base, 0) * policy.share / 100 / max(devices, 1))
        let points = min(target, base - reservedPoints(at: now, excluding: device))
        guard points > 0 else { return [] }
        let allowance = Allowance(
            deviceID: device, grant: (current?.grant ?? 0) + 1, points: points, grantedAt: now, leaseUntil: leaseUntil,
            holdUntil: holdUntil)
        allowances[device] = allowance
        return [.allowance(allowance)]
    }

    /// The device gives back grant `grant` of its allowance. Another grant, or one no longer held, is left alone.
    public mutating func releaseAllowance(of device: DeviceID, grant: Int) -> [Entity] {
        endAllowance(of: device, as: .released) { $0.grant == grant && $0.status == .held }
    }

    /// The device was signed out: its allowance returns to the member's balance.
    public mutating func revokeAllowance(of device: DeviceID) -> [Entity] {
        endAllowance(of: device, as: .revoked) { $0.status == .held }
    }

    /// Marks every allowance whose hold ended by `now` as lapsed.
    public mutating func lapseAllowances(at now: Timestamp) -> [Entity] {
        allowances.keys.sorted().flatMap { device in
            endAllowance(of: device, as: .lapsed) { $0.status == .held && $0.holdUntil < now }
        }
    }

    private mutating func endAllowance(
        of device: DeviceID, as status: Allowance.Status, when condition: (Allowance) -> Bool
    ) -> [Entity] {
        guard var allowance = allowances[device], condition(allowance) else { return [] }
        allowance.status = status
        allowances[device] = allowance
        return [.allowance(allowance)]
    }

    /// Counts a spend of `device` against its allowance.
    mutating func useAllowance(of device: DeviceID, points: Int, at now: Timestamp) -> [Entity] {
        guard var allowance = allowances[device], allowance.isHeld(at: now), allowance.unused > 0 else { return [] }
        allowance.used += min(points, allowance.unused)
        allowances[device] = allowance
        return [.allowance(allowance)]
    }

    /// After a return took points the allowances relied on, cuts them (the largest first) until the rule holds.
    mutating func coverAllowances(at now: Timestamp) -> [Entity] {
        let held = allowances.values.filter { $0.isHeld(at: now) && $0.unused > 0 }
        guard let latest = held.map(\.holdUntil).max() else { return [] }
        var excess = reservedPoints(at: now) - max(reservablePoints(through: latest), 0)
        var changes: [Entity] = []
        for var allowance in held.sorted(by: { ($0.unused, $0.deviceID) > ($1.unused, $1.deviceID) }) where excess > 0 {
            let cut = min(allowance.unused, excess)
            allowance.cut += cut
            excess -= cut
            allowances[allowance.deviceID] = allowance
            changes.append(.allowance(allowance))
        }
        return changes
    }
}
