internal import Foundation
internal import GRDB
public import LoyaltyCore
internal import Synchronization

// The view: the confirmed state with the outbox replayed on it.
extension DeviceStore {

    /// What the member sees: the confirmed state with the pending mutations replayed; nil before the first sync.
    public var view: MemberState? { cache.withLock { $0.view } }

    /// The state the server confirmed; nil before the first sync.
    public var confirmed: MemberState? { cache.withLock { $0.confirmed } }

    /// Reloads the confirmed state from the file and replays the outbox on it (at open, and after a reset).
    public func rebuildView(now: Timestamp) throws {
        // The programme and the member record first, then every other entity merged as it is read: the entities are
        // never all in memory at once beside the state they make (a device holding 100,000 movements would hold
        // them twice).
        let confirmed = try pool.read { db -> MemberState? in
            var program: Program?
            var member: MemberRecord?
            for row in try Row.fetchAll(db, sql: "SELECT kind, body FROM confirmed WHERE kind IN ('program', 'member')")
            {
                switch try Entity.decode(kind: EntityKey.Kind(rawValue: row["kind"])!, json: row["body"]) {
                case .program(let value): program = value
                case .member(let value): member = value
                default: continue
                }
            }
            guard let program, let member else { return nil }
            var state = MemberState(program: program, member: member)
            // Sized once for the lots about to be read: growing by doubling would hold the old and new arrays at once.
            state.ledger.reserveCapacity(
                lots: try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM confirmed WHERE kind = 'lot'") ?? 0)
            let rows = try Row.fetchCursor(
                db, sql: "SELECT kind, body FROM confirmed WHERE kind NOT IN ('program', 'member')")
            while let row = try rows.next() {
                guard let kind = EntityKey.Kind(rawValue: row["kind"]) else { continue }
                state.merge(try Entity.decode(kind: kind, json: row["body"]))
            }
            return state
        }
        guard let confirmed else {
            cache.withLock { $0 = ViewCache() }
            return
        }
        cache.withLock { $0.confirmed = confirmed }
        try replay(now: now)
    }

    /// The view: the confirmed state with every mutation still in the outbox replayed on it, in order. Mutations
    /// the server already decided are replayed too until the pulled state covers them.
    func replay(now: Timestamp) throws {
        let outbox = try outbox(now: now)
        cache.withLock { cache in
            guard let confirmed = cache.confirmed else { return }
            (cache.view, cache.optimisticEntries) = Self.replayed(outbox, on: confirmed)
        }
    }

    /// What a replay reads from the file: the outbox, the allowance being given back, the corrected time.
    struct Outbox {
        var pending: [PendingMutation]
        var releasing: (device: DeviceID, grant: Int)?
        var now: Timestamp
    }

    func outbox(now: Timestamp) throws -> Outbox {
        Outbox(
            pending: try pendingMutations(), releasing: try pool.read { db in try Self.releasing(db) },
            now: try correctedTime(now))
    }

    /// The view: `confirmed` with the outbox replayed on it, and the ledger entries the replay made.
    static func replayed(_ outbox: Outbox, on confirmed: MemberState) -> (MemberState, [LedgerEntry]) {
        var view = confirmed
        var optimistic: [LedgerEntry] = []
        // An allowance this device is giving back is not counted on any more, even before the server confirms it.
        if let (device, grant) = outbox.releasing, view.allowances[device]?.grant == grant {
            view.allowances[device]?.status = .released
        }
        for mutation in outbox.pending {
            let envelope = mutation.envelope
            let outcome = view.apply(envelope, context: .device(now: outbox.now, actedAt: envelope.deviceTime))
            for case .ledgerEntry(let entry) in outcome.changes { optimistic.append(entry) }
            // A promise made stays made: a redemption that was guaranteed when it was made is shown so until decided.
            if mutation.guaranteed, view.vouchers[VoucherID(envelope.mutationID)]?.status == .provisional {
                view.vouchers[VoucherID(envelope.mutationID)]?.status = .guaranteed
            }
        }
        return (view, optimistic)
    }

    /// The balance screen.
    public func balance(at now: Timestamp) -> BalanceSummary? { view?.balance(at: now) }

}
