internal import Foundation
public import LoyaltyCore
internal import PostgresNIO

// The feed a device pulls, and its compaction.
extension PostgresStorage {
    public func feed(member: MemberID, after cursor: LoyaltyCore.Cursor, limit: Int) async throws -> FeedPage {
        try await transaction { connection in
            if !self.hooks.naiveFeed {
                // Wait until no unit of work of this member and no catalogue change is in flight, on any instance:
                // every version below the newest visible one in this feed is then committed (a later writer takes a
                // version from the sequence after this, so above all that this pull sees).
                try await connection.query(
                    """
                    SELECT pg_advisory_xact_lock_shared(\(Self.memberLockSpace), hashtext(\(member.rawValue))),
                        pg_advisory_xact_lock_shared(\(Self.catalogueLock.space), \(Self.catalogueLock.key))
                    """, logger: self.logger)
            }
            // A statement after the locks: in READ COMMITTED its snapshot is taken now, after they were granted.
            let heads = try await connection.query(
                """
                SELECT (SELECT value FROM meta WHERE key = 'horizon'),
                    (SELECT last_value FROM feed_version)
                """, logger: self.logger
            ).collect()
            guard let head = heads.first else { throw LoyaltyError(.unusableStore, "the database has no feed heads") }
            let (horizon, latest) = try head.decode((Int64, Int64).self)
            let after = Int64(cursor.version)
            let rows = try await connection.query(
                """
                SELECT kind, id, version, body FROM (
                    (SELECT kind, id, version, body FROM entities
                     WHERE member_id = \(member.rawValue) AND version > \(after) ORDER BY version LIMIT \(limit + 1))
                    UNION ALL
                    (SELECT kind, id, version, body FROM catalogue
                     WHERE version > \(after) ORDER BY version LIMIT \(limit + 1))
                ) AS changes ORDER BY version LIMIT \(limit + 1)
                """, logger: self.logger)
            var changes: [StoredChange] = []
            var hasMore = false
            for try await (kind, id, version, body) in rows.decode((String, String, Int64, Data?).self) {
                guard changes.count < limit else {
                    hasMore = true
                    break
                }
                guard let kind = EntityKey.Kind(rawValue: kind) else { continue }
                changes.append(StoredChange(version: UInt64(version), key: EntityKey(kind, id), body: body))
            }
            return FeedPage(changes: changes, hasMore: hasMore, horizon: UInt64(horizon), latest: UInt64(latest))
        }
    }

    public func compact(before time: Timestamp) async throws {
        let cutoff = time.millisecondsSince1970
        try await transaction { connection in
            // The horizon is the newest deletion forgotten: a cursor before it would miss that deletion.
            try await connection.query(
                """
                UPDATE meta SET value = greatest(value,
                    (SELECT coalesce(max(version), 0) FROM entities WHERE body IS NULL AND updated_at < \(cutoff)),
                    (SELECT coalesce(max(version), 0) FROM catalogue WHERE body IS NULL AND updated_at < \(cutoff)))
                WHERE key = 'horizon'
                """, logger: self.logger)
            try await connection.query(
                "DELETE FROM entities WHERE body IS NULL AND updated_at < \(cutoff)", logger: self.logger)
            try await connection.query(
                "DELETE FROM catalogue WHERE body IS NULL AND updated_at < \(cutoff)", logger: self.logger)
            try await connection.query(
                "DELETE FROM mutation_results WHERE processed_at < \(cutoff)", logger: self.logger)
        }
    }
}
