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
    /// Where the session's tokens are kept (never in the database).
    let secrets: any SecretStore
    let pool: DatabasePool
    /// Copies the log back beside the writer after each pulled page, so that no page's commit carries a checkpoint.
    let checkpointer: Checkpointer
    let cache: Mutex<ViewCache>
    /// The identity row's bytes and what they decode to: decoded again only when the bytes change.
    let identityCache = Mutex<(data: Data, identity: DeviceIdentity)?>(nil)
    /// The outbox rows as decoded, by sequence number, with the bytes they were decoded from: a sync reads the
    /// outbox at every step (to push, after recording results, to replay it after each page).
    let decodedOutbox = Mutex<[Int64: DecodedOutboxRow]>([:])

    struct DecodedOutboxRow {
        var envelopeBytes: Data
        var envelope: MutationEnvelope
        var resultBytes: Data?
        var result: MutationResult?
    }

    struct ViewCache {
        var confirmed: MemberState?
        var view: MemberState?
        var optimisticEntries: [LedgerEntry] = []
    }

    /// Opens (or creates) the store. A file that is not a usable SQLite database, or not a Loyalty device store,
    /// is an error naming it; it is never replaced. A store locked by another process is waited for, then
    /// reported.
    public init(path: String, now: Timestamp = Timestamp(Date()), secrets: (any SecretStore)? = nil) throws {
        self.path = path
        self.secrets = secrets ?? FileSecretStore(path: path + ".secrets")
        var configuration = Configuration()
        configuration.busyMode = .timeout(5)
        // Deleted content is overwritten with zeros, so that a wipe leaves nothing of the member in the file.
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL; PRAGMA secure_delete = ON")
        }
        do {
            // The store holds the member's refresh token and personal data: its owner alone may read it.
            try PrivateFiles.prepareDatabase(at: path)
        } catch {
            throw LoyaltyError(.unusableStore, "\(path) cannot be made private to this user", cause: error)
        }
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
            try Self.migrator.migrate(pool)
            checkpointer = try Checkpointer(path: path)
        } catch let error as DatabaseError {
            switch error.resultCode {
            case .SQLITE_NOTADB, .SQLITE_CORRUPT:
                throw LoyaltyError(
                    .unusableStore,
                    "\(path) is not a usable Loyalty device store (corrupt or another kind of file); it was left "
                        + "untouched: move it away and sign in again to start a fresh one", cause: error)
            case .SQLITE_BUSY, .SQLITE_LOCKED:
                throw LoyaltyError(
                    .locked, "\(path) is locked by another process; close it and try again", cause: error)
            default:
                throw LoyaltyError(.unusableStore, "\(path) could not be opened", cause: error)
            }
        }
        cache = Mutex(ViewCache())
        try rebuildView(now: now)
    }

    // MARK: Helpers

    /// A write transaction; a store another process holds locked past the busy timeout is reported clearly.
    func write<T>(_ updates: (Database) throws -> T) throws -> T {
        do {
            return try pool.write(updates)
        } catch let error as DatabaseError where error.resultCode == .SQLITE_BUSY || error.resultCode == .SQLITE_LOCKED
        {
            throw LoyaltyError(
                .locked, "\(path) is locked by another process (waited 5 s): close it and try again", cause: error)
        }
    }

    static func identity(_ db: Database) throws -> DeviceIdentity? {
        guard let data = try Data.fetchOne(db, sql: "SELECT identity FROM device WHERE id = 1") else { return nil }
        return try JSONDecoder().decode(DeviceIdentity.self, from: data)
    }

    /// The grant this device is giving back, if any.
    static func releasing(_ db: Database) throws -> (DeviceID, Int)? {
        guard let device = try identity(db)?.deviceID,
            let grant = try Int.fetchOne(db, sql: "SELECT releasing_grant FROM device WHERE id = 1")
        else { return nil }
        return (device, grant)
    }

    static func hlc(_ db: Database) throws -> HybridLogicalClock {
        let encoded = try Int64.fetchOne(db, sql: "SELECT hlc FROM device WHERE id = 1") ?? 0
        return HybridLogicalClock(last: HLCTimestamp(encoded: UInt64(bitPattern: encoded)))
    }

}
