public import Foundation
internal import GRDB
internal import Logging
internal import LoyaltyCore
internal import NIOCore
internal import PostgresNIO

/// Copies a pilot's SQLite data directory into an empty PostgreSQL database, keeping what lets its devices go on
/// without a reset and without signing in again: feed versions (the sequence continues above the newest), the
/// feed's horizon, cursors' meaning, devices with their sequence numbers and refresh-token hashes, stored mutation
/// results, and the signing keys. Everything is written in one transaction: the target has all of it or nothing.
public enum StoreMove {
    /// What was copied, table by table (rows in the source, rows in the target after the copy).
    public struct Report: Sendable {
        public var tables: [(name: String, source: Int, target: Int)] = []
        /// Whether every table has as many rows in the target as in the source.
        public var verified: Bool { tables.allSatisfy { $0.source == $0.target } }
    }

    /// Copies `directory` (a server's `--data`, its server stopped) into the database of `target`, which must be
    /// empty (no account and no programme); `progress` gets a line per table and per 10,000 rows.
    public static func copy(
        from directory: URL, to target: PostgresStorage, progress: @escaping @Sendable (String) -> Void
    ) async throws -> Report {
        let path = directory.appendingPathComponent("loyalty.sqlite").path
        guard FileManager.default.fileExists(atPath: path) else {
            throw LoyaltyError(.unusableStore, "\(directory.path) holds no loyalty.sqlite: is it a server's --data?")
        }
        // Opening it takes its lock: a server still running on it is named, and nothing is copied.
        let source = try SQLiteStorage(path: path)
        try await source.migrate()
        let keys = try TokenAuthority.keyBytes(in: directory)
        guard let currentKey = keys.current else {
            throw LoyaltyError(.unusableStore, "\(directory.path) holds no signing.key: devices could not go on")
        }
        try await target.migrate()
        let logger = target.logger
        try await target.transaction { connection in
            let existing =
                try await connection.query(
                    """
                    SELECT (SELECT count(*) FROM accounts) + (SELECT count(*) FROM catalogue)
                        + (SELECT count(*) FROM signing_keys)
                    """, logger: logger
                ).collect().first?.decode(Int64.self) ?? 0
            guard existing == 0 else {
                throw LoyaltyError(
                    .duplicate,
                    "\(target.url) is not empty (it has accounts, a programme or signing keys): move into a new, "
                        + "empty database; nothing was written")
            }
            for table in tables {
                try await copy(table, from: source, to: connection, logger: logger, progress: progress)
            }
            let (version, horizon) = try await source.pool.read { db in
                (
                    try Int64.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'version'") ?? 0,
                    try Int64.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'horizon'") ?? 0
                )
            }
            // The sequence goes on above every version a device may hold as its cursor.
            if version > 0 {
                try await connection.query("SELECT setval('feed_version', \(version), true)", logger: logger)
            }
            try await connection.query("UPDATE meta SET value = \(horizon) WHERE key = 'horizon'", logger: logger)
            try await connection.query(
                "INSERT INTO signing_keys (slot, key) VALUES ('current', \(currentKey))", logger: logger)
            if let previous = keys.previous {
                try await connection.query(
                    "INSERT INTO signing_keys (slot, key) VALUES ('previous', \(previous))", logger: logger)
            }
        }
        var report = Report()
        for table in tables {
            let sourceCount = try await source.pool.read { db in
                try Int.fetchOne(db, sql: "SELECT count(*) FROM \(table.name)") ?? 0
            }
            let targetCount = try await target.leased { connection in
                try await connection.query(PostgresQuery(unsafeSQL: table.targetCount), logger: logger)
                    .collect().first?.decode(Int64.self) ?? 0
            }
            report.tables.append((table.name, sourceCount, Int(targetCount)))
        }
        return report
    }

    /// A table to copy: how to read its rows from SQLite (in rowid order) and write one into PostgreSQL.
    struct Table: Sendable {
        let name: String
        let select: String
        let targetCount: String
        let insert: @Sendable (Row) throws -> PostgresQuery
    }

    static func time(_ row: Row, _ column: String) -> Int64? { row[column] }
    static func bytes(_ row: Row, _ column: String) -> Data? { row[column] }

    static let tables: [Table] = [
        Table(
            name: "accounts", select: "SELECT rowid, * FROM accounts", targetCount: "SELECT count(*) FROM accounts"
        ) { row in
            try """
            INSERT INTO accounts (member_id, email, password_hash, salt, password_params, created_at, sign_in_blocked,
                unlock_due, expire_due)
            VALUES (\(row["member_id"] as String), \(row["email"] as String), \(row["password_hash"] as Data),
                \(row["salt"] as Data), \(row["password_params"] as String?), \(row["created_at"] as Int64),
                \(row["sign_in_blocked"] as Bool), \(row["unlock_due"] as Int64?), \(row["expire_due"] as Int64?))
            """
        },
        Table(
            name: "devices", select: "SELECT rowid, * FROM devices", targetCount: "SELECT count(*) FROM devices"
        ) { row in
            try """
            INSERT INTO devices (id, member_id, name, created_at, revoked_at, revoked_reason, last_sequence,
                last_acted_at, last_seen_at, last_pulled_at, refresh_hash, previous_refresh_hash, rotated_at,
                superseded_refresh, refresh_retries)
            VALUES (\(row["id"] as String), \(row["member_id"] as String), \(row["name"] as String),
                \(row["created_at"] as Int64), \(time(row, "revoked_at")), \(row["revoked_reason"] as String?),
                \(row["last_sequence"] as Int64), \(time(row, "last_acted_at")), \(time(row, "last_seen_at")),
                \(time(row, "last_pulled_at")), \(row["refresh_hash"] as Data), \(bytes(row, "previous_refresh_hash")),
                \(time(row, "rotated_at")), \(bytes(row, "superseded_refresh")), \(Int32(row["refresh_retries"] as Int)))
            """
        },
        Table(
            name: "cards", select: "SELECT rowid, * FROM cards", targetCount: "SELECT count(*) FROM cards"
        ) { row in
            "INSERT INTO cards (number, member_id) VALUES (\(row["number"] as String), \(row["member_id"] as String))"
        },
        Table(
            name: "mutation_results",
            select: """
                SELECT r.rowid, r.*, d.member_id FROM mutation_results r JOIN devices d ON d.id = r.device_id
                """, targetCount: "SELECT count(*) FROM mutation_results"
        ) { row in
            try """
            INSERT INTO mutation_results (member_id, device_id, sequence, result, processed_at)
            VALUES (\(row["member_id"] as String), \(row["device_id"] as String), \(row["sequence"] as Int64),
                \(row["result"] as Data), \(row["processed_at"] as Int64))
            """
        },
        Table(
            name: "entities", select: "SELECT rowid, * FROM entities",
            targetCount: "SELECT (SELECT count(*) FROM entities) + (SELECT count(*) FROM catalogue)"
        ) { row in
            let scope: String = row["scope"]
            if scope == "*" {
                return try """
                INSERT INTO catalogue (kind, id, version, body, updated_at)
                VALUES (\(row["kind"] as String), \(row["id"] as String), \(row["version"] as Int64),
                    \(bytes(row, "body")), \(row["updated_at"] as Int64))
                """
            }
            return try """
            INSERT INTO entities (member_id, kind, id, version, body, updated_at)
            VALUES (\(scope), \(row["kind"] as String), \(row["id"] as String), \(row["version"] as Int64),
                \(bytes(row, "body")), \(row["updated_at"] as Int64))
            """
        },
        Table(
            name: "receipts", select: "SELECT rowid, * FROM receipts", targetCount: "SELECT count(*) FROM receipts"
        ) { row in
            """
            INSERT INTO receipts (code, amount, shop, purchased_at, claimed_by, lot_id)
            VALUES (\(row["code"] as String), \(row["amount"] as Int64), \(row["shop"] as String),
                \(row["purchased_at"] as Int64), \(row["claimed_by"] as String?), \(row["lot_id"] as String?))
            """
        },
        Table(
            name: "transactions", select: "SELECT rowid, * FROM transactions",
            targetCount: "SELECT count(*) FROM transactions"
        ) { row in
            """
            INSERT INTO transactions (id, kind, member_id, lot_id, receipt_code, shop, categories)
            VALUES (\(row["id"] as String), \(row["kind"] as String), \(row["member_id"] as String),
                \(row["lot_id"] as String?), \(row["receipt_code"] as String?), \(row["shop"] as String?),
                \(row["categories"] as String?))
            """
        },
    ]

    /// Copies one table in batches of 1,000 rows (rowid order); returns the rows copied.
    @discardableResult
    static func copy(
        _ table: Table, from source: SQLiteStorage, to connection: PostgresConnection, logger: Logger,
        progress: @Sendable (String) -> Void
    ) async throws -> Int {
        let total = try await source.pool.read { db in
            try Int.fetchOne(db, sql: "SELECT count(*) FROM \(table.name)") ?? 0
        }
        progress("\(table.name): \(total) rows")
        var copied = 0
        var after: Int64 = 0
        let rowid = table.name == "mutation_results" ? "r.rowid" : "rowid"
        while true {
            let start = after
            // Rows are not Sendable: read on this thread (a tool, not a server path).
            let rows = try source.pool.read { db in
                try Row.fetchAll(
                    db, sql: "\(table.select) WHERE \(rowid) > ? ORDER BY \(rowid) LIMIT 1000", arguments: [start])
            }
            guard let last = rows.last else { break }
            for row in rows { try await connection.query(try table.insert(row), logger: logger) }
            copied += rows.count
            after = last["rowid"]
            if copied % 10_000 < rows.count || copied == total { progress("\(table.name): \(copied) of \(total)") }
        }
        return copied
    }
}
