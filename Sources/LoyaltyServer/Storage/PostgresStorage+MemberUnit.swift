internal import Foundation
internal import Logging
public import LoyaltyCore
internal import NIOCore
internal import PostgresNIO
internal import Synchronization

// Units of work on a member and on the catalogue: lock, load, run the body, write what it recorded, commit.
extension PostgresStorage {
    /// The first key of the advisory locks of members; the second is the hash of the member id (two members that
    /// share a hash only wait for each other).
    static let memberLockSpace: Int32 = 0x4C4F_5942
    /// The advisory lock of the catalogue.
    static let catalogueLock = (space: Int32(0x4C4F_5943), key: Int32(0))

    public func withMember<T: Sendable>(
        _ request: MemberWorkRequest, _ body: @Sendable (inout MemberWork) throws -> T
    ) async throws -> T {
        try await withoutActuallyEscaping(body) { body in
            let body = UncheckedBody(body: body)
            // A unit that changes a programme-wide entity (a reward's stock) read the catalogue without its lock: if
            // another transaction changed the catalogue meanwhile, the unit is run again on what is there now.
            for attempt in 1... {
                do {
                    let (value, left) = try await transaction {
                        (connection: PostgresConnection) async throws -> (T, UncheckedState) in
                        // Takes the member's lock, then reads.
                        var (work, read) = try await self.loadWork(request, connection: connection)
                        let value = try body.body(&work)
                        let written = try await self.flush(
                            work, request: request, catalogueRead: read.catalogue, connection: connection)
                        if let pause = self.hooks.beforeMemberCommit { await pause(request.memberID) }
                        let left = StateCache.Versions(
                            member: max(read.member, written.member), catalogue: max(read.catalogue, written.catalogue))
                        return (value, UncheckedState(state: work.state, versions: left))
                    }
                    // Committed: the state the body left is what loading the member now would give.
                    states.withLock { $0.keep(left.state, of: request.memberID, at: left.versions) }
                    counted(units: 1)
                    return value
                } catch is CatalogueChanged where attempt < 20 {
                    continue
                }
            }
            fatalError("unreachable: the loop returns or throws")
        }
    }

    /// The catalogue changed between a unit's reading it and its writing a programme-wide entity.
    struct CatalogueChanged: Error {}

    /// A member's state out of a transaction's closure, with the versions it reflects.
    private struct UncheckedState: @unchecked Sendable {
        let state: MemberState
        let versions: StateCache.Versions
    }

    /// Carries a body lent by `withoutActuallyEscaping` into the transaction's closure (it runs before the call
    /// returns).
    private struct UncheckedBody<T>: @unchecked Sendable {
        let body: (inout MemberWork) throws -> T
    }

    /// Waits until no other transaction holds the member (any instance), and holds it until this one ends.
    static func lockMember(_ member: MemberID, _ connection: PostgresConnection, logger: Logger) async throws {
        _ = try await connection.execute(LockMember(member: member.rawValue), logger: logger)
    }

    /// Holds a member's lock in a transaction of its own while `body` runs (for tests: work of the member on every
    /// instance waits meanwhile, inside its transaction).
    func holdingMemberLock(_ member: MemberID, while body: @escaping @Sendable () async -> Void) async throws {
        try await transaction { connection in
            try await Self.lockMember(member, connection, logger: self.logger)
            await body()
        }
    }

    /// How many advisory locks transactions wait for now (on every instance).
    func advisoryLocksWaited() async throws -> Int {
        try await leased { connection in
            try await connection.query(
                "SELECT count(*)::int FROM pg_locks WHERE locktype = 'advisory' AND NOT granted", logger: self.logger
            ).collect().first?.decode(Int.self) ?? 0
        }
    }

    /// Waits until no other transaction changes the catalogue, and holds it until this one ends.
    static func lockCatalogue(_ connection: PostgresConnection, logger: Logger) async throws {
        try await connection.query(
            "SELECT pg_advisory_xact_lock(\(catalogueLock.space), \(catalogueLock.key))", logger: logger)
    }

    public func withCatalogue<T: Sendable>(
        now: Timestamp, _ body: @Sendable (inout CatalogueWork) throws -> T
    ) async throws -> T {
        try await withoutActuallyEscaping(body) { body in
            let body = UncheckedCatalogueBody(body: body)
            return try await transaction { connection in
                try await Self.lockCatalogue(connection, logger: self.logger)
                var work = try StoredEntities.catalogueWork(
                    try await Self.entities(
                        "SELECT kind, body FROM catalogue WHERE body IS NOT NULL", connection: connection,
                        logger: self.logger))
                let value = try body.body(&work)
                let rows = try work.entityWrites.map { ($0.key, try $0.payloadJSON()) }
                try await Self.writeCatalogue(rows, now: now, connection: connection, logger: self.logger)
                return value
            }
        }
    }

    private struct UncheckedCatalogueBody<T>: @unchecked Sendable {
        let body: (inout CatalogueWork) throws -> T
    }

    /// Takes the member's lock and loads what a unit of work asked for, inside its transaction.
    func loadWork(
        _ request: MemberWorkRequest, connection: PostgresConnection
    ) async throws -> (MemberWork, StateCache.Versions) {
        let member = request.memberID
        // The newest versions of the member's entities and of the catalogue, read under the member's lock: a state
        // kept from an earlier unit is used only if it reflects exactly these (every write takes a higher version),
        // so a write by any instance since makes this one load the member again.
        var head: UnitHead.Row?
        for try await row in try await connection.execute(
            UnitHead(member: member.rawValue, device: request.deviceID?.rawValue), logger: logger)
        {
            head = row
        }
        guard let (versions, deviceRow) = head else {
            throw LoyaltyError(.unusableStore, "the database gave no versions")
        }
        let state: MemberState
        if let kept = states.withLock({ $0.take(member, at: versions) }) {
            state = kept
        } else {
            state = try await loadState(member, connection: connection)
        }
        var device: DeviceRecord?
        var results: [UInt64: MutationResult] = [:]
        if let deviceID = request.deviceID {
            device = deviceRow
            let processed = request.sequences.filter { $0 <= device?.lastSequence ?? 0 }.map { Int64($0) }
            if !processed.isEmpty {
                let rows = try await connection.query(
                    """
                    SELECT result FROM mutation_results
                    WHERE member_id = \(member.rawValue) AND device_id = \(deviceID.rawValue)
                        AND sequence = ANY(\(processed))
                    """, logger: logger)
                for try await data in rows.decode(Data.self) {
                    let result = try JSONDecoder().decode(MutationResult.self, from: data)
                    results[result.sequence] = result
                }
            }
        }
        var receipts: [String: Receipt] = [:]
        let codes = Array(Set(request.receiptCodes))
        if !codes.isEmpty {
            for receipt in try await Self.fetchReceipts(codes, connection: connection, logger: logger) {
                receipts[receipt.0.code] = receipt.0
            }
        }
        return (
            MemberWork(state: state, device: device, storedResults: results, receipts: receipts, now: request.now),
            versions
        )
    }

    /// A member's state from its entities and the catalogue's.
    func loadState(_ member: MemberID, connection: PostgresConnection) async throws -> MemberState {
        let entities = try await Self.entities(
            """
            SELECT kind, body FROM entities
            WHERE member_id = \(member.rawValue) AND kind <> 'ledgerEntry' AND body IS NOT NULL
            UNION ALL SELECT kind, body FROM catalogue WHERE body IS NOT NULL
            """, connection: connection, logger: logger)
        return try StoredEntities.memberState(member, entities: entities)
    }

    /// Entities from rows of (kind, body).
    static func entities(
        _ query: PostgresQuery, connection: PostgresConnection, logger: Logger
    ) async throws
        -> [Entity]
    {
        var result: [Entity] = []
        for try await (kind, body) in try await connection.query(query, logger: logger).decode((String, Data).self) {
            guard let kind = EntityKey.Kind(rawValue: kind) else { continue }
            result.append(try Entity.decode(kind: kind, json: body))
        }
        return result
    }

    /// Writes what a unit of work recorded, in its transaction; returns the newest versions it gave the member's
    /// entities and the catalogue's (0 where it wrote none).
    func flush(
        _ work: MemberWork, request: MemberWorkRequest, catalogueRead: Int64, connection: PostgresConnection
    ) async throws -> StateCache.Versions {
        let member = request.memberID
        let programmeWide = work.entityWrites.filter(\.isProgrammeWide)
        var written = StateCache.Versions(member: 0, catalogue: 0)
        if !programmeWide.isEmpty {
            // Held until commit: pulls wait for this write as for any catalogue change.
            try await Self.lockCatalogue(connection, logger: logger)
            let newest =
                try await connection.query("SELECT coalesce(max(version), 0) FROM catalogue", logger: logger)
                .collect().first?.decode(Int64.self) ?? 0
            guard newest == catalogueRead else { throw CatalogueChanged() }
            written.catalogue = try await Self.writeCatalogue(
                try programmeWide.map { ($0.key, try $0.payloadJSON()) }, now: work.now, connection: connection,
                logger: logger)
        }
        // The member's entities, the device's results and progress and the member's job times: one statement (one
        // round trip), its parts data-modifying CTEs that each run once.
        if let deviceID = request.deviceID, let record = work.device {
            // A device's unit (a push, a pull's allowance): the prepared form.
            let rows = Self.lastWrites(
                try work.entityWrites.filter { !$0.isProgrammeWide }.map { ($0.key, try $0.payloadJSON()) })
            let writes = DeviceUnitWrites(
                member: member.rawValue, now: work.now.millisecondsSince1970, rows: rows, device: deviceID.rawValue,
                sequences: work.resultWrites.map { Int64($0.sequence) },
                results: try work.resultWrites.map { ByteBuffer(bytes: try StreamingJSON.encode($0)) },
                lastSequence: Int64(record.lastSequence), lastActedAt: record.lastActedAt?.millisecondsSince1970,
                due: !work.entityWrites.isEmpty || request.recordsJobsDue ? work.state.jobsDue(at: work.now) : nil)
            for try await version in try await connection.execute(writes, logger: logger) {
                written.member = max(written.member, version)
            }
            try await writeTill(work, member: member, connection: connection)
            return written
        }
        var statement = Statement()
        var parts: [String] = []
        let rows = Self.lastWrites(
            try work.entityWrites.filter { !$0.isProgrammeWide }.map { ($0.key, try $0.payloadJSON()) })
        let memberID = try statement.bind(member.rawValue)
        let now = try statement.bind(work.now.millisecondsSince1970)
        if !rows.isEmpty {
            parts.append(
                """
                e AS (
                    INSERT INTO entities (member_id, kind, id, version, body, updated_at)
                    SELECT \(memberID), k, i, nextval('feed_version'), b, \(now)
                    FROM unnest(\(try statement.bind(rows.kinds))::text[], \(try statement.bind(rows.ids))::text[],
                        \(try statement.bind(rows.bodies))::bytea[]) WITH ORDINALITY AS t(k, i, b, n)
                    ORDER BY n
                    ON CONFLICT (member_id, kind, id) DO UPDATE SET
                        version = excluded.version, body = excluded.body, updated_at = excluded.updated_at
                    RETURNING version)
                """)
        }
        if let deviceID = request.deviceID, let record = work.device {
            let device = try statement.bind(deviceID.rawValue)
            if !work.resultWrites.isEmpty {
                let sequences = work.resultWrites.map { Int64($0.sequence) }
                let bodies = try work.resultWrites.map { ByteBuffer(bytes: try StreamingJSON.encode($0)) }
                parts.append(
                    """
                    r AS (
                        INSERT INTO mutation_results (member_id, device_id, sequence, result, processed_at)
                        SELECT \(memberID), \(device), s, x, \(now)
                        FROM unnest(\(try statement.bind(sequences))::bigint[], \(try statement.bind(bodies))::bytea[])
                            AS t(s, x))
                    """)
            }
            parts.append(
                """
                d AS (
                    UPDATE devices SET last_sequence = \(try statement.bind(Int64(record.lastSequence))),
                        last_acted_at = \(try statement.bind(record.lastActedAt?.millisecondsSince1970)),
                        last_seen_at = \(now)
                    WHERE member_id = \(memberID) AND id = \(device))
                """)
        }
        if !work.entityWrites.isEmpty || request.recordsJobsDue {
            let due = work.state.jobsDue(at: work.now)
            parts.append(
                """
                a AS (
                    UPDATE accounts SET unlock_due = \(try statement.bind(due.unlock?.millisecondsSince1970)),
                        expire_due = \(try statement.bind(due.expire?.millisecondsSince1970))
                    WHERE member_id = \(memberID))
                """)
        }
        if !parts.isEmpty {
            statement.sql =
                "WITH " + parts.joined(separator: ", ")
                + (rows.isEmpty ? " SELECT 0::bigint" : " SELECT coalesce(max(version), 0) FROM e")
            written.member = try await Self.newest(connection.query(statement.query, logger: logger))
        }
        try await writeTill(work, member: member, connection: connection)
        return written
    }

    /// Writes a unit's receipt claims, cards and till transactions.
    func writeTill(_ work: MemberWork, member: MemberID, connection: PostgresConnection) async throws {
        if work.erasesAccount {
            try await connection.query(
                """
                UPDATE accounts SET email = 'erased-' || member_id || '@erased.invalid', password_hash = '\\x00'::bytea,
                    salt = '\\x00'::bytea, sign_in_blocked = true
                WHERE member_id = \(member.rawValue)
                """, logger: logger)
            try await connection.query(
                """
                UPDATE devices SET name = 'erased', revoked_at = coalesce(revoked_at, \(work.now.millisecondsSince1970)),
                    revoked_reason = coalesce(revoked_reason, \(RevocationReason.erased.rawValue))
                WHERE member_id = \(member.rawValue)
                """, logger: logger)
        }
        for (code, lot) in work.receiptClaims {
            let claimed = try await connection.query(
                """
                UPDATE receipts SET claimed_by = \(member.rawValue), lot_id = \(lot.rawValue)
                WHERE code = \(code) AND claimed_by IS NULL RETURNING code
                """, logger: logger
            ).collect()
            guard claimed.count == 1 else { throw LoyaltyError(.duplicate, "receipt \(code) was claimed meanwhile") }
        }
        for card in work.cardsIssued {
            try await Self.unique("card \(card.digits)") {
                try await connection.query(
                    "INSERT INTO cards (number, member_id) VALUES (\(card.digits), \(member.rawValue))", logger: logger)
            }
        }
        for transaction in work.transactionWrites {
            try await Self.unique("transaction \(transaction.id)") {
                try await connection.query(
                    """
                    INSERT INTO transactions (id, kind, member_id, lot_id, receipt_code, shop, categories)
                    VALUES (\(transaction.id.rawValue), \(transaction.kind.rawValue),
                        \(transaction.memberID.rawValue), \(transaction.lot?.rawValue), \(transaction.receiptCode),
                        \(transaction.shop), \(transaction.categoryList))
                    """, logger: logger)
            }
            if let code = transaction.receiptCode, transaction.kind == .purchase {
                try await connection.query(
                    """
                    UPDATE receipts SET claimed_by = \(member.rawValue), lot_id = \(transaction.lot?.rawValue)
                    WHERE code = \(code)
                    """, logger: logger)
            }
        }
    }

    /// Writes a member's entities, each with the next feed version (taken in the order written, under the member's
    /// lock).
    @discardableResult
    func writeMemberEntities(
        _ entities: [Entity], member: MemberID, now: Timestamp, connection: PostgresConnection
    ) async throws -> Int64 {
        let rows = Self.lastWrites(try entities.map { ($0.key, try $0.payloadJSON()) })
        guard !rows.isEmpty else { return 0 }
        return try await Self.newest(
            connection.query(
                """
                INSERT INTO entities (member_id, kind, id, version, body, updated_at)
                SELECT \(member.rawValue), k, i, nextval('feed_version'), b,
                    \(now.millisecondsSince1970)
                FROM unnest(\(rows.kinds)::text[], \(rows.ids)::text[], \(rows.bodies)::bytea[])
                    WITH ORDINALITY AS t(k, i, b, n)
                ORDER BY n
                ON CONFLICT (member_id, kind, id) DO UPDATE SET
                    version = excluded.version, body = excluded.body, updated_at = excluded.updated_at
                RETURNING version
                """, logger: logger))
    }

    /// The largest version a `RETURNING version` gave.
    static func newest(_ rows: PostgresRowSequence) async throws -> Int64 {
        var newest: Int64 = 0
        for try await version in rows.decode(Int64.self) { newest = max(newest, version) }
        return newest
    }

    /// Writes catalogue entities (under the catalogue's lock), each with the next feed version.
    @discardableResult
    static func writeCatalogue(
        _ written: [(EntityKey, Data)], now: Timestamp, connection: PostgresConnection, logger: Logger
    ) async throws -> Int64 {
        let rows = lastWrites(written)
        guard !rows.isEmpty else { return 0 }
        return try await newest(
            connection.query(
                """
                INSERT INTO catalogue (kind, id, version, body, updated_at)
                SELECT k, i, nextval('feed_version'), b, \(now.millisecondsSince1970)
                FROM unnest(\(rows.kinds)::text[], \(rows.ids)::text[], \(rows.bodies)::bytea[])
                    WITH ORDINALITY AS t(k, i, b, n)
                ORDER BY n
                ON CONFLICT (kind, id) DO UPDATE SET
                    version = excluded.version, body = excluded.body, updated_at = excluded.updated_at
                RETURNING version
                """, logger: logger))
    }

    /// A statement built in parts, its values bound as `$n` in the order given.
    struct Statement {
        var sql = ""
        var binds = PostgresBindings()

        /// Binds a value; returns its placeholder.
        mutating func bind<Value: PostgresThrowingDynamicTypeEncodable>(_ value: Value) throws -> String {
            try binds.append(value)
            return "$\(binds.count)"
        }

        /// Binds a value or NULL; returns its placeholder.
        mutating func bind<Value: PostgresThrowingDynamicTypeEncodable>(_ value: Value?) throws -> String {
            guard let value else {
                binds.appendNull()
                return "$\(binds.count)"
            }
            return try bind(value)
        }

        var query: PostgresQuery { PostgresQuery(unsafeSQL: sql, binds: binds) }
    }

    /// Columns of entity rows to write, each key once (its last write: one statement may not change a row twice),
    /// in the order of those last writes.
    struct EntityRows {
        var kinds: [String] = []
        var ids: [String] = []
        var bodies: [ByteBuffer] = []
        var isEmpty: Bool { kinds.isEmpty }
    }

    static func lastWrites(_ written: [(EntityKey, Data)]) -> EntityRows {
        var last: [EntityKey: Int] = [:]
        for (index, (key, _)) in written.enumerated() { last[key] = index }
        var rows = EntityRows()
        for (index, (key, body)) in written.enumerated() where last[key] == index {
            rows.kinds.append(key.kind.rawValue)
            rows.ids.append(key.id)
            rows.bodies.append(ByteBuffer(bytes: body))
        }
        return rows
    }

    /// Runs `body`; a unique violation becomes a ``LoyaltyError`` `duplicate` naming `what`.
    @discardableResult
    static func unique<T>(_ what: String, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch  where sqlState(error) == "23505" {
            throw LoyaltyError(.duplicate, "\(what) exists already", cause: error)
        }
    }
}
