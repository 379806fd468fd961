internal import Foundation
internal import GRDB
public import LoyaltyCore

// The feed a device pulls, and its compaction.
extension SQLiteStorage {
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
}
