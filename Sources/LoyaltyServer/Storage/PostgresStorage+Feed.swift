internal import Foundation
public import LoyaltyCore
internal import PostgresNIO

// The feed a device pulls, and its compaction.
extension PostgresStorage {
    public func feed(member: MemberID, after cursor: LoyaltyCore.Cursor, limit: Int) async throws -> FeedPage {
        try await pullPage(device: nil, member: member, after: cursor, limit: limit).page
    }

    public func pullPage(
        device: DeviceID?, member: MemberID, after cursor: LoyaltyCore.Cursor, limit: Int
    ) async throws -> (device: DeviceRecord?, page: FeedPage) {
        // One statement, in a transaction of its own: it waits until no unit of work of this member and no catalogue
        // change is in flight, on any instance, and then reads (migration v2's function). Every version below the
        // newest visible one in this feed is then committed: a later writer takes a version from the sequence after
        // the locks were granted, so above all that this pull sees.
        try await leased { connection in
            var heads: (horizon: Int64, latest: Int64, device: DeviceRecord?)?
            var changes: [StoredChange] = []
            var hasMore = false
            let page = FeedStatement(
                member: member.rawValue, device: device?.rawValue, after: Int64(cursor.version), limit: limit,
                wait: !self.hooks.naiveFeed)
            for try await row in try await connection.execute(page, logger: self.logger) {
                switch row {
                case .heads(let horizon, let latest, let device): heads = (horizon, latest, device)
                case .change where changes.count == limit: hasMore = true
                case .change(let change): changes.append(change)
                case .unknown: continue
                }
            }
            guard let heads else { throw LoyaltyError(.unusableStore, "the database has no feed heads") }
            return (
                heads.device,
                FeedPage(
                    changes: changes, hasMore: hasMore, horizon: UInt64(heads.horizon), latest: UInt64(heads.latest))
            )
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
