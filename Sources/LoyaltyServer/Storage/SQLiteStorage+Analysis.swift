internal import Foundation
internal import GRDB
internal import LoyaltyAnalysis
public import LoyaltyCore

extension SQLiteStorage {
    public var analysis: any AnalysisStore { SQLiteAnalysisStore(pool: pool) }
}

/// The analysis tables of the embedded store (migration v6).
struct SQLiteAnalysisStore: AnalysisStore {
    let pool: DatabasePool

    func newestVersion() async throws -> Int64 {
        try await pool.read { db in try Int64.fetchOne(db, sql: "SELECT coalesce(max(version), 0) FROM entities") ?? 0 }
    }

    func membersChanged(since version: Int64, after: MemberID?, limit: Int) async throws -> [MemberID] {
        try await pool.read { db in
            try String.fetchAll(
                db,
                sql: """
                    SELECT DISTINCT scope FROM entities
                    WHERE version > ? AND scope <> '*' AND scope > ? ORDER BY scope LIMIT ?
                    """, arguments: [version, after?.rawValue ?? "", limit]
            ).map { MemberID($0) }
        }
    }

    func analysesDue(by time: Timestamp, after: MemberID?, limit: Int) async throws -> [MemberID] {
        try await pool.read { db in
            try String.fetchAll(
                db,
                sql: """
                    SELECT member_id FROM member_analysis WHERE due_at <= ? AND member_id > ? ORDER BY member_id LIMIT ?
                    """, arguments: [time.millisecondsSince1970, after?.rawValue ?? "", limit]
            ).map { MemberID($0) }
        }
    }

    func analysis(of member: MemberID) async throws -> Data? {
        try await pool.read { db in
            try Data.fetchOne(
                db, sql: "SELECT body FROM member_analysis WHERE member_id = ?", arguments: [member.rawValue])
        }
    }

    func analyses(after: MemberID?, limit: Int) async throws -> [(MemberID, Data)] {
        try await pool.read { db in
            try Row.fetchAll(
                db, sql: "SELECT member_id, body FROM member_analysis WHERE member_id > ? ORDER BY member_id LIMIT ?",
                arguments: [after?.rawValue ?? "", limit]
            ).map { (MemberID($0["member_id"]), $0["body"]) }
        }
    }

    func save(_ analyses: [AnalysisRow], through version: Int64?) async throws {
        try await pool.write { db in
            var stored: [MemberID: Data] = [:]
            for row in analyses {
                stored[row.member] = try Data.fetchOne(
                    db, sql: "SELECT contribution FROM member_analysis WHERE member_id = ?",
                    arguments: [row.member.rawValue])
            }
            for (period, measure, value) in try ProgrammeFigures.change(analyses, stored: stored).rows {
                try db.execute(
                    sql: """
                        INSERT INTO programme_figures (period, measure, value) VALUES (?, ?, ?)
                        ON CONFLICT (period, measure) DO UPDATE SET value = value + excluded.value
                        """, arguments: [period, measure, value])
            }
            for row in analyses {
                try db.execute(
                    sql: """
                        INSERT INTO member_analysis (member_id, due_at, body, contribution) VALUES (?, ?, ?, ?)
                        ON CONFLICT (member_id) DO UPDATE
                        SET due_at = excluded.due_at, body = excluded.body, contribution = excluded.contribution
                        """,
                    arguments: [
                        row.member.rawValue, row.due?.millisecondsSince1970, row.body,
                        row.storedContribution,
                    ])
            }
            if let version {
                try db.execute(
                    sql: "INSERT OR REPLACE INTO meta (key, value) VALUES ('analysis_version', ?)", arguments: [version]
                )
            }
        }
    }

    func ledgerEntryBodies(of member: MemberID) async throws -> [Data] {
        try await pool.read { db in
            try Data.fetchAll(
                db,
                sql: "SELECT body FROM entities WHERE scope = ? AND kind = 'ledgerEntry' AND body IS NOT NULL",
                arguments: [member.rawValue])
        }
    }

    func programmeFigures() async throws -> ProgrammeFigures {
        try await pool.read { db in
            var figures = ProgrammeFigures()
            for row in try Row.fetchAll(db, sql: "SELECT period, measure, value FROM programme_figures") {
                figures[row["period"], row["measure"]] = row["value"]
            }
            return figures
        }
    }

    func lookedThrough() async throws -> Int64 {
        try await pool.read { db in
            try Int64.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'analysis_version'") ?? 0
        }
    }

    func segments() async throws -> [String: Data] {
        try await pool.read { db in
            Dictionary(
                uniqueKeysWithValues: try Row.fetchAll(db, sql: "SELECT name, body FROM segments").map {
                    ($0["name"] as String, $0["body"] as Data)
                })
        }
    }

    func putSegment(_ name: String, body: Data) async throws {
        try await pool.write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO segments (name, body) VALUES (?, ?)", arguments: [name, body])
        }
    }

    func dropSegment(_ name: String) async throws -> Bool {
        try await pool.write { db in
            try db.execute(sql: "DELETE FROM segments WHERE name = ?", arguments: [name])
            return db.changesCount > 0
        }
    }
}
