internal import LoyaltyCore

/// Member states kept between units of work, each with the versions it reflects: the ones committed groups left
/// (``GroupCommitter/states``), and within a group the ones its earlier units left; at most `limit` members (the
/// least recently used are dropped first).
struct StateCache {
    struct Versions: Hashable {
        var member: Int64
        var catalogue: Int64
    }

    private var entries: [MemberID: (state: MemberState, versions: Versions, used: UInt64)] = [:]
    private var clock: UInt64 = 0
    let limit = 2048

    /// Removes and returns the kept state of a member if it reflects exactly these versions (the group of the unit
    /// of work that takes it keeps it again once committed; a unit that fails leaves none, and the next loads from
    /// the store).
    mutating func take(_ member: MemberID, at versions: Versions) -> MemberState? {
        guard let entry = entries.removeValue(forKey: member) else { return nil }
        return entry.versions == versions ? entry.state : nil
    }

    /// Keeps the states another cache holds (a committed group's), oldest use first.
    mutating func keep(all other: StateCache) {
        for (member, entry) in other.entries.sorted(by: { $0.value.used < $1.value.used }) {
            keep(entry.state, of: member, at: entry.versions)
        }
    }

    /// Keeps a state unless a newer one is kept already (the versions only grow, except when compaction drops a
    /// newest tombstone, and then the older state must not come back).

    mutating func keep(_ state: MemberState, of member: MemberID, at versions: Versions) {
        if let kept = entries[member]?.versions,
            kept.member > versions.member || kept.catalogue > versions.catalogue
        {
            entries[member] = nil
            return
        }
        clock += 1
        entries[member] = (state, versions, clock)
        if entries.count > limit {
            let oldest = entries.sorted { $0.value.used < $1.value.used }.prefix(limit / 4).map(\.key)
            for key in oldest { entries[key] = nil }
        }
    }
}
