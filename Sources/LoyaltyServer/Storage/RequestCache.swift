internal import LoyaltyCore
internal import Synchronization

/// What the embedded store keeps in memory so that a request that changes nothing is answered without SQLite.
///
/// It keeps the devices that made requests lately (every request checks its token) and each scope's newest feed
/// version with the feed's horizon (a pull whose cursor is already the newest is answered at once). It is correct
/// only because this process alone writes the store and every write tells it once committed, before it is
/// answered; docs/architecture.md ("The request cache") gives the argument. At most ``limit`` devices and scopes.
final class RequestCache: Sendable {
    /// Taken before a read from the store; given back with what was read.
    struct Ticket {
        fileprivate let value: UInt64
    }

    private enum Slot {
        /// As the store holds it since this tick of the clock.
        case record(DeviceRecord, at: UInt64)
        /// Written at this tick of the clock, with the change not known here.
        case forgotten(at: UInt64)

        /// A read that began before this tick is not kept.
        var at: UInt64 {
            switch self {
            case .record(_, let at), .forgotten(let at): at
            }
        }
    }

    private struct State {
        var devices: [DeviceID: Slot] = [:]
        var heads: [String: Int64] = [:]
        var horizon: Int64?
        /// Ticks with every device written (forgotten or changed) and every drop.
        var clock: UInt64 = 0
        /// Reads that began before the last drop are not kept (what they raced may have been dropped with it).
        var floor: UInt64 = 0

        mutating func dropAll() {
            devices = [:]
            heads = [:]
            horizon = nil
            clock += 1
            floor = clock
        }
    }

    static let catalogueScope = "*"
    let limit: Int
    private let state = Mutex(State())

    init(limit: Int = 50_000) {
        self.limit = limit
    }

    func ticket() -> Ticket {
        state.withLock { Ticket(value: $0.clock) }
    }

    // MARK: Devices

    /// The device's record if it is kept.
    func device(_ id: DeviceID) -> DeviceRecord? {
        state.withLock { state in
            guard case .record(let record, _)? = state.devices[id] else { return nil }
            return record
        }
    }

    /// Keeps a record read from the store, unless the device was written (or everything dropped) since `ticket`.
    func keep(_ record: DeviceRecord, readWith ticket: Ticket) {
        state.withLock { state in
            guard ticket.value >= state.floor else { return }
            if let slot = state.devices[record.id], slot.at > ticket.value { return }
            // Nothing was told of this device since the read began, so it may be kept even if this drops the rest.
            if state.devices[record.id] == nil, state.devices.count >= limit { state.dropAll() }
            state.devices[record.id] = .record(record, at: ticket.value)
        }
    }

    /// A write to these devices' rows is committed.
    func forget<Devices: Sequence<DeviceID>>(devices ids: Devices) {
        state.withLock { state in
            for id in ids {
                if state.devices[id] == nil, state.devices.count >= limit { state.dropAll() }
                state.clock += 1
                state.devices[id] = .forgotten(at: state.clock)
            }
        }
    }

    /// A write to a device's row is committed that did to it what `change` does to a record. Writes told this way
    /// must give the same row in any order (they set different fields, or raise a time to the later).
    func update(device id: DeviceID, _ change: (inout DeviceRecord) -> Void) {
        state.withLock { state in
            state.clock += 1
            if case .record(var record, _)? = state.devices[id] {
                change(&record)
                state.devices[id] = .record(record, at: state.clock)
            } else {
                if state.devices[id] == nil, state.devices.count >= limit { state.dropAll() }
                state.devices[id] = .forgotten(at: state.clock)
            }
        }
    }

    // MARK: The feed

    /// Whether a member's feed has nothing after `cursor`, known from memory: the cursor is the newest version of
    /// both the member's scope and the catalogue's, and not before the horizon. Nil when that is not known.
    func unchanged(member: MemberID, after cursor: UInt64) -> (horizon: UInt64, newest: UInt64)? {
        state.withLock { state in
            guard let own = state.heads[member.rawValue], let catalogue = state.heads[Self.catalogueScope],
                let horizon = state.horizon, Int64(clamping: cursor) == max(own, catalogue),
                Int64(clamping: cursor) >= horizon
            else { return nil }
            return (UInt64(horizon), cursor)
        }
    }

    /// Committed: `scope`'s newest version is now `version`.
    func raise(scope: String, to version: Int64) {
        state.withLock { state in raise(&state, scope: scope, to: version) }
    }

    /// Committed: the horizon is now `horizon`.
    func raise(horizon: Int64) {
        state.withLock { state in state.horizon = max(state.horizon ?? horizon, horizon) }
    }

    /// Keeps versions and the horizon read from the store (unless everything was dropped since `ticket`): they only
    /// grow, so the greater of what is kept and what was read is kept.
    func keep(heads: [String: Int64], horizon: Int64, readWith ticket: Ticket) {
        state.withLock { state in
            guard ticket.value >= state.floor else { return }
            for (scope, version) in heads {
                raise(&state, scope: scope, to: version)
                guard ticket.value >= state.floor else { return }
            }
            state.horizon = max(state.horizon ?? horizon, horizon)
        }
    }

    private func raise(_ state: inout State, scope: String, to version: Int64) {
        if state.heads[scope] == nil, state.heads.count >= limit { state.dropAll() }
        state.heads[scope] = max(state.heads[scope] ?? version, version)
    }
}
