internal import Foundation
internal import GRDB
public import LoyaltyCore
internal import LoyaltySQLite
internal import Synchronization

// Pulled pages applied to the confirmed state.
extension DeviceStore {

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
                        message: NoticeWording.reset,
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
                                message: NoticeWording.replaced(record),
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

    /// Forgets everything of the member (sign-out, a revoked device): identity and tokens, state, outbox,
    /// notices. Nothing of it stays readable in the files: deleted content is zeroed (`secure_delete`), the file is
    /// rewritten without its free pages (`VACUUM`), and the write-ahead log, which still holds the pages as they
    /// were, is copied back and truncated to nothing.
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
        try secrets.write(nil)
        try pool.writeWithoutTransaction { db in
            try db.execute(sql: "VACUUM")
            try db.checkpoint(.truncate)
        }
    }

}
