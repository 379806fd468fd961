internal import Foundation
internal import LoyaltyAnalysis
public import LoyaltyCore
internal import NIOCore
internal import PostgresNIO

extension PostgresStorage {
    public var analysis: any AnalysisStore { PostgresAnalysisStore(storage: self) }
}

/// The analysis tables on PostgreSQL (migration v3).
struct PostgresAnalysisStore: AnalysisStore {
    let storage: PostgresStorage

    private func ids(_ query: PostgresQuery) async throws -> [MemberID] {
        try await storage.leased { connection in
            var ids: [MemberID] = []
            for try await id in try await connection.query(query, logger: storage.logger).decode(String.self) {
                ids.append(MemberID(id))
            }
            return ids
        }
    }

    func newestVersion() async throws -> Int64 {
        try await storage.leased { connection in
            try await connection.query(
                """
                SELECT greatest((SELECT coalesce(max(version), 0) FROM entities),
                    (SELECT coalesce(max(version), 0) FROM catalogue))
                """, logger: storage.logger
            ).collect().first?.decode(Int64.self) ?? 0
        }
    }

    func membersChanged(since version: Int64, after: MemberID?, limit: Int) async throws -> [MemberID] {
        try await ids(
            """
            SELECT DISTINCT member_id FROM entities WHERE version > \(version) AND member_id > \(after?.rawValue ?? "")
            ORDER BY member_id LIMIT \(limit)
            """)
    }

    func analysesDue(by time: Timestamp, after: MemberID?, limit: Int) async throws -> [MemberID] {
        try await ids(
            """
            SELECT member_id FROM member_analysis WHERE due_at <= \(time.millisecondsSince1970)
                AND member_id > \(after?.rawValue ?? "") ORDER BY member_id LIMIT \(limit)
            """)
    }

    func analysis(of member: MemberID) async throws -> Data? {
        try await storage.leased { connection in
            try await connection.query(
                "SELECT body FROM member_analysis WHERE member_id = \(member.rawValue)", logger: storage.logger
            ).collect().first?.decode(Data.self)
        }
    }

    func analyses(after: MemberID?, limit: Int) async throws -> [(MemberID, Data)] {
        try await storage.leased { connection in
            var rows: [(MemberID, Data)] = []
            for try await (id, body) in try await connection.query(
                """
                SELECT member_id, body FROM member_analysis WHERE member_id > \(after?.rawValue ?? "")
                ORDER BY member_id LIMIT \(limit)
                """, logger: storage.logger
            ).decode((String, Data).self) {
                rows.append((MemberID(id), body))
            }
            return rows
        }
    }

    /// The advisory lock that serialises the segment job's saves (and so the programme's sums' changes).
    static let saveLock = (space: Int32(0x4C4F_5944), key: Int32(0))

    func save(_ analyses: [AnalysisRow], through version: Int64?) async throws {
        try await storage.transaction { connection in
            let logger = storage.logger
            try await connection.query(
                "SELECT pg_advisory_xact_lock(\(Self.saveLock.space), \(Self.saveLock.key))", logger: logger)
            if !analyses.isEmpty {
                let members = analyses.map(\.member.rawValue)
                var stored: [MemberID: Data] = [:]
                for try await (id, contribution) in try await connection.query(
                    """
                    SELECT member_id, contribution FROM member_analysis
                    WHERE member_id = ANY(\(members)::text[]) AND contribution IS NOT NULL
                    """, logger: logger
                ).decode((String, Data).self) {
                    stored[MemberID(id)] = contribution
                }
                let change = try ProgrammeFigures.change(analyses, stored: stored).rows
                if !change.isEmpty {
                    try await connection.query(
                        """
                        INSERT INTO programme_figures (period, measure, value)
                        SELECT * FROM unnest(\(change.map(\.period))::text[], \(change.map(\.measure))::text[],
                            \(change.map(\.value))::bigint[])
                        ON CONFLICT (period, measure) DO UPDATE SET value = programme_figures.value + excluded.value
                        """, logger: logger)
                }
                let contributions = analyses.map { ByteBuffer(bytes: Array($0.storedContribution)) }
                try await connection.query(
                    """
                    INSERT INTO member_analysis (member_id, due_at, body, contribution)
                    SELECT m, nullif(d, -1), b, c
                    FROM unnest(\(members)::text[], \(analyses.map { $0.due?.millisecondsSince1970 ?? -1 })::bigint[],
                        \(analyses.map { ByteBuffer(bytes: Array($0.body)) })::bytea[], \(contributions)::bytea[])
                        AS t(m, d, b, c)
                    ON CONFLICT (member_id) DO UPDATE
                    SET due_at = excluded.due_at, body = excluded.body, contribution = excluded.contribution
                    """, logger: logger)
            }
            if let version {
                try await connection.query(
                    """
                    INSERT INTO meta (key, value) VALUES ('analysis_version', \(version))
                    ON CONFLICT (key) DO UPDATE SET value = excluded.value
                    """, logger: logger)
            }
        }
    }

    func ledgerEntryBodies(of member: MemberID) async throws -> [Data] {
        try await storage.leased { connection in
            var bodies: [Data] = []
            for try await body in try await connection.query(
                """
                SELECT body FROM entities
                WHERE member_id = \(member.rawValue) AND kind = 'ledgerEntry' AND body IS NOT NULL
                """, logger: storage.logger
            ).decode(Data.self) {
                bodies.append(body)
            }
            return bodies
        }
    }

    func programmeFigures() async throws -> ProgrammeFigures {
        try await storage.leased { connection in
            var figures = ProgrammeFigures()
            for try await (period, measure, value) in try await connection.query(
                "SELECT period, measure, value FROM programme_figures", logger: storage.logger
            ).decode((String, String, Int64).self) {
                figures[period, measure] = value
            }
            return figures
        }
    }

    func lookedThrough() async throws -> Int64 {
        try await storage.leased { connection in
            try await connection.query(
                "SELECT value FROM meta WHERE key = 'analysis_version'", logger: storage.logger
            ).collect().first?.decode(Int64.self) ?? 0
        }
    }

    func segments() async throws -> [String: Data] {
        try await storage.leased { connection in
            var segments: [String: Data] = [:]
            for try await (name, body) in try await connection.query(
                "SELECT name, body FROM segments", logger: storage.logger
            ).decode((String, Data).self) {
                segments[name] = body
            }
            return segments
        }
    }

    func putSegment(_ name: String, body: Data) async throws {
        try await storage.leased { connection in
            try await connection.query(
                """
                INSERT INTO segments (name, body) VALUES (\(name), \(body))
                ON CONFLICT (name) DO UPDATE SET body = excluded.body
                """, logger: storage.logger)
        }
    }

    func dropSegment(_ name: String) async throws -> Bool {
        try await storage.leased { connection in
            try await connection.query(
                "DELETE FROM segments WHERE name = \(name) RETURNING name", logger: storage.logger
            ).collect().count > 0
        }
    }
}
