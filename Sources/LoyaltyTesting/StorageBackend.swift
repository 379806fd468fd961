internal import Foundation
public import Logging
public import LoyaltyServer
internal import Synchronization

/// Where a test server keeps its data: the embedded SQLite store, or a database of its own on the PostgreSQL cluster
/// named by `LOYALTY_TEST_DATABASE_URL` (`scripts/with-postgres.sh` starts one; `.ci/run` always does).
///
/// Tests that hold for both backends take ``all`` as an argument. Without the variable the PostgreSQL cases are left
/// out with a printed reason; under CI (`CI` set) they stay in and fail, so that a missing cluster never passes.
public enum StorageBackend: String, Sendable, CaseIterable, CustomStringConvertible {
    case sqlite
    case postgres

    public var description: String { rawValue }

    /// The backends this run tests.
    public static let all: [StorageBackend] = {
        if clusterURL != nil || ProcessInfo.processInfo.environment["CI"] != nil { return [.sqlite, .postgres] }
        FileHandle.standardError.write(
            Data(
                ("note: LOYALTY_TEST_DATABASE_URL is not set: the PostgreSQL cases of the storage tests are skipped "
                    + "(run the tests under scripts/with-postgres.sh to include them)\n").utf8))
        return [.sqlite]
    }()

    /// Only PostgreSQL, when this run tests it (for tests of what only PostgreSQL does: several instances).
    public static let postgresOnly: [StorageBackend] = all.filter { $0 == .postgres }

    /// The cluster's URL from the environment.
    public static var clusterURL: DatabaseURL? {
        ProcessInfo.processInfo.environment["LOYALTY_TEST_DATABASE_URL"].flatMap { try? DatabaseURL(parsing: $0) }
    }

    /// A new, empty database on the test cluster, its URL.
    public static func freshDatabase() async throws -> DatabaseURL {
        guard let cluster = clusterURL else {
            throw LoyaltyServerTestSetupError(
                "LOYALTY_TEST_DATABASE_URL is not set or not a postgres:// URL: run the tests under "
                    + "scripts/with-postgres.sh (CI does)")
        }
        let admin = adminStorage(cluster)
        let name = "t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        try await admin.createDatabase(named: name)
        var url = cluster
        url.database = name
        return url
    }

    /// A store on a new database of the test cluster, its pool running in the background (idle connections close
    /// after two seconds, so that the many stores of a test run do not exhaust the cluster).
    public static func freshPostgres(
        logger: Logger = Logger(label: "test"), hooks: PostgresStorage.Hooks = PostgresStorage.Hooks()
    ) async throws -> PostgresStorage {
        let storage = PostgresStorage(
            url: try await freshDatabase(), connections: 6, idleTimeout: .seconds(2), logger: logger, hooks: hooks)
        storage.runInBackground()
        try await storage.migrate()
        return storage
    }

    private static let admin = Mutex<PostgresStorage?>(nil)

    private static func adminStorage(_ cluster: DatabaseURL) -> PostgresStorage {
        admin.withLock { kept in
            if let kept { return kept }
            let storage = PostgresStorage(
                url: cluster, connections: 2, idleTimeout: .seconds(2), logger: Logger(label: "test"))
            storage.runInBackground()
            kept = storage
            return storage
        }
    }
}

/// A test could not be set up (no cluster).
public struct LoyaltyServerTestSetupError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
