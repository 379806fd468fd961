internal import Foundation
internal import GRDB
internal import LoyaltyCore
internal import LoyaltySQLite
internal import Synchronization

/// The embedded store: one SQLite file in WAL mode with `synchronous=FULL`, so that a mutation is on disk
/// before its result is answered. SQLite has one writer at a time, which also serialises units of work per
/// member (and across members: the embedded store is for a shop, a pilot or a test; PostgreSQL is for scale).
///
/// One process at a time writes the file: it holds a lock on `<path>.lock` while open, so that what it keeps in
/// memory (``RequestCache``, the members' states) cannot be overtaken by another process's writes.
public final class SQLiteStorage: ServerStorage {
    let pool: DatabasePool
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
            throw LoyaltyError(.unusableStore, "\(path) cannot be made private to this user", cause: error)
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
                throw LoyaltyError(
                    .unusableStore,
                    "\(path) is not a usable SQLite database (corrupt or not ours): move it away or restore a "
                        + "backup; it was left untouched", cause: error)
            }
            throw LoyaltyError(.unusableStore, "\(path) could not be opened", cause: error)
        }
    }

    deinit { close(lock) }

    /// Opens and locks the lock file of the store at `store`, or names the problem.
    private static func lock(_ path: String, for store: String) throws -> Int32 {
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw LoyaltyError(
                .unusableStore, "cannot open \(path) to lock the store: \(String(cString: strerror(errno)))")
        }
        guard lockf(descriptor, F_TLOCK, 0) == 0 else {
            let reason = errno
            close(descriptor)
            guard reason == EACCES || reason == EAGAIN else {
                throw LoyaltyError(.unusableStore, "cannot lock \(path): \(String(cString: strerror(reason)))")
            }
            throw LoyaltyError(
                .unusableStore,
                "another process (a loyalty-server?) has \(store) open: stop it first, or give this one another "
                    + "--data directory; the store was left untouched")
        }
        return descriptor
    }
}
