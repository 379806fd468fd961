internal import Foundation
public import Logging
public import LoyaltyCore
internal import NIOCore
internal import NIOSSL
public import PostgresNIO
internal import Synchronization

/// The store for several `loyalty-server` instances on one PostgreSQL database. Nothing that decides an answer is
/// kept in this process's memory: every unit of work reads what it needs inside its transaction, so that another
/// instance's writes are always seen.
///
/// - A unit of work on a member takes a transaction-scoped advisory lock keyed by the member, so that two units for
///   one member, on any instances, never interleave; different members run in parallel.
/// - Every change takes a feed version from one sequence. Versions are not committed in their order, so a pull first
///   waits (a shared advisory lock) until no unit of work of its member and no catalogue change is in flight: every
///   version it can then see below the newest one it sees is committed (docs/architecture.md gives the argument).
/// - Leasing a connection waits at most ``leaseTimeout``; an exhausted pool or a database that cannot be reached
///   answers with a ``LoyaltyError`` `unavailable` (HTTP 503 with `Retry-After`), never a hang.
public final class PostgresStorage: ServerStorage {
    /// The connection pool: a `Service` to run in the server's service group (``whileRunning(_:)`` for tools).
    public let client: PostgresClient
    /// Where the database is (its description hides the password).
    public let url: DatabaseURL
    let logger: Logger
    /// How long a request waits for a connection of the pool before it is answered 503.
    public let leaseTimeout: Duration
    /// What tests change: a pause before a member's unit of work commits, and the feed without its lock (to show that
    /// the test of the feed fails against a naive sequence).
    let hooks: Hooks
    private let statistics = Mutex(CommitStatistics(commits: 0, units: 0))
    /// Members' states kept between units of work, each used only when the database's newest versions of the
    /// member's entities and of the catalogue, read under the member's lock, are exactly those it reflects.
    let states = Mutex(StateCache())

    /// What a test may change of this store's behaviour.
    public struct Hooks: Sendable {
        /// Awaited inside a member's unit of work after its writes, before it commits.
        public var beforeMemberCommit: (@Sendable (MemberID) async -> Void)?
        /// Pull without waiting for the units of work in flight (wrong: shows what the wait prevents).
        public var naiveFeed = false

        /// No hooks.
        public init() {}
    }

    /// A store on the database at `url`, with at most `connections` connections (per instance).
    public init(
        url: DatabaseURL, connections: Int = 20, leaseTimeout: Duration = .seconds(5),
        idleTimeout: Duration = .seconds(60), logger: Logger, hooks: Hooks = Hooks()
    ) {
        self.url = url
        self.logger = logger
        self.leaseTimeout = leaseTimeout
        self.hooks = hooks
        let tls: PostgresClient.Configuration.TLS =
            switch url.tls {
            case .disable: .disable
            case .prefer: .prefer(.makeClientConfiguration())
            case .require: .require(.makeClientConfiguration())
            }
        var configuration = PostgresClient.Configuration(
            host: url.host, port: url.port, username: url.user, password: url.password, database: url.database,
            tls: tls)
        configuration.options.maximumConnections = max(1, connections)
        configuration.options.connectionIdleTimeout = idleTimeout
        configuration.options.connectTimeout = .seconds(5)
        client = PostgresClient(configuration: configuration, backgroundLogger: logger)
    }

    /// Runs the connection pool while `body` runs (for commands that use the store without serving).
    public func whileRunning<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask {
                await self.client.run()
                return nil
            }
            defer { group.cancelAll() }
            return try await body()
        }
    }

    /// Runs the connection pool until the process ends (for tests, which have no service group).
    public func runInBackground() {
        let client = self.client
        Task.detached { await client.run() }
    }

    public var commitStatistics: CommitStatistics { statistics.withLock { $0 } }

    func counted(units: Int) {
        statistics.withLock {
            $0.commits += 1
            $0.units += units
        }
    }

    // MARK: Connections

    /// Runs `body` in a transaction on a leased connection.
    @discardableResult
    func transaction<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T
    {
        try await leased { connection in
            try await connection.query("BEGIN", logger: self.logger)
            do {
                let value = try await body(connection)
                try await connection.query("COMMIT", logger: self.logger)
                return value
            } catch {
                // A failed ROLLBACK leaves the connection to the pool, which closes a broken one.
                _ = try? await connection.query("ROLLBACK", logger: self.logger)
                throw error
            }
        }
    }

    /// Runs `body` on a leased connection; waiting longer than ``leaseTimeout`` for one, or a database that cannot be
    /// reached, is a ``LoyaltyError`` `unavailable`.
    @discardableResult
    func leased<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        let leasedOne = LeaseFlag()
        let timeout = leaseTimeout
        do {
            return try await withThrowingTaskGroup(of: T?.self) { group in
                group.addTask {
                    try await self.client.withConnection { connection in
                        leasedOne.value.store(true, ordering: .sequentiallyConsistent)
                        return try await body(connection)
                    }
                }
                group.addTask {
                    try await Task.sleep(for: timeout)
                    guard leasedOne.value.load(ordering: .sequentiallyConsistent) else {
                        throw LoyaltyError(
                            .unavailable,
                            "no database connection within \(timeout): the database is down or refuses the connection "
                                + "(check the URL's host, port, user, password and database), or every connection of "
                                + "the pool is busy")
                    }
                    // Leased in time: the work may take as long as it takes.
                    try await Task.sleep(for: .seconds(86_400 * 365))
                    return nil
                }
                defer { group.cancelAll() }
                while let next = try await group.next() {
                    if let value = next { return value }
                }
                throw CancellationError()
            }
        } catch {
            throw Self.translate(error)
        }
    }

    /// A database error as this package's: a connection that failed or closed is `unavailable` (503, retried by
    /// devices), a unique violation is `duplicate`; the original is kept as the cause (it is logged by type only).
    static func translate(_ error: any Error) -> any Error {
        if error is LoyaltyError || error is CancellationError { return error }
        if let error = error as? PSQLError {
            switch error.code {
            case .server:
                let state = error.serverInfo?[.sqlState] ?? ""
                if state == "23505" {
                    return LoyaltyError(.duplicate, "a unique value exists already", cause: error)
                }
                // Class 08 (connection), 57P (operator intervention: shutdown, cannot connect now), 53 (resources).
                if state.hasPrefix("08") || state.hasPrefix("57P") || state.hasPrefix("53") {
                    return LoyaltyError(.unavailable, "the database is not available (\(state))", cause: error)
                }
                return error
            case .connectionError, .serverClosedConnection, .clientClosedConnection, .uncleanShutdown, .poolClosed,
                .sslUnsupported, .failedToAddSSLHandler:
                return LoyaltyError(.unavailable, "the database is not available", cause: error)
            default: return error
            }
        }
        if error is IOError || error is ChannelError {
            return LoyaltyError(.unavailable, "the database cannot be reached", cause: error)
        }
        return error
    }

    /// What an operator may read of a database error: the server's SQL state and message (PostgreSQL's messages name
    /// objects, not the values of a row), or the kind of connection failure; never the query's values.
    public static func describe(_ error: any Error) -> String {
        let underlying = (error as? LoyaltyError)?.cause ?? error
        guard let error = underlying as? PSQLError else {
            return (error as? LoyaltyError)?.message ?? String(describing: underlying)
        }
        if let info = error.serverInfo {
            return "PostgreSQL \(info[.sqlState] ?? "?"): \(info[.message] ?? "no message")"
        }
        return "PostgreSQL connection: \(error.code)" + (error.underlying.map { " (\($0))" } ?? "")
    }

    /// The SQL state of a database error, if it is one the server answered.
    static func sqlState(_ error: any Error) -> String? {
        let underlying = (error as? LoyaltyError)?.cause ?? error
        return (underlying as? PSQLError)?.serverInfo?[.sqlState]
    }
}

/// Whether a connection was leased (shared by the lease and its timer).
private final class LeaseFlag: Sendable {
    let value = Atomic<Bool>(false)
}

extension LoyaltyError.Code {
    /// The store cannot be reached now (a database restarting, a pool exhausted): try again shortly.
    public static let unavailable = LoyaltyError.Code(rawValue: "unavailable")
}
