public import Foundation
internal import GRDB
public import LoyaltyCore
internal import LoyaltySQLite
internal import Synchronization

/// A device's SQLite store: the state the server confirmed, the outbox of the member's pending mutations, the
/// notices, and the sync position. One file per device.
///
/// What the member sees is the *view*: the confirmed state with the pending mutations replayed on it through
/// LoyaltyCore's `apply`. The view is kept in memory and updated by every write, so a screen never replays
/// or reads more than it shows.
public final class DeviceStore: Sendable {
    /// The database file.
    public let path: String
    private let pool: DatabasePool
    /// Copies the log back beside the writer after each pulled page: SQLite's own checkpoint (every 1,000 pages of
    /// log, kept as it is) otherwise ran inside every seventh page's commit of a bootstrap (docs/benchmarks.md).
    private let checkpointer: Checkpointer
    private let cache: Mutex<ViewCache>
    /// The identity row's bytes and what they decode to: decoded again only when the bytes change.
    private let identityCache = Mutex<(data: Data, identity: DeviceIdentity)?>(nil)
    /// The outbox rows as decoded, by sequence number, with the bytes they were decoded from. A sync reads the
    /// outbox at every step (to push, after recording results, to replay it after each page), and decoding every
    /// envelope each time was a sixth of an incremental sync (docs/benchmarks.md).
    private let decodedOutbox = Mutex<[Int64: DecodedOutboxRow]>([:])

    private struct DecodedOutboxRow {
        var envelopeBytes: Data
        var envelope: MutationEnvelope
        var resultBytes: Data?
        var result: MutationResult?
    }

    private struct ViewCache {
        var confirmed: MemberState?
        var view: MemberState?
        var optimisticEntries: [LedgerEntry] = []
    }

    /// Opens (or creates) the store. A file that is not a usable SQLite database, or not a Loyalty device store,
    /// is an error naming it; it is never replaced. A store locked by another process is waited for, then
    /// reported.
    public init(path: String, now: Timestamp = Timestamp(Date())) throws {
        self.path = path
        var configuration = Configuration()
        configuration.busyMode = .timeout(5)
        configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
        do {
            // The store holds the member's refresh token and personal data: its owner alone may read it.
            try PrivateFiles.prepareDatabase(at: path)
        } catch {
            throw DeviceStoreError(.unusableFile, "\(error)")
        }
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
            try Self.migrator.migrate(pool)
            checkpointer = try Checkpointer(path: path)
        } catch let error as DatabaseError {
            switch error.resultCode {
            case .SQLITE_NOTADB, .SQLITE_CORRUPT:
                throw DeviceStoreError(
                    .unusableFile,
                    "\(path) is not a usable Loyalty device store (corrupt or another kind of file); it was left "
                        + "untouched: move it away and sign in again to start a fresh one")
            case .SQLITE_BUSY, .SQLITE_LOCKED:
                throw DeviceStoreError(.locked, "\(path) is locked by another process; close it and try again")
            default:
                throw DeviceStoreError(.unusableFile, "\(path) could not be opened: \(error.message ?? "\(error)")")
            }
        }
        cache = Mutex(ViewCache())
        try rebuildView(now: now)
    }

    // MARK: Schema

    static let migrator: DatabaseMigrator = {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: confirmed state and outbox") { db in
            try db.execute(
                sql: """
                    CREATE TABLE device (
                        id INTEGER PRIMARY KEY CHECK (id = 1),
                        identity BLOB,
                        cursor INTEGER NOT NULL DEFAULT 0,
                        last_processed INTEGER NOT NULL DEFAULT 0,
                        next_sequence INTEGER NOT NULL DEFAULT 1 CHECK (next_sequence >= 1),
                        hlc INTEGER NOT NULL DEFAULT 0,
                        clock_offset INTEGER NOT NULL DEFAULT 0,
                        clock_uncertainty INTEGER NOT NULL DEFAULT 0,
                        last_sync_at INTEGER,
                        last_error TEXT,
                        condition TEXT NOT NULL DEFAULT 'signedOut');
                    INSERT INTO device (id) VALUES (1);
                    CREATE TABLE confirmed (
                        kind TEXT NOT NULL,
                        id TEXT NOT NULL,
                        version INTEGER NOT NULL,
                        body BLOB NOT NULL,
                        PRIMARY KEY (kind, id));
                    CREATE TABLE ledger_entries (
                        id TEXT PRIMARY KEY NOT NULL,
                        at INTEGER NOT NULL,
                        version INTEGER NOT NULL,
                        body BLOB NOT NULL);
                    CREATE INDEX ledger_entries_by_time ON ledger_entries(at DESC, id);
                    CREATE TABLE outbox (
                        sequence INTEGER PRIMARY KEY NOT NULL CHECK (sequence >= 1),
                        envelope BLOB NOT NULL,
                        created_at INTEGER NOT NULL,
                        result BLOB);
                    """)
        }
        migrator.registerMigration("v2: notices") { db in
            try db.execute(
                sql: """
                    CREATE TABLE notices (
                        id TEXT PRIMARY KEY NOT NULL,
                        kind TEXT NOT NULL,
                        message TEXT NOT NULL,
                        sequence INTEGER,
                        mutation_kind TEXT,
                        created_at INTEGER NOT NULL,
                        read INTEGER NOT NULL DEFAULT 0);
                    CREATE INDEX notices_by_time ON notices(created_at DESC);
                    """)
        }
        migrator.registerMigration("v3: allowances") { db in
            try db.execute(
                sql: """
                    ALTER TABLE outbox ADD COLUMN guaranteed INTEGER NOT NULL DEFAULT 0;
                    ALTER TABLE device ADD COLUMN releasing_grant INTEGER;
                    ALTER TABLE device ADD COLUMN releasing_through INTEGER;
                    """)
        }
        return migrator
    }()

    // MARK: Identity and sync position

    /// The device's identity, once signed in.
    public func identity() throws -> DeviceIdentity? {
        try pool.read { db in try Self.identity(db) }
    }

    /// Stores a new session (enrolment, sign-in, refresh) and marks the device ready.
    public func saveIdentity(_ identity: DeviceIdentity) throws {
        try write { db in
            try db.execute(
                sql: "UPDATE device SET identity = ?, condition = 'ready', last_error = NULL",
                arguments: [try JSONEncoder().encode(identity)])
        }
    }

    /// Marks why the device cannot sync, keeping data and outbox.
    public func setCondition(_ condition: DeviceCondition, error: String?) throws {
        try write { db in
            try db.execute(
                sql: "UPDATE device SET condition = ?, last_error = ?", arguments: [condition.rawValue, error])
        }
    }

    /// Records the outcome of a sync attempt.
    public func recordAttempt(at time: Timestamp, error: String?) throws {
        try write { db in
            if let error {
                try db.execute(sql: "UPDATE device SET last_error = ?", arguments: [error])
            } else {
                try db.execute(
                    sql: "UPDATE device SET last_error = NULL, last_sync_at = ?",
                    arguments: [time.millisecondsSince1970])
            }
        }
    }

    /// Folds in what a server answer says about time: its clock (for the offset) and its stamp (causality).
    ///
    /// `measuresOffset` false folds the stamp in but keeps the offset measured before: for an answer that waited
    /// while the device was busy (a page asked for ahead), whose send and receive times bracket the server's
    /// clock loosely.
    public func observeServer(
        time: Timestamp, stamp: HLCTimestamp, sent: Timestamp, received: Timestamp, measuresOffset: Bool = true
    ) throws {
        let measured = ClockOffset(sent: sent, received: received, serverTime: time)
        try write { db in
            var clock = try Self.hlc(db)
            let offset =
                measuresOffset
                ? measured.offset
                : TimeSpan.milliseconds(
                    try Int64.fetchOne(db, sql: "SELECT clock_offset FROM device WHERE id = 1") ?? 0)
            // A stamp the server vouches for is folded in even if this clock is far behind (it is corrected).
            _ = try? clock.receive(stamp, wall: received.adding(offset))
            if measuresOffset {
                try db.execute(
                    sql: "UPDATE device SET hlc = ?, clock_offset = ?, clock_uncertainty = ?",
                    arguments: [
                        Int64(bitPattern: clock.last.encoded), measured.offset.milliseconds,
                        measured.uncertainty.milliseconds,
                    ])
            } else {
                try db.execute(sql: "UPDATE device SET hlc = ?", arguments: [Int64(bitPattern: clock.last.encoded)])
            }
        }
    }

    /// Where syncing stands.
    public func status() throws -> SyncStatus {
        try pool.read { db in
            let row = try Row.fetchOne(db, sql: "SELECT * FROM device WHERE id = 1")!
            let pending = try Int.fetchOne(db, sql: "SELECT count(*) FROM outbox") ?? 0
            let unread = try Int.fetchOne(db, sql: "SELECT count(*) FROM notices WHERE read = 0") ?? 0
            let oldest = try Int64.fetchOne(db, sql: "SELECT min(created_at) FROM outbox")
            return SyncStatus(
                condition: DeviceCondition(rawValue: row["condition"]) ?? .signedOut, pending: pending,
                unreadNotices: unread,
                lastSyncAt: (row["last_sync_at"] as Int64?).map { Timestamp(millisecondsSince1970: $0) },
                lastError: row["last_error"], oldestPendingAt: oldest.map { Timestamp(millisecondsSince1970: $0) },
                cursor: LoyaltyCore.Cursor(version: UInt64(row["cursor"] as Int64)),
                clockOffset: ClockOffset(
                    offset: .milliseconds(row["clock_offset"]), uncertainty: .milliseconds(row["clock_uncertainty"])))
        }
    }

    /// The device clock corrected by the measured offset.
    public func correctedTime(_ deviceTime: Timestamp) throws -> Timestamp {
        let offset = try pool.read { db in
            try Int64.fetchOne(db, sql: "SELECT clock_offset FROM device WHERE id = 1") ?? 0
        }
        return deviceTime.adding(.milliseconds(offset))
    }

    // MARK: Local mutations

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
                    throw DeviceStoreError(.notSignedIn, "this device is not signed in: enroll or log in first")
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
                        throw DeviceStoreError(.notBootstrapped, "this device has no data yet: sync once while online")
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
                        throw DeviceStoreError(.refused, rejection.message, rejection: rejection)
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
                            message: Self.describe(envelope.mutation) + ": " + message,
                            sequence: result.sequence, mutationKind: envelope.mutation.kind, createdAt: time))
                case .rejected(let rejection) where rejection.code == .outOfOrder:
                    continue
                case .rejected(let rejection):
                    guard let envelope = try queued(result.sequence) else { continue }
                    try db.execute(sql: "DELETE FROM outbox WHERE sequence = ?", arguments: [Int64(result.sequence)])
                    notices.append(
                        Notice(
                            id: "result:\(result.sequence)", kind: .rejected,
                            message: "\(Self.describe(envelope.mutation)) was refused: \(rejection.message). "
                                + Self.undone(envelope.mutation),
                            sequence: result.sequence, mutationKind: envelope.mutation.kind, createdAt: time))
                }
            }
            for notice in notices { try Self.insert(notice, db) }
            return notices
        }
        try replay(now: time)
        return notices
    }

    // MARK: Pulled changes

    /// Applies one page of the change feed in one transaction: the changes, the cursor, the server's last processed
    /// sequence number; decided mutations the page covers leave the outbox. A reset page first drops the confirmed
    /// state (the outbox stays). Conflicts that replaced this device's values become notices.
    public func applyPage(_ page: PullResponse, at time: Timestamp) throws -> [Notice] {
        let notices = try write { db -> [Notice] in
            var notices: [Notice] = []
            let me = try Self.identity(db)?.deviceID
            if page.reset {
                try db.execute(sql: "DELETE FROM confirmed")
                try db.execute(sql: "DELETE FROM ledger_entries")
                notices.append(
                    Notice(
                        id: "reset:\(page.cursor.version):\(time.millisecondsSince1970)", kind: .reset,
                        message:
                            "this device was away longer than the programme keeps changes, so its copy was rebuilt "
                            + "from the server; changes made here that were not yet sent are kept and will be sent",
                        sequence: nil, mutationKind: nil, createdAt: time))
            }
            let upsertEntity = try db.cachedStatement(
                sql: "INSERT OR REPLACE INTO confirmed (kind, id, version, body) VALUES (?, ?, ?, ?)")
            let upsertEntry = try db.cachedStatement(
                sql: "INSERT OR REPLACE INTO ledger_entries (id, at, version, body) VALUES (?, ?, ?, ?)")
            for (index, change) in page.changes.enumerated() {
                let key = change.key
                switch change.operation {
                case .upsert(.ledgerEntry(let entry)):
                    try upsertEntry.execute(arguments: [
                        entry.id.rawValue, entry.at.millisecondsSince1970, Int64(change.version),
                        try page.payloadJSON(at: index),
                    ])
                case .upsert(let entity):
                    try upsertEntity.execute(arguments: [
                        key.kind.rawValue, key.id, Int64(change.version), try page.payloadJSON(at: index),
                    ])
                    if case .conflict(let record) = entity, let me, record.losingSource == .device(me),
                        !record.id.hasPrefix("conflict:\(me):")
                    {
                        // A later change from elsewhere replaced a value written here. (When this device's own
                        // write lost, its push result already produced a notice.)
                        notices.append(
                            Notice(
                                id: record.id, kind: .conflict,
                                message:
                                    "your change to \(record.field.rawValue) ('\(record.losingValue ?? "cleared")') was "
                                    + "replaced by a later change from \(record.winningSource): "
                                    + "'\(record.winningValue ?? "cleared")'",
                                sequence: nil, mutationKind: "setProfileField", createdAt: time))
                    }
                case .delete:
                    try db.execute(
                        sql: "DELETE FROM confirmed WHERE kind = ? AND id = ?", arguments: [key.kind.rawValue, key.id])
                }
            }
            try db.execute(
                sql: "UPDATE device SET cursor = ?, last_processed = ? WHERE id = 1",
                arguments: [Int64(page.cursor.version), Int64(page.lastProcessedSequence)])
            try db.execute(
                sql: "DELETE FROM outbox WHERE result IS NOT NULL AND sequence <= ?",
                arguments: [Int64(page.lastProcessedSequence)])
            for notice in notices { try Self.insert(notice, db) }
            return notices
        }
        checkpointer.committed()
        // Merge the page into the confirmed state in memory (reloading it only if it is not there yet) and replay the
        // outbox on it, in one step so that a reader sees the old view or the new one, never none.
        let outbox = try outbox(now: time)
        let merged = cache.withLock { cache -> Bool in
            if page.reset { cache.confirmed = nil }
            guard var confirmed = cache.confirmed else { return false }
            // Let the merge change the only copy in place: the cache's confirmed state and the view (which shares
            // its storage wherever no pending mutation changed it) would each make it copy what it touches.
            cache.confirmed = nil
            cache.view = nil
            for change in page.changes { confirmed.apply(change) }
            (cache.view, cache.optimisticEntries) = Self.replayed(outbox, on: confirmed)
            cache.confirmed = confirmed
            return true
        }
        if !merged { try rebuildView(now: time) }
        return notices
    }

    /// The feed position to pull from.
    public func cursor() throws -> LoyaltyCore.Cursor {
        try pool.read { db in
            LoyaltyCore.Cursor(version: UInt64(try Int64.fetchOne(db, sql: "SELECT cursor FROM device") ?? 0))
        }
    }

    /// Forgets everything of the member (a revoked device): identity, state, outbox, notices.
    public func wipe() throws {
        try write { db in
            try db.execute(
                sql: """
                    DELETE FROM confirmed; DELETE FROM ledger_entries; DELETE FROM outbox; DELETE FROM notices;
                    UPDATE device SET identity = NULL, cursor = 0, last_processed = 0, condition = 'signedOut',
                        last_sync_at = NULL, last_error = NULL, releasing_grant = NULL, releasing_through = NULL;
                    """)
        }
        cache.withLock { $0 = ViewCache() }
    }

    // MARK: The view

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
    private func replay(now: Timestamp) throws {
        let outbox = try outbox(now: now)
        cache.withLock { cache in
            guard let confirmed = cache.confirmed else { return }
            (cache.view, cache.optimisticEntries) = Self.replayed(outbox, on: confirmed)
        }
    }

    /// What a replay reads from the file: the outbox, the allowance being given back, the corrected time.
    private struct Outbox {
        var pending: [PendingMutation]
        var releasing: (device: DeviceID, grant: Int)?
        var now: Timestamp
    }

    private func outbox(now: Timestamp) throws -> Outbox {
        Outbox(
            pending: try pendingMutations(), releasing: try pool.read { db in try Self.releasing(db) },
            now: try correctedTime(now))
    }

    /// The view: `confirmed` with the outbox replayed on it, and the ledger entries the replay made.
    private static func replayed(_ outbox: Outbox, on confirmed: MemberState) -> (MemberState, [LedgerEntry]) {
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

    // MARK: Allowance

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
                    throw DeviceStoreError(.unusableFile, "\(self.path) holds a ledger entry it cannot read")
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

    // MARK: Helpers

    /// A write transaction; a store another process holds locked past the busy timeout is reported clearly.
    private func write<T>(_ updates: (Database) throws -> T) throws -> T {
        do {
            return try pool.write(updates)
        } catch let error as DatabaseError where error.resultCode == .SQLITE_BUSY || error.resultCode == .SQLITE_LOCKED
        {
            throw DeviceStoreError(.locked, "\(path) is locked by another process (waited 5 s): close it and try again")
        }
    }

    private static func identity(_ db: Database) throws -> DeviceIdentity? {
        guard let data = try Data.fetchOne(db, sql: "SELECT identity FROM device WHERE id = 1") else { return nil }
        return try JSONDecoder().decode(DeviceIdentity.self, from: data)
    }

    /// The grant this device is giving back, if any.
    private static func releasing(_ db: Database) throws -> (DeviceID, Int)? {
        guard let device = try identity(db)?.deviceID,
            let grant = try Int.fetchOne(db, sql: "SELECT releasing_grant FROM device WHERE id = 1")
        else { return nil }
        return (device, grant)
    }

    private static func hlc(_ db: Database) throws -> HybridLogicalClock {
        let encoded = try Int64.fetchOne(db, sql: "SELECT hlc FROM device WHERE id = 1") ?? 0
        return HybridLogicalClock(last: HLCTimestamp(encoded: UInt64(bitPattern: encoded)))
    }

    /// Notices kept on a device: past it, the oldest are dropped as new ones arrive.
    public static let noticeLimit = 500

    private static func insert(_ notice: Notice, _ db: Database) throws {
        try db.execute(
            sql: """
                INSERT OR IGNORE INTO notices (id, kind, message, sequence, mutation_kind, created_at)
                VALUES (?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                notice.id, notice.kind.rawValue, notice.message, notice.sequence.map { Int64($0) }, notice.mutationKind,
                notice.createdAt.millisecondsSince1970,
            ])
        try db.execute(
            sql: """
                DELETE FROM notices WHERE id IN (
                    SELECT id FROM notices ORDER BY created_at DESC, rowid DESC LIMIT -1 OFFSET ?)
                """,
            arguments: [noticeLimit])
    }

    /// The member's action in words.
    static func describe(_ mutation: Mutation) -> String {
        switch mutation {
        case .activateOffer(let id): "activating offer \(id)"
        case .redeemOffer(let id): "using offer \(id)"
        case .redeemReward(let id): "redeeming reward \(id)"
        case .claimReceipt(let code): "claiming receipt \(code)"
        case .answerSurvey(let id, _): "answering survey \(id)"
        case .setProfileField(let field, _, _): "changing your \(field.rawValue)"
        case .setConsent(let kind, let granted): "\(granted ? "granting" : "withdrawing") \(kind.rawValue) consent"
        }
    }

    /// What undoing a refused mutation restored.
    static func undone(_ mutation: Mutation) -> String {
        switch mutation {
        case .redeemReward: "The points were restored and the provisional voucher withdrawn."
        case .redeemOffer: "The offer is shown as it is on the server again."
        case .activateOffer: "The offer is not activated."
        case .claimReceipt: "No points were credited for it."
        case .answerSurvey: "No points were credited for it."
        case .setProfileField: "Your profile shows the value the server keeps."
        case .setConsent: "Your consent shows the value the server keeps."
        }
    }
}
