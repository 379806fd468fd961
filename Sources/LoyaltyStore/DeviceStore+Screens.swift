internal import Foundation
internal import GRDB
public import LoyaltyCore
internal import Synchronization

// The allowance and the queries the member's screens make.
extension DeviceStore {

    /// This device's allowance as the member sees it: what is left of it after pending redemptions, if any.
    public func allowance() throws -> Allowance? {
        guard let device = try identity()?.deviceID else { return nil }
        return view?.allowances[device]
    }

    /// What to ask of the allowance on the next pull, at device time `now`: a first allowance, or a fresh one for a
    /// grant whose lease is half gone or whose points are half used. Giving a grant back is recorded first, in the
    /// same transaction that reads the last sequence number, so nothing recorded afterwards counts on it.
    public func allowanceRequest(at now: Timestamp) throws -> AllowanceRequest? {
        let confirmed = self.confirmed
        // A device that has not synced yet asks too: the server knows whether the programme grants allowances.
        if let confirmed, confirmed.program.allowances.share == 0 { return nil }
        let request = try write { db -> AllowanceRequest? in
            guard let device = try Self.identity(db)?.deviceID else { return nil }
            let row = try Row.fetchOne(
                db, sql: "SELECT next_sequence, clock_offset, releasing_grant, releasing_through FROM device")!
            let corrected = now.adding(.milliseconds(row["clock_offset"]))
            guard let held = confirmed?.allowances[device], held.status == .held, corrected <= held.holdUntil else {
                return AllowanceRequest(release: nil, through: 0)
            }
            if let grant = row["releasing_grant"] as Int?, grant == held.grant {
                return AllowanceRequest(release: grant, through: UInt64(row["releasing_through"] as Int64? ?? 0))
            }
            let halfLease = held.grantedAt.adding(
                .milliseconds(held.leaseUntil.span(since: held.grantedAt).milliseconds / 2))
            guard corrected >= halfLease || held.unused * 2 <= held.points else { return nil }
            let through = UInt64(row["next_sequence"] as Int64) - 1
            try db.execute(
                sql: "UPDATE device SET releasing_grant = ?, releasing_through = ?",
                arguments: [held.grant, Int64(through)])
            // Before this transaction ends, so that a mutation recorded right after it (recording writes under the
            // same lock) already sees the allowance given back.
            cache.withLock { $0.view?.allowances[device]?.status = .released }
            return AllowanceRequest(release: held.grant, through: through)
        }
        if request?.release != nil { try replay(now: now) }
        return request
    }

    /// The latest ledger movements, newest first: pending (optimistic) ones, then confirmed ones.
    public func history(limit: Int) throws -> [LedgerEntry] {
        let optimistic = cache.withLock { $0.optimisticEntries }.reversed()
        let confirmed = try pool.read { db in
            try Data.fetchAll(
                db, sql: "SELECT body FROM ledger_entries ORDER BY at DESC, id DESC LIMIT ?", arguments: [limit]
            ).map { data -> LedgerEntry in
                guard case .ledgerEntry(let entry) = try Entity.decode(kind: .ledgerEntry, json: data) else {
                    throw LoyaltyError(.unusableStore, "\(self.path) holds a ledger entry it cannot read")
                }
                return entry
            }
        }
        return Array((Array(optimistic) + confirmed).prefix(limit))
    }

    /// Offers the member is targeted by, with their state, soonest-ending first.
    public func offers(at now: Timestamp) -> [(offer: Offer, state: OfferState)] {
        guard let view else { return [] }
        return view.offers.values.filter { $0.targets(view.member.segments) }
            .sorted {
                ($0.validUntil ?? .init(millisecondsSince1970: .max), $0.id) < (
                    $1.validUntil ?? .init(millisecondsSince1970: .max), $1.id
                )
            }
            .map { ($0, $0.state(for: view.memberOffers[$0.id], at: now)) }
    }

    /// Notices, newest first.
    public func notices(unreadOnly: Bool = false) throws -> [Notice] {
        try pool.read { db in
            try Row.fetchAll(
                db, sql: "SELECT * FROM notices \(unreadOnly ? "WHERE read = 0" : "") ORDER BY created_at DESC, id"
            ).map { row in
                Notice(
                    id: row["id"], kind: Notice.Kind(rawValue: row["kind"]) ?? .adjusted, message: row["message"],
                    sequence: (row["sequence"] as Int64?).map { UInt64($0) }, mutationKind: row["mutation_kind"],
                    createdAt: Timestamp(millisecondsSince1970: row["created_at"]), isRead: row["read"])
            }
        }
    }

    /// Marks every notice read.
    public func markNoticesRead() throws {
        try write { db in try db.execute(sql: "UPDATE notices SET read = 1") }
    }
}
