internal import Foundation
internal import GRDB
public import LoyaltyCore
internal import Synchronization

// Units of work on a member (grouped commits) and on the catalogue: load, run the body, flush what it wrote.
extension SQLiteStorage {
    public func withMember<T: Sendable>(
        _ request: MemberWorkRequest, _ body: @Sendable (inout MemberWork) throws -> T
    ) async throws -> T {
        try await withoutActuallyEscaping(body) { body in
            try await withCheckedThrowingContinuation { continuation in
                writer.submit(MemberUnit(request: request, body: body, writer: writer, continuation: continuation))
            }
        }
    }

    public var commitStatistics: CommitStatistics { writer.statistics }

    /// A unit of work on a member in a group commit.
    final class MemberUnit<T: Sendable>: GroupedUnit, @unchecked Sendable {
        let request: MemberWorkRequest
        /// Let go of as soon as it has run or cannot run any more: `withMember` lends it without letting it escape.
        private var body: (@Sendable (inout MemberWork) throws -> T)?
        let writer: GroupCommitter
        let continuation: CheckedContinuation<T, any Error>
        /// Set on the writer while the group runs, read when the group is finished (after the write returned).
        private var outcome: Result<T, any Error>?
        /// The feed versions the unit left and what it wrote of the device, if its savepoint was released (set and
        /// read on the writer).
        private var left: StateCache.Versions?
        private var deviceWritten: DeviceWrite?
        private var revokedDevices: [DeviceID] = []

        init(
            request: MemberWorkRequest, body: @escaping @Sendable (inout MemberWork) throws -> T,
            writer: GroupCommitter, continuation: CheckedContinuation<T, any Error>
        ) {
            self.request = request
            self.body = body
            self.writer = writer
            self.continuation = continuation
        }

        func run(_ db: Database, states: inout StateCache) throws {
            let member = request.memberID
            do {
                var value: T?
                var left: (state: MemberState, versions: StateCache.Versions)?
                try db.inSavepoint {
                    let before = try SQLiteStorage.versions(db, member: member)
                    // Taken out of the caches, not copied: the body then changes the only copy in place (a shared
                    // one would be copied whole on its first write).
                    let kept = states.take(member, at: before) ?? writer.states.withLock { $0.take(member, at: before) }
                    var work = try SQLiteStorage.loadWork(db, request: request, now: request.now, state: kept)
                    guard let body else { throw LoyaltyError(.unusableStore, "a unit of work was run twice") }
                    self.body = nil
                    value = try body(&work)
                    let written = try SQLiteStorage.flush(work, request: request, db: db)
                    deviceWritten = written.device
                    revokedDevices = written.revoked
                    // The state the body left is what loading the written entities would give (each change of the
                    // state is written as the entity it changed: the rule devices rely on too). Its versions are the
                    // ones before, raised by what this unit wrote (nothing else writes inside the transaction).
                    left = (
                        work.state,
                        StateCache.Versions(
                            member: max(before.member, written.member ?? 0),
                            catalogue: max(before.catalogue, written.catalogue ?? 0))
                    )
                    return .commit
                }
                if let left {
                    states.keep(left.state, of: member, at: left.versions)
                    self.left = left.versions
                }
                outcome = value.map { .success($0) }
            } catch {
                outcome = .failure(error)
                // An error after which SQLite rolled the whole transaction back fails the group.
                if !db.isInsideTransaction { throw error }
            }
        }

        func tell(_ cache: RequestCache) {
            cache.forget(devices: revokedDevices)
            guard let left else { return }
            cache.raise(scope: request.memberID.rawValue, to: left.member)
            cache.raise(scope: RequestCache.catalogueScope, to: left.catalogue)
            if let device = request.deviceID, let write = deviceWritten {
                cache.update(device: device) { write.apply(to: &$0) }
            }
        }

        func finish(committed: Result<Void, any Error>) {
            body = nil
            switch (outcome, committed) {
            case (.failure(let error)?, _), (_, .failure(let error)): continuation.resume(throwing: error)
            case (.success(let value)?, .success): continuation.resume(returning: value)
            case (nil, .success):
                continuation.resume(
                    throwing: LoyaltyError(.unusableStore, "a unit of work was committed without running"))
            }
        }
    }

    /// The newest feed versions of a member's entities and of the catalogue's.
    static func versions(_ db: Database, member: MemberID) throws -> StateCache.Versions {
        let row = try Row.fetchOne(
            db.cachedStatement(
                sql: """
                    SELECT (SELECT max(version) FROM entities WHERE scope = ?) AS member,
                           (SELECT max(version) FROM entities WHERE scope = '*') AS catalogue
                    """), arguments: [member.rawValue])
        return StateCache.Versions(member: row?["member"] ?? 0, catalogue: row?["catalogue"] ?? 0)
    }

    public func withCatalogue<T: Sendable>(
        now: Timestamp, _ body: @Sendable (inout CatalogueWork) throws -> T
    ) async throws -> T {
        let (value, written) = try await pool.write { db in
            var work = try StoredEntities.catalogueWork(try Self.entities(db, scope: "*"))
            let value = try body(&work)
            return (value, try Self.writeEntities(work.entityWrites, member: nil, now: now, db: db))
        }
        written.tell(cache, member: nil)
        return value
    }

    static func loadWork(
        _ db: Database, request: MemberWorkRequest, now: Timestamp, state cached: consuming MemberState?
    ) throws -> MemberWork {
        let state = try cached.take() ?? loadState(db, member: request.memberID)

        var device: DeviceRecord?
        var results: [UInt64: MutationResult] = [:]
        if let deviceID = request.deviceID {
            device = try fetchDevice(db, id: deviceID)
            // Only a sequence the device has been answered for already has a stored result (a retry's).
            let processed = request.sequences.filter { $0 <= device?.lastSequence ?? 0 }
            if !processed.isEmpty {
                let rows = try Row.fetchAll(
                    db.cachedStatement(
                        sql: "SELECT result FROM mutation_results WHERE device_id = ? AND sequence IN ("
                            + databaseQuestionMarks(count: processed.count) + ")"),
                    arguments: StatementArguments([deviceID.rawValue] + processed.map { Int64($0) }))
                for row in rows {
                    let result = try JSONDecoder().decode(MutationResult.self, from: row["result"] as Data)
                    results[result.sequence] = result
                }
            }
        }
        var receipts: [String: Receipt] = [:]
        for code in Set(request.receiptCodes) {
            if let (receipt, _) = try fetchReceipt(db, code: code) { receipts[code] = receipt }
        }
        return MemberWork(state: state, device: device, storedResults: results, receipts: receipts, now: now)
    }

    /// A member's state from its entities and the catalogue's.
    static func loadState(_ db: Database, member id: MemberID) throws -> MemberState {
        try StoredEntities.memberState(id, entities: try entities(db, scope: id.rawValue) + entities(db, scope: "*"))
    }

    /// Writes what a unit of work recorded; returns the newest versions it gave the member's and the catalogue's
    /// entities.
    static func flush(_ work: MemberWork, request: MemberWorkRequest, db: Database) throws -> Written {
        let member = request.memberID
        let device = request.deviceID
        var written = try writeEntities(work.entityWrites, member: member, now: work.now, db: db)
        if !work.entityWrites.isEmpty || request.recordsJobsDue {
            let due = work.state.jobsDue(at: work.now)
            try db.cachedStatement(sql: "UPDATE accounts SET unlock_due = ?, expire_due = ? WHERE member_id = ?")
                .execute(
                    arguments: [
                        due.unlock?.millisecondsSince1970, due.expire?.millisecondsSince1970, member.rawValue,
                    ])
        }
        if let deviceID = device, let record = work.device {
            written.device = DeviceWrite(
                lastSequence: record.lastSequence, lastActedAt: record.lastActedAt, lastSeenAt: work.now)
            let insert = try db.cachedStatement(
                sql: "INSERT INTO mutation_results (device_id, sequence, result, processed_at) VALUES (?, ?, ?, ?)")
            for result in work.resultWrites {
                try insert.execute(
                    arguments: [
                        deviceID.rawValue, Int64(result.sequence), try StreamingJSON.encode(result),
                        work.now.millisecondsSince1970,
                    ])
            }
            try db.cachedStatement(
                sql: "UPDATE devices SET last_sequence = ?, last_acted_at = ?, last_seen_at = ? WHERE id = ?"
            ).execute(
                arguments: [
                    Int64(record.lastSequence), record.lastActedAt?.millisecondsSince1970,
                    work.now.millisecondsSince1970, deviceID.rawValue,
                ])
        }
        if work.erasesAccount {
            try db.execute(
                sql: """
                    UPDATE accounts SET email = 'erased-' || member_id || '@erased.invalid', password_hash = x'00',
                        salt = x'00', sign_in_blocked = 1
                    WHERE member_id = ?
                    """, arguments: [member.rawValue])
            written.revoked = try String.fetchAll(
                db, sql: "SELECT id FROM devices WHERE member_id = ? AND revoked_at IS NULL",
                arguments: [member.rawValue]
            ).map { DeviceID($0) }
            try db.execute(
                sql: """
                    UPDATE devices SET name = 'erased', revoked_at = coalesce(revoked_at, ?),
                        revoked_reason = coalesce(revoked_reason, ?)
                    WHERE member_id = ?
                    """, arguments: [work.now.millisecondsSince1970, RevocationReason.erased.rawValue, member.rawValue])
        }
        for (code, lot) in work.receiptClaims {
            try db.execute(
                sql: "UPDATE receipts SET claimed_by = ?, lot_id = ? WHERE code = ? AND claimed_by IS NULL",
                arguments: [member.rawValue, lot.rawValue, code])
            guard db.changesCount == 1 else { throw LoyaltyError(.duplicate, "receipt \(code) was claimed meanwhile") }
        }
        for card in work.cardsIssued {
            try mapConstraint("card \(card.digits)") {
                try db.execute(
                    sql: "INSERT INTO cards (number, member_id) VALUES (?, ?)",
                    arguments: [card.digits, member.rawValue])
            }
        }
        for transaction in work.transactionWrites {
            try mapConstraint("transaction \(transaction.id)") {
                try db.execute(
                    sql: """
                        INSERT INTO transactions (id, kind, member_id, lot_id, receipt_code, shop, categories)
                        VALUES (?, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        transaction.id.rawValue, transaction.kind.rawValue, transaction.memberID.rawValue,
                        transaction.lot?.rawValue, transaction.receiptCode, transaction.shop, transaction.categoryList,
                    ])
            }
            if let code = transaction.receiptCode, transaction.kind == .purchase {
                try db.execute(
                    sql: "UPDATE receipts SET claimed_by = ?, lot_id = ? WHERE code = ?",
                    arguments: [member.rawValue, transaction.lot?.rawValue, code])
            }
        }
        return written
    }

    /// What a unit of work writes of its device's row: the same in memory (``RequestCache/update(device:_:)``).
    struct DeviceWrite {
        var lastSequence: UInt64
        var lastActedAt: Timestamp?
        var lastSeenAt: Timestamp

        func apply(to record: inout DeviceRecord) {
            record.lastSequence = lastSequence
            record.lastActedAt = lastActedAt
            record.lastSeenAt = lastSeenAt
        }
    }

    /// The newest feed versions a write gave a member-scoped entity and a programme-wide one (and what a unit of
    /// work wrote of its device).
    struct Written: Sendable {
        var member: Int64?
        var catalogue: Int64?
        var device: DeviceWrite?
        /// Devices an erasure revoked.
        var revoked: [DeviceID] = []

        /// Once committed: raises the kept versions of the scopes written.
        func tell(_ cache: RequestCache, member id: MemberID?) {
            if let member, let id { cache.raise(scope: id.rawValue, to: member) }
            if let catalogue { cache.raise(scope: RequestCache.catalogueScope, to: catalogue) }
        }
    }

    /// Writes entities, each with the next feed version; returns the newest version given to a member-scoped one
    /// and to a programme-wide one.
    static func writeEntities(
        _ entities: [Entity], member: MemberID?, now: Timestamp, db: Database
    ) throws -> Written {
        var written = Written()
        guard !entities.isEmpty else { return written }
        var version = try Int64.fetchOne(db.cachedStatement(sql: "SELECT value FROM meta WHERE key = 'version'")) ?? 0
        let statement = try db.cachedStatement(
            sql: """
                INSERT INTO entities (scope, kind, id, version, body, updated_at) VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT (scope, kind, id) DO UPDATE SET
                    version = excluded.version, body = excluded.body, updated_at = excluded.updated_at
                """)
        for entity in entities {
            version += 1
            let scope = entity.isProgrammeWide ? "*" : (member?.rawValue ?? "*")
            if scope == "*" { written.catalogue = version } else { written.member = version }
            let key = entity.key
            try statement.execute(arguments: [
                scope, key.kind.rawValue, key.id, version, try entity.payloadJSON(), now.millisecondsSince1970,
            ])
        }
        try db.cachedStatement(sql: "UPDATE meta SET value = ? WHERE key = 'version'").execute(arguments: [version])
        return written
    }

    static func entities(_ db: Database, scope: String) throws -> [Entity] {
        let rows = try Row.fetchCursor(
            db,
            sql: "SELECT kind, body FROM entities WHERE scope = ? AND kind <> 'ledgerEntry' AND body IS NOT NULL",
            arguments: [scope])
        var result: [Entity] = []
        while let row = try rows.next() {
            guard let kind = EntityKey.Kind(rawValue: row["kind"]) else { continue }
            result.append(try Entity.decode(kind: kind, json: row["body"]))
        }
        return result
    }
}
