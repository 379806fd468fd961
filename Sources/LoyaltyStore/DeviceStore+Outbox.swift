internal import Foundation
internal import GRDB
public import LoyaltyCore
internal import Synchronization

// The member's mutations: recorded offline, pushed, and their results turned into notices.
extension DeviceStore {

    /// Records what the member did: checked against the view, applied to it at once, and written to the outbox
    /// in one transaction. A mutation the view itself refuses is not queued: the refusal is thrown.
    ///
    /// The mutation is applied to the view in place (a copy would copy every collection it writes to); if the
    /// transaction then fails, the view is rebuilt from the file, so it never shows a mutation the outbox lacks.
    @discardableResult
    public func record(_ mutation: Mutation, at deviceTime: Timestamp) throws -> (MutationEnvelope, MutationOutcome) {
        var applied = false
        do {
            let (envelope, outcome) = try write { db -> (MutationEnvelope, MutationOutcome) in
                // One read of the device row, through cached statements: this is the hot path of every tap.
                let row = try Row.fetchOne(
                    db.cachedStatement(
                        sql: "SELECT identity, next_sequence, clock_offset, hlc FROM device WHERE id = 1"))!
                guard let identityData = row["identity"] as Data? else {
                    throw LoyaltyError(.notSignedIn, "this device is not signed in: enroll or log in first")
                }
                let identity = try identityCache.withLock { cached in
                    if let cached = cached, cached.data == identityData { return cached.identity }
                    let decoded = try JSONDecoder().decode(DeviceIdentity.self, from: identityData)
                    cached = (identityData, decoded)
                    return decoded
                }
                let sequence = UInt64(row["next_sequence"] as Int64)
                let corrected = deviceTime.adding(.milliseconds(row["clock_offset"]))
                var clock = HybridLogicalClock(last: HLCTimestamp(encoded: UInt64(bitPattern: row["hlc"])))
                let stamp = clock.now(wall: corrected)
                let decided = try cache.withLock { cache -> (MutationEnvelope, MutationOutcome) in
                    guard cache.view != nil else {
                        throw LoyaltyError(.notBootstrapped, "this device has no data yet: sync once while online")
                    }
                    var mutation = mutation
                    if case .setProfileField(let field, let value, nil) = mutation {
                        mutation = .setProfileField(field, value: value, basedOn: cache.view!.profile[field]?.stamp)
                    }
                    let envelope = MutationEnvelope(
                        deviceID: identity.deviceID, sequence: sequence, stamp: stamp, deviceTime: corrected,
                        mutation: mutation)
                    let outcome = cache.view!.apply(envelope, context: .device(now: corrected, actedAt: corrected))
                    if let rejection = outcome.rejection {
                        throw LoyaltyError(.refused, rejection.message, cause: rejection)
                    }
                    applied = true
                    for case .ledgerEntry(let entry) in outcome.changes { cache.optimisticEntries.append(entry) }
                    return (envelope, outcome)
                }
                try db.cachedStatement(
                    sql: "INSERT INTO outbox (sequence, envelope, created_at, guaranteed) VALUES (?, ?, ?, ?)"
                ).execute(arguments: [
                    Int64(sequence), try StreamingJSON.encode(decided.0), deviceTime.millisecondsSince1970,
                    decided.1.isGuaranteed,
                ])
                try db.cachedStatement(sql: "UPDATE device SET next_sequence = ?, hlc = ?").execute(arguments: [
                    Int64(sequence + 1), Int64(bitPattern: clock.last.encoded),
                ])
                return decided
            }
            return (envelope, outcome)
        } catch {
            // The view took a mutation the file did not: put it back as the file has it.
            if applied { try? replay(now: deviceTime) }
            throw error
        }
    }

    /// Every mutation in the outbox, in sequence order.
    public func pendingMutations() throws -> [PendingMutation] {
        let rows = try pool.read { db in try Row.fetchAll(db, sql: "SELECT * FROM outbox ORDER BY sequence") }
        return try decodedOutbox.withLock { decoded in
            var kept: [Int64: DecodedOutboxRow] = [:]
            kept.reserveCapacity(rows.count)
            let pending = try rows.map { row in
                let sequence: Int64 = row["sequence"]
                let envelopeBytes: Data = row["envelope"]
                let resultBytes: Data? = row["result"]
                // Decoded again only where the bytes differ from those decoded for this sequence number before.
                var entry: DecodedOutboxRow
                if let known = decoded[sequence], known.envelopeBytes == envelopeBytes {
                    entry = known
                } else {
                    entry = DecodedOutboxRow(
                        envelopeBytes: envelopeBytes,
                        envelope: try JSONDecoder().decode(MutationEnvelope.self, from: envelopeBytes))
                }
                if entry.resultBytes != resultBytes {
                    entry.resultBytes = resultBytes
                    entry.result = try resultBytes.map { try JSONDecoder().decode(MutationResult.self, from: $0) }
                }
                kept[sequence] = entry
                return PendingMutation(
                    envelope: entry.envelope, result: entry.result,
                    createdAt: Timestamp(millisecondsSince1970: row["created_at"]), guaranteed: row["guaranteed"])
            }
            // What left the outbox leaves the cache.
            decoded = kept
            return pending
        }
    }

    /// Takes the server's results for pushed mutations. A rejected mutation leaves the outbox with a notice that
    /// says what was undone; an adjusted one gets a notice and stays until the pulled state covers it; an
    /// `out_of_order` answer is not a decision and changes nothing.
    public func recordResults(_ results: [MutationResult], at time: Timestamp) throws -> [Notice] {
        let notices = try write { db -> [Notice] in
            var notices: [Notice] = []
            let setResult = try db.cachedStatement(sql: "UPDATE outbox SET result = ? WHERE sequence = ?")
            let readEnvelope = try db.cachedStatement(sql: "SELECT envelope FROM outbox WHERE sequence = ?")
            // Only a notice needs the mutation: an applied result is kept without reading its envelope.
            func queued(_ sequence: UInt64) throws -> MutationEnvelope? {
                guard let data = try Data.fetchOne(readEnvelope, arguments: [Int64(sequence)]) else { return nil }
                return try JSONDecoder().decode(MutationEnvelope.self, from: data)
            }
            for result in results {
                switch result.status {
                case .applied:
                    // A sequence no longer queued matches no row and changes nothing.
                    try setResult.execute(arguments: [try StreamingJSON.encode(result), Int64(result.sequence)])
                case .adjusted(let message):
                    guard let envelope = try queued(result.sequence) else { continue }
                    try setResult.execute(arguments: [try StreamingJSON.encode(result), Int64(result.sequence)])
                    notices.append(
                        Notice(
                            id: "result:\(result.sequence)", kind: .adjusted,
                            message: NoticeWording.adjusted(envelope.mutation, message),
                            sequence: result.sequence, mutationKind: envelope.mutation.kind, createdAt: time))
                case .rejected(let rejection) where rejection.code == .outOfOrder:
                    continue
                case .rejected(let rejection):
                    guard let envelope = try queued(result.sequence) else { continue }
                    try db.execute(sql: "DELETE FROM outbox WHERE sequence = ?", arguments: [Int64(result.sequence)])
                    notices.append(
                        Notice(
                            id: "result:\(result.sequence)", kind: .rejected,
                            message: NoticeWording.refused(envelope.mutation, rejection),
                            sequence: result.sequence, mutationKind: envelope.mutation.kind, createdAt: time))
                }
            }
            for notice in notices { try Self.insert(notice, db) }
            return notices
        }
        try replay(now: time)
        return notices
    }

}
