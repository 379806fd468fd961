public import Foundation
internal import GRDB
public import LoyaltyCore
internal import LoyaltySQLite
internal import Synchronization

/// The embedded store: one SQLite file in WAL mode with `synchronous=FULL`, so that a mutation is on disk
/// before its result is answered. SQLite has one writer at a time, which also serialises units of work per
/// member (and across members: the embedded store is for a shop, a pilot or a test; PostgreSQL is for scale).
///
/// One process at a time writes the file: it holds a lock on `<path>.lock` while open, so that what it keeps in
/// memory (``RequestCache``, the members' states) cannot be overtaken by another process's writes.
public final class SQLiteStorage: ServerStorage {
    private let pool: DatabasePool
    /// The open lock file (a POSIX record lock, held by this process until the store is let go; being the
    /// process's, it keeps other processes out, not a second store on the same file in this one).
    private let lock: Int32
    /// The database file.
    public let path: String
    /// Commits the units of work on members that wait for the writer together (and keeps their states).
    let writer: GroupCommitter
    /// Devices and feed versions kept in memory; every write below tells it once committed.
    let cache = RequestCache()

    /// Opens (or creates) the store at `path`. A file that is not a usable SQLite database is an error that names
    /// it; it is never replaced.
    public init(path: String) throws {
        self.path = path
        lock = try Self.lock(path + ".lock", for: path)
        do { try PrivateFiles.prepareDatabase(at: path) } catch {
            close(lock)
            throw StorageError.unusable("\(error)")
        }
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
            try db.execute(sql: "PRAGMA cache_size = -16384")
            // The log is copied back by the checkpointer's own connection (Checkpointer), not inside a commit.
            try db.execute(sql: "PRAGMA wal_autocheckpoint = \(Checkpointer.writerThreshold)")
        }
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
            _ = try pool.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM sqlite_master") }
            writer = GroupCommitter(pool: pool, checkpointer: try Checkpointer(path: path), cache: cache)
        } catch {
            close(lock)
            if let error = error as? DatabaseError, [.SQLITE_NOTADB, .SQLITE_CORRUPT].contains(error.resultCode) {
                throw StorageError.unusable(
                    "\(path) is not a usable SQLite database (corrupt or not ours): move it away or restore a "
                        + "backup; it was left untouched")
            }
            throw error
        }
    }

    deinit { close(lock) }

    /// Opens and locks the lock file of the store at `store`, or names the problem.
    private static func lock(_ path: String, for store: String) throws -> Int32 {
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw StorageError.unusable("cannot open \(path) to lock the store: \(String(cString: strerror(errno)))")
        }
        guard lockf(descriptor, F_TLOCK, 0) == 0 else {
            let reason = errno
            close(descriptor)
            guard reason == EACCES || reason == EAGAIN else {
                throw StorageError.unusable("cannot lock \(path): \(String(cString: strerror(reason)))")
            }
            throw StorageError.unusable(
                "another process (a loyalty-server?) has \(store) open: stop it first, or give this one another "
                    + "--data directory; the store was left untouched")
        }
        return descriptor
    }

    // MARK: Schema

    public func migrate() async throws {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: accounts, devices, feed, receipts, transactions") { db in
            try db.execute(
                sql: """
                    CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL);
                    INSERT INTO meta (key, value) VALUES ('version', 0), ('horizon', 0);
                    CREATE TABLE accounts (
                        member_id TEXT PRIMARY KEY NOT NULL,
                        email TEXT NOT NULL UNIQUE COLLATE NOCASE,
                        password_hash BLOB NOT NULL,
                        salt BLOB NOT NULL,
                        created_at INTEGER NOT NULL);
                    CREATE TABLE devices (
                        id TEXT PRIMARY KEY NOT NULL,
                        member_id TEXT NOT NULL REFERENCES accounts(member_id),
                        name TEXT NOT NULL,
                        created_at INTEGER NOT NULL,
                        revoked_at INTEGER,
                        last_sequence INTEGER NOT NULL DEFAULT 0 CHECK (last_sequence >= 0),
                        last_acted_at INTEGER,
                        last_seen_at INTEGER,
                        last_pulled_at INTEGER,
                        refresh_hash BLOB NOT NULL,
                        previous_refresh_hash BLOB,
                        rotated_at INTEGER);
                    CREATE INDEX devices_by_member ON devices(member_id);
                    CREATE TABLE mutation_results (
                        device_id TEXT NOT NULL REFERENCES devices(id),
                        sequence INTEGER NOT NULL CHECK (sequence > 0),
                        result BLOB NOT NULL,
                        processed_at INTEGER NOT NULL,
                        PRIMARY KEY (device_id, sequence));
                    CREATE TABLE entities (
                        scope TEXT NOT NULL,
                        kind TEXT NOT NULL,
                        id TEXT NOT NULL,
                        version INTEGER NOT NULL UNIQUE,
                        body BLOB,
                        updated_at INTEGER NOT NULL,
                        PRIMARY KEY (scope, kind, id));
                    CREATE INDEX entities_feed ON entities(scope, version);
                    CREATE TABLE cards (
                        number TEXT PRIMARY KEY NOT NULL,
                        member_id TEXT NOT NULL REFERENCES accounts(member_id));
                    CREATE TABLE receipts (
                        code TEXT PRIMARY KEY NOT NULL,
                        amount INTEGER NOT NULL CHECK (amount >= 0),
                        shop TEXT NOT NULL,
                        purchased_at INTEGER NOT NULL,
                        claimed_by TEXT REFERENCES accounts(member_id),
                        lot_id TEXT);
                    CREATE TABLE transactions (
                        id TEXT PRIMARY KEY NOT NULL,
                        kind TEXT NOT NULL CHECK (kind IN ('purchase', 'return')),
                        member_id TEXT NOT NULL REFERENCES accounts(member_id),
                        lot_id TEXT,
                        receipt_code TEXT);
                    """)
        }
        migrator.registerMigration("v2: till redemptions") { db in
            // SQLite cannot change a CHECK constraint in place: the table is rebuilt with the new kind allowed.
            try db.execute(
                sql: """
                    CREATE TABLE transactions_v2 (
                        id TEXT PRIMARY KEY NOT NULL,
                        kind TEXT NOT NULL CHECK (kind IN ('purchase', 'return', 'redemption')),
                        member_id TEXT NOT NULL REFERENCES accounts(member_id),
                        lot_id TEXT,
                        receipt_code TEXT);
                    INSERT INTO transactions_v2 SELECT id, kind, member_id, lot_id, receipt_code FROM transactions;
                    DROP TABLE transactions;
                    ALTER TABLE transactions_v2 RENAME TO transactions;
                    """)
        }
        migrator.registerMigration("v3: refresh token families") { db in
            try db.execute(
                sql: """
                    ALTER TABLE devices ADD COLUMN superseded_refresh BLOB;
                    ALTER TABLE devices ADD COLUMN refresh_retries INTEGER NOT NULL DEFAULT 0;
                    ALTER TABLE devices ADD COLUMN revoked_reason TEXT;
                    """)
        }
        migrator.registerMigration("v4: password hash parameters, sign-in blocks") { db in
            // Hashes made before have none: they were made with scrypt$14$8$1 (ScryptParameters.legacy).
            try db.execute(
                sql: """
                    ALTER TABLE accounts ADD COLUMN password_params TEXT;
                    ALTER TABLE accounts ADD COLUMN sign_in_blocked INTEGER NOT NULL DEFAULT 0;
                    """)
        }
        try migrator.migrate(pool)
    }

    public func ping() async throws {
        _ = try await pool.read { db in try Int.fetchOne(db, sql: "SELECT 1") }
    }

    public func installProgramme(_ program: Program, catalogue: Catalogue, now: Timestamp) async throws -> Bool {
        let written = try await pool.write { db -> Written? in
            let installed =
                try Int.fetchOne(
                    db, sql: "SELECT count(*) FROM entities WHERE scope = '*' AND kind = 'program'") ?? 0
            guard installed == 0 else { return nil }
            let entities: [Entity] =
                [.program(program)] + catalogue.offers.map(Entity.offer) + catalogue.rewards.map(Entity.reward)
                + catalogue.surveys.map(Entity.survey)
            return try Self.writeEntities(entities, member: nil, now: now, db: db)
        }
        written?.tell(cache, member: nil)
        return written != nil
    }

    // MARK: Units of work

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
    private final class MemberUnit<T: Sendable>: GroupedUnit, @unchecked Sendable {
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
                    guard let body else { throw StorageError.unusable("a unit of work was run twice") }
                    self.body = nil
                    value = try body(&work)
                    let written = try SQLiteStorage.flush(work, member: member, device: request.deviceID, db: db)
                    deviceWritten = written.device
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
                continuation.resume(throwing: StorageError.unusable("a unit of work was committed without running"))
            }
        }
    }

    /// The newest feed versions of a member's entities and of the catalogue's.
    fileprivate static func versions(_ db: Database, member: MemberID) throws -> StateCache.Versions {
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
            var program: Program?
            var catalogue = Catalogue()
            for entity in try Self.entities(db, scope: "*") {
                switch entity {
                case .program(let value): program = value
                case .offer(let value): catalogue.offers.append(value)
                case .reward(let value): catalogue.rewards.append(value)
                case .survey(let value): catalogue.surveys.append(value)
                default: continue
                }
            }
            guard let program else {
                throw StorageError.unusable("the store has no programme: start the server once to load it")
            }
            var work = CatalogueWork(program: program, catalogue: catalogue)
            let value = try body(&work)
            return (value, try Self.writeEntities(work.entityWrites, member: nil, now: now, db: db))
        }
        written.tell(cache, member: nil)
        return value
    }

    fileprivate static func loadWork(
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
    private static func loadState(_ db: Database, member id: MemberID) throws -> MemberState {
        var program: Program?
        var record: MemberRecord?
        var others: [Entity] = []
        for entity in try entities(db, scope: id.rawValue) + entities(db, scope: "*") {
            switch entity {
            case .program(let value): program = value
            case .member(let value): record = value
            default: others.append(entity)
            }
        }
        guard let record else { throw StorageError.unknownMember(id) }
        guard let program else { throw StorageError.unusable("the store has no programme") }
        var state = MemberState(program: program, member: record)
        for entity in others { state.merge(entity) }
        return state
    }

    /// Writes what a unit of work recorded; returns the newest versions it gave the member's and the catalogue's
    /// entities.
    fileprivate static func flush(
        _ work: MemberWork, member: MemberID, device: DeviceID?, db: Database
    ) throws -> Written {
        var written = try writeEntities(work.entityWrites, member: member, now: work.now, db: db)
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
        for (code, lot) in work.receiptClaims {
            try db.execute(
                sql: "UPDATE receipts SET claimed_by = ?, lot_id = ? WHERE code = ? AND claimed_by IS NULL",
                arguments: [member.rawValue, lot.rawValue, code])
            guard db.changesCount == 1 else { throw StorageError.duplicate("receipt \(code) was claimed meanwhile") }
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
                    sql: "INSERT INTO transactions (id, kind, member_id, lot_id, receipt_code) VALUES (?, ?, ?, ?, ?)",
                    arguments: [
                        transaction.id.rawValue, transaction.kind.rawValue, transaction.memberID.rawValue,
                        transaction.lot?.rawValue, transaction.receiptCode,
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
    fileprivate struct DeviceWrite {
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
    fileprivate struct Written: Sendable {
        var member: Int64?
        var catalogue: Int64?
        var device: DeviceWrite?

        /// Once committed: raises the kept versions of the scopes written.
        func tell(_ cache: RequestCache, member id: MemberID?) {
            if let member, let id { cache.raise(scope: id.rawValue, to: member) }
            if let catalogue { cache.raise(scope: RequestCache.catalogueScope, to: catalogue) }
        }
    }

    /// Writes entities, each with the next feed version; returns the newest version given to a member-scoped one
    /// and to a programme-wide one.
    private static func writeEntities(
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

    private static func entities(_ db: Database, scope: String) throws -> [Entity] {
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

    // MARK: Feed

    public func feed(member: MemberID, after cursor: LoyaltyCore.Cursor, limit: Int) async throws -> FeedPage {
        if let known = cache.unchanged(member: member, after: cursor.version) {
            return FeedPage(changes: [], hasMore: false, horizon: known.horizon, latest: known.newest)
        }
        let ticket = cache.ticket()
        let (page, heads) = try await pool.read { db in
            let meta = try db.cachedStatement(sql: "SELECT value FROM meta WHERE key = ?")
            let horizon = try Int64.fetchOne(meta, arguments: ["horizon"]) ?? 0
            let latest = try UInt64(Int64.fetchOne(meta, arguments: ["version"]) ?? 0)
            // Read through a cursor, columns by position: copying each row and finding its columns by name
            // (GRDB compares names without case) cost more than SQLite's reading of a page of a thousand.
            let rows = try Row.fetchCursor(
                db.cachedStatement(
                    sql: """
                        SELECT kind, id, version, body FROM entities
                        WHERE scope IN (?, '*') AND version > ? ORDER BY version LIMIT ?
                        """),
                arguments: [member.rawValue, Int64(cursor.version), limit + 1])
            var changes: [StoredChange] = []
            changes.reserveCapacity(min(limit, 2_048))
            var (read, hasMore) = (0, false)
            while let row = try rows.next() {
                read += 1
                guard read <= limit else {
                    hasMore = true
                    break
                }
                guard let kind = EntityKey.Kind(rawValue: row[0]) else { continue }
                changes.append(
                    StoredChange(version: UInt64(row[2] as Int64), key: EntityKey(kind, row[1]), body: row[3]))
            }
            let page = FeedPage(changes: changes, hasMore: hasMore, horizon: UInt64(horizon), latest: latest)
            // The device is up to date after this page: its next pull is likely unchanged, and known from memory.
            let heads = page.hasMore ? nil : (try Self.versions(db, member: member), horizon)
            return (page, heads)
        }
        if let (versions, horizon) = heads {
            cache.keep(
                heads: [member.rawValue: versions.member, RequestCache.catalogueScope: versions.catalogue],
                horizon: horizon, readWith: ticket)
        }
        return page
    }

    public func compact(before time: Timestamp) async throws {
        let horizon = try await pool.write { db in
            let cutoff = time.millisecondsSince1970
            // The horizon is the newest deletion forgotten: a cursor before it would miss that deletion.
            try db.execute(
                sql: """
                    UPDATE meta SET value = max(value, (
                        SELECT coalesce(max(version), 0) FROM entities WHERE body IS NULL AND updated_at < ?))
                    WHERE key = 'horizon'
                    """, arguments: [cutoff])
            try db.execute(sql: "DELETE FROM entities WHERE body IS NULL AND updated_at < ?", arguments: [cutoff])
            try db.execute(sql: "DELETE FROM mutation_results WHERE processed_at < ?", arguments: [cutoff])
            return try Int64.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'horizon'") ?? 0
        }
        cache.raise(horizon: horizon)
    }

    // MARK: Accounts and devices

    public func createMember(
        _ account: AccountRecord, device: DeviceRecord, card: CardNumber, entities: [Entity], now: Timestamp
    ) async throws {
        let written = try await pool.write { db in
            try Self.mapConstraint("e-mail \(account.email)") {
                try db.execute(
                    sql:
                        """
                        INSERT INTO accounts (member_id, email, password_hash, salt, password_params, created_at)
                        VALUES (?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        account.memberID.rawValue, account.email, Data(account.passwordHash), Data(account.salt),
                        account.passwordParameters.description, account.createdAt.millisecondsSince1970,
                    ])
            }
            try Self.insertDevice(db, device)
            try Self.mapConstraint("card \(card.digits)") {
                try db.execute(
                    sql: "INSERT INTO cards (number, member_id) VALUES (?, ?)",
                    arguments: [card.digits, account.memberID.rawValue])
            }
            return try Self.writeEntities(entities, member: account.memberID, now: now, db: db)
        }
        written.tell(cache, member: account.memberID)
        cache.forget(devices: [device.id])
    }

    public func account(email: String) async throws -> AccountRecord? {
        try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM accounts WHERE email = ?", arguments: [email]).map(Self.account)
        }
    }

    public func account(member: MemberID) async throws -> AccountRecord? {
        try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM accounts WHERE member_id = ?", arguments: [member.rawValue])
                .map(Self.account)
        }
    }

    public func updatePassword(
        member: MemberID, hash: [UInt8], salt: [UInt8], parameters: ScryptParameters
    ) async throws {
        try await pool.write { db in
            try db.execute(
                sql: "UPDATE accounts SET password_hash = ?, salt = ?, password_params = ? WHERE member_id = ?",
                arguments: [Data(hash), Data(salt), parameters.description, member.rawValue])
        }
    }

    public func setSignInBlocked(member: MemberID, blocked: Bool) async throws -> Bool {
        try await pool.write { db in
            try db.execute(
                sql: "UPDATE accounts SET sign_in_blocked = ? WHERE member_id = ?",
                arguments: [blocked, member.rawValue])
            return db.changesCount == 1
        }
    }

    public func revokeDevices(
        member: MemberID, except kept: DeviceID?, reason: RevocationReason, at time: Timestamp
    ) async throws -> [DeviceID] {
        let revoked = try await pool.write { db -> [DeviceID] in
            let ids = try String.fetchAll(
                db, sql: "SELECT id FROM devices WHERE member_id = ? AND revoked_at IS NULL AND id IS NOT ?",
                arguments: [member.rawValue, kept?.rawValue])
            try db.execute(
                sql: """
                    UPDATE devices SET revoked_at = ?, revoked_reason = ?
                    WHERE member_id = ? AND revoked_at IS NULL AND id IS NOT ?
                    """,
                arguments: [time.millisecondsSince1970, reason.rawValue, member.rawValue, kept?.rawValue])
            return ids.map { DeviceID($0) }
        }
        cache.forget(devices: revoked)
        return revoked
    }

    public func memberIDs(after: MemberID?, limit: Int) async throws -> [MemberID] {
        try await pool.read { db in
            try String.fetchAll(
                db, sql: "SELECT member_id FROM accounts WHERE member_id > ? ORDER BY member_id LIMIT ?",
                arguments: [after?.rawValue ?? "", limit]
            ).map { MemberID($0) }
        }
    }

    public func device(_ id: DeviceID) async throws -> DeviceRecord? {
        if let kept = cache.device(id) { return kept }
        let ticket = cache.ticket()
        let record = try await pool.read { db in try Self.fetchDevice(db, id: id) }
        if let record { cache.keep(record, readWith: ticket) }
        return record
    }

    public func devices(member: MemberID) async throws -> [DeviceRecord] {
        try await pool.read { db in
            try Row.fetchAll(
                db, sql: "SELECT * FROM devices WHERE member_id = ? ORDER BY created_at, id",
                arguments: [member.rawValue]
            ).map(Self.device)
        }
    }

    public func insertDevice(_ device: DeviceRecord) async throws {
        try await pool.write { db in try Self.insertDevice(db, device) }
        cache.forget(devices: [device.id])
    }

    public func rotateRefreshToken(
        device id: DeviceID, presented: [UInt8], next: [UInt8], now: Timestamp, policy: RefreshPolicy
    ) async throws -> RefreshRotation {
        let outcome = try await pool.write { db -> RefreshRotation in
            guard let device = try Self.fetchDevice(db, id: id) else { return .unknown }
            let (outcome, updated) = RefreshFamily.decide(
                device, presented: presented, next: next, now: now, policy: policy)
            guard updated != device else { return outcome }
            try db.execute(
                sql: """
                    UPDATE devices SET refresh_hash = ?, previous_refresh_hash = ?, rotated_at = ?,
                        superseded_refresh = ?, refresh_retries = ?, revoked_at = ?, revoked_reason = ?
                    WHERE id = ?
                    """,
                arguments: [
                    Data(updated.refreshHash), updated.previousRefreshHash.map { Data($0) },
                    updated.rotatedAt?.millisecondsSince1970, Data(updated.supersededRefreshHashes.joined()),
                    updated.refreshRetries, updated.revokedAt?.millisecondsSince1970, updated.revokedReason?.rawValue,
                    id.rawValue,
                ])
            return outcome
        }
        cache.forget(devices: [id])
        return outcome
    }

    public func revokeDevice(_ id: DeviceID, at time: Timestamp) async throws -> Bool {
        let revoked = try await pool.write { db in
            try db.execute(
                sql: """
                    UPDATE devices SET revoked_at = coalesce(revoked_at, ?),
                        revoked_reason = coalesce(revoked_reason, 'signed_out')
                    WHERE id = ?
                    """,
                arguments: [time.millisecondsSince1970, id.rawValue])
            return db.changesCount == 1
        }
        cache.forget(devices: [id])
        return revoked
    }

    public func markPulled(_ id: DeviceID, at time: Timestamp) async throws {
        try await pool.write { db in
            // The later time stays, so that two pulls told in either order leave the same row (in memory too).
            try db.cachedStatement(
                sql: "UPDATE devices SET last_pulled_at = max(coalesce(last_pulled_at, ?1), ?1) WHERE id = ?2"
            ).execute(arguments: [time.millisecondsSince1970, id.rawValue])
        }
        cache.update(device: id) { $0.lastPulledAt = max($0.lastPulledAt ?? time, time) }
    }

    public func touchDevice(_ id: DeviceID, at time: Timestamp) async throws {
        try await pool.write { db in
            try db.execute(
                sql: "UPDATE devices SET last_seen_at = ? WHERE id = ?",
                arguments: [time.millisecondsSince1970, id.rawValue])
        }
        cache.forget(devices: [id])
    }

    // MARK: Cards, receipts, transactions

    public func cardOwner(_ number: CardNumber) async throws -> MemberID? {
        try await pool.read { db in
            try String.fetchOne(db, sql: "SELECT member_id FROM cards WHERE number = ?", arguments: [number.digits])
                .map { MemberID($0) }
        }
    }

    public func insertReceipt(_ receipt: Receipt) async throws {
        try await pool.write { db in
            try Self.mapConstraint("receipt \(receipt.code)") {
                try db.execute(
                    sql: "INSERT INTO receipts (code, amount, shop, purchased_at) VALUES (?, ?, ?, ?)",
                    arguments: [
                        receipt.code, receipt.amount.minorUnits, receipt.shop,
                        receipt.purchasedAt.millisecondsSince1970,
                    ])
            }
        }
    }

    public func receipt(code: String) async throws -> (Receipt, LotID?)? {
        try await pool.read { db in try Self.fetchReceipt(db, code: code) }
    }

    public func transaction(_ id: TransactionID) async throws -> TransactionRecord? {
        try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM transactions WHERE id = ?", arguments: [id.rawValue]).map { row in
                TransactionRecord(
                    id: TransactionID(row["id"]), kind: TransactionRecord.Kind(rawValue: row["kind"]) ?? .purchase,
                    memberID: MemberID(row["member_id"]), lot: (row["lot_id"] as String?).map { LotID($0) },
                    receiptCode: row["receipt_code"])
            }
        }
    }

    // MARK: Rows

    private static func insertDevice(_ db: Database, _ device: DeviceRecord) throws {
        try mapConstraint("device \(device.id)") {
            try db.execute(
                sql: """
                    INSERT INTO devices (id, member_id, name, created_at, refresh_hash) VALUES (?, ?, ?, ?, ?)
                    """,
                arguments: [
                    device.id.rawValue, device.memberID.rawValue, device.name, device.createdAt.millisecondsSince1970,
                    Data(device.refreshHash),
                ])
        }
    }

    private static func fetchDevice(_ db: Database, id: DeviceID) throws -> DeviceRecord? {
        try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM devices WHERE id = ?"), arguments: [id.rawValue])
            .map(device)
    }

    private static func fetchReceipt(_ db: Database, code: String) throws -> (Receipt, LotID?)? {
        try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM receipts WHERE code = ?"), arguments: [code]).map {
            row in
            let receipt = Receipt(
                code: row["code"], amount: Money(minorUnits: row["amount"]), shop: row["shop"],
                purchasedAt: Timestamp(millisecondsSince1970: row["purchased_at"]),
                claimedBy: (row["claimed_by"] as String?).map { MemberID($0) })
            return (receipt, (row["lot_id"] as String?).map { LotID($0) })
        }
    }

    private static func account(_ row: Row) -> AccountRecord {
        AccountRecord(
            memberID: MemberID(row["member_id"]), email: row["email"],
            passwordHash: [UInt8](row["password_hash"] as Data), salt: [UInt8](row["salt"] as Data),
            passwordParameters: (row["password_params"] as String?).flatMap(ScryptParameters.init) ?? .legacy,
            createdAt: Timestamp(millisecondsSince1970: row["created_at"]), signInBlocked: row["sign_in_blocked"])
    }

    private static func device(_ row: Row) -> DeviceRecord {
        func time(_ column: String) -> Timestamp? {
            (row[column] as Int64?).map { Timestamp(millisecondsSince1970: $0) }
        }
        return DeviceRecord(
            id: DeviceID(row["id"]), memberID: MemberID(row["member_id"]), name: row["name"],
            createdAt: Timestamp(millisecondsSince1970: row["created_at"]), revokedAt: time("revoked_at"),
            lastSequence: UInt64(row["last_sequence"] as Int64), lastActedAt: time("last_acted_at"),
            lastSeenAt: time("last_seen_at"), lastPulledAt: time("last_pulled_at"),
            refreshHash: [UInt8](row["refresh_hash"] as Data),
            previousRefreshHash: (row["previous_refresh_hash"] as Data?).map { [UInt8]($0) },
            rotatedAt: time("rotated_at"),
            supersededRefreshHashes: ((row["superseded_refresh"] as Data?).map { [UInt8]($0) } ?? []).chunked(32),
            refreshRetries: row["refresh_retries"],
            revokedReason: (row["revoked_reason"] as String?).flatMap {
                RevocationReason(rawValue: $0)
            })
    }

    private static func mapConstraint(_ what: String, _ body: () throws -> Void) throws {
        do {
            try body()
        } catch let error as DatabaseError where error.resultCode == .SQLITE_CONSTRAINT {
            throw StorageError.duplicate(what)
        }
    }
}

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

extension Array where Element == UInt8 {
    /// The array cut into pieces of `size` bytes (the last one shorter if it does not divide).
    fileprivate func chunked(_ size: Int) -> [[UInt8]] {
        stride(from: 0, to: count, by: size).map { Array(self[$0..<Swift.min($0 + size, count)]) }
    }
}
