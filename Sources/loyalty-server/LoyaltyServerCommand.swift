import ArgumentParser
import Foundation
import Logging
import LoyaltyCore
import LoyaltyServer

@main
struct LoyaltyServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loyalty-server",
        abstract: "The Loyalty sync server: devices push and pull, the operator and tills use the admin API.",
        discussion: """
            Start it with `loyalty-server serve`. It keeps its SQLite database and token signing key in the data
            directory, or everything in a PostgreSQL database (--database or LOYALTY_DATABASE_URL) that several
            instances share; it prints `listening on http://HOST:PORT` once it accepts connections, and shuts down
            gracefully on SIGTERM or SIGINT (requests in flight finish; nothing is half-written).
            """,
        version: loyaltyVersion,
        subcommands: [Serve.self, Migrate.self, MigrateStore.self, RotateKey.self, Generate.self],
        defaultSubcommand: Serve.self)
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the server.",
        discussion: """
            The operator token (32 characters or more) is best given in LOYALTY_ADMIN_TOKEN or a file \
            (--admin-token-file): an argument is visible to other users in the process list.

            Without --database the SQLite store in --data is used (one instance). With a PostgreSQL URL, any number \
            of instances serve the same programme; the schema is migrated at start (under a lock) and the signing \
            keys live in the database. A password in the URL is never printed or logged; better still, give the \
            URL in LOYALTY_DATABASE_URL, which the process list does not show.

            Examples:
              LOYALTY_ADMIN_TOKEN="$(openssl rand -hex 24)" loyalty-server serve --data ./server-data
              loyalty-server serve --port 0 --test-clock --admin-token-file ./operator.token
              LOYALTY_DATABASE_URL=postgres://loyalty@db.internal:5432/loyalty loyalty-server serve --port 8081
            """)

    @OptionGroup var database: DatabaseOptions

    @Option(help: "Connections this instance opens to PostgreSQL at most (with --database).")
    var databaseConnections = 20

    @Option(help: "This instance's name on its metrics (instance_name; default: HOSTNAME-PID).")
    var instanceName: String?

    @Option(help: "Address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "Port to listen on; 0 picks a free port (the chosen one is printed).")
    var port = 8080

    @Option(help: "Directory for the database and signing key (created if missing; one server at a time uses it).")
    var data = "./loyalty-server-data"

    @Option(
        help: """
            Operator token for the admin API, 32 characters or more (better: LOYALTY_ADMIN_TOKEN or \
            --admin-token-file). Without one the admin API is off.
            """)
    var adminToken: String?

    @Option(help: "A file holding the operator token (its first line).")
    var adminTokenFile: String?

    @Option(help: "Close a connection that sends nothing for this long (headers or body unfinished, or idle).")
    var idleTimeout = "30s"

    @Option(help: "Most connections open at once; more wait to be accepted.")
    var maxConnections = 1_000

    @Option(help: "scrypt cost of new password hashes as log2 N (17: 128 MiB and a few hundred ms per hash).")
    var passwordCost = 17

    @Option(help: "Threads that hash passwords (each hash holds 128 MiB at cost 17); the rest answer syncs.")
    var passwordThreads = 1

    @Option(help: "Sign-in, enrolment and refresh requests one client address may make per minute.")
    var signInLimit = 30

    @Flag(help: "Serve /metrics without the operator token (for a scraper on a private network).")
    var publicMetrics = false

    @Option(help: "Serve HTTPS with this certificate chain (PEM), without a proxy in front; needs --tls-key.")
    var tlsCert: String?

    @Option(help: "The private key (PEM) of --tls-cert.")
    var tlsKey: String?

    @Flag(help: "Let the operator set and advance the server clock through the admin API (for tests and demos).")
    var testClock = false

    @Option(help: "A programme JSON file for a new store (default: the built-in Bonus Plus programme).")
    var program: String?

    @Option(help: "A catalogue JSON file for a new store (default: the built-in catalogue).")
    var catalogue: String?

    @Option(help: "How often the unlock, expiry and compaction jobs run, e.g. 5m, 1h.")
    var jobInterval = "5m"

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel = "info"

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("Please give a port from 0 to 65535.") }
        guard let interval = TimeSpan(parsing: jobInterval), interval > .zero else {
            throw ValidationError("Please give --job-interval as a duration such as 5m or 1h.")
        }
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError(
                "Please give --log-level as one of trace, debug, info, notice, warning, error, critical.")
        }
        guard let idle = TimeSpan(parsing: idleTimeout), idle >= .seconds(1), idle <= .hours(1) else {
            throw ValidationError("Please give --idle-timeout as a duration from 1s to 1h, such as 30s.")
        }
        guard (1...1_000_000).contains(maxConnections) else {
            throw ValidationError("Please give --max-connections from 1 to 1000000.")
        }
        guard (10...20).contains(passwordCost) else {
            throw ValidationError("Please give --password-cost from 10 to 20 (log2 of scrypt's N; 17 is the default).")
        }
        guard (1...64).contains(passwordThreads) else {
            throw ValidationError("Please give --password-threads from 1 to 64.")
        }
        guard (1...1_000).contains(databaseConnections) else {
            throw ValidationError("Please give --database-connections from 1 to 1000.")
        }
        _ = try database.url()
        if let instanceName,
            !(1...64).contains(instanceName.count)
                || !instanceName.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._-:".contains($0)) })
        {
            throw ValidationError("Please give --instance-name as 1 to 64 letters, digits, '.', '_', '-' or ':'.")
        }
        guard (1...100_000).contains(signInLimit) else {
            throw ValidationError("Please give --sign-in-limit from 1 to 100000.")
        }
        if (tlsCert == nil) != (tlsKey == nil) {
            throw ValidationError("Please give both --tls-cert and --tls-key, or neither.")
        }
        if adminToken != nil && adminTokenFile != nil {
            throw ValidationError("Please give the operator token once: --admin-token or --admin-token-file.")
        }
        if let token = try operatorToken(), token.count < 32 {
            throw ValidationError(
                "Please use an operator token of at least 32 characters (this one has \(token.count)); for example "
                    + "the output of 'openssl rand -hex 24'.")
        }
    }

    /// The operator token from the option, the file or the environment, in that order.
    func operatorToken() throws -> String? {
        if let adminToken { return adminToken }
        if let adminTokenFile {
            guard let text = try? String(contentsOfFile: adminTokenFile, encoding: .utf8) else {
                throw ValidationError("Please check --admin-token-file: \(adminTokenFile) cannot be read.")
            }
            return text.split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
        }
        return ProcessInfo.processInfo.environment["LOYALTY_ADMIN_TOKEN"]
    }

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        // Every line written while a request is answered carries its id (`request`), the store's lines too.
        LoggingSystem.bootstrap(
            { label, provider in
                var handler = StreamLogHandler.standardError(label: label, metadataProvider: provider)
                handler.logLevel = level
                return handler
            }, metadataProvider: RequestID.metadataProvider)
        let logger = Logger(label: "loyalty-server")
        var configuration = ServerConfiguration(adminToken: try operatorToken())
        configuration.jobInterval = TimeSpan(parsing: jobInterval) ?? .minutes(5)
        configuration.idleTimeout = TimeSpan(parsing: idleTimeout) ?? .seconds(30)
        configuration.maximumConnections = maxConnections
        configuration.passwordHashing = ScryptParameters(logN: passwordCost)
        configuration.passwordThreads = passwordThreads
        configuration.signInLimits.perAddress = signInLimit
        configuration.publicMetrics = publicMetrics
        var settings = try ServerSettings(
            host: host, port: port, dataDirectory: URL(fileURLWithPath: data), testClock: testClock,
            configuration: configuration)
        if let tlsCert, let tlsKey { settings.tls = (tlsCert, tlsKey) }
        settings.database = try database.url()
        settings.databaseConnections = databaseConnections
        if let instanceName { settings.instanceName = instanceName }
        do {
            if let program {
                settings.program = try Program.decode(json: try Data(contentsOf: URL(fileURLWithPath: program)))
            }
            if let catalogue {
                settings.catalogue = try Catalogue.decode(json: try Data(contentsOf: URL(fileURLWithPath: catalogue)))
            }
        } catch {
            throw ValidationError("Please check the programme or catalogue file: \(error)")
        }
        let host = self.host
        let scheme = tlsCert == nil ? "http" : "https"
        try await LoyaltyServerApp.serve(settings: settings, logger: logger) { port in
            FileHandle.standardOutput.write(Data("listening on \(scheme)://\(host):\(port)\n".utf8))
        }
    }
}

/// Where the PostgreSQL database is, when there is one.
struct DatabaseOptions: ParsableArguments {
    @Option(
        help: """
            A PostgreSQL database, postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=disable|require] \
            (default: LOYALTY_DATABASE_URL; without either, the SQLite store in --data).
            """)
    var database: String?

    /// The URL from the option or the environment, parsed; nil for the SQLite store.
    func url() throws -> DatabaseURL? {
        guard let text = database ?? ProcessInfo.processInfo.environment["LOYALTY_DATABASE_URL"], !text.isEmpty else {
            return nil
        }
        do {
            return try DatabaseURL(parsing: text)
        } catch let error as LoyaltyError {
            throw ValidationError("Please check the database URL: \(error.message)")
        }
    }
}

struct Generate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fill an empty store with a deterministic, plausible history, to analyse, test and measure.",
        discussion: """
            Members enrol over the period and buy at intervals and baskets of their own (more in December); some \
            lapse and some of those come back; there are returns, redemptions at the till, a satisfaction survey, \
            the profiling consent given by most and withdrawn by a few (docs/analysis.md, "Data to analyse"). \
            Everything goes through the sync service on a clock moved day by day, ending at --end (default now); \
            the same seed and end give the same programme. It prints its progress. The store must have no members \
            yet.

            Examples:
              loyalty-server generate --members 10000 --months 24 --seed 7 --data ./generated
              loyalty-server generate --members 1000 --database postgres://loyalty@127.0.0.1/loyalty
            """)

    @Option(help: "How many members (1 to 10,000,000).") var members = 1_000
    @Option(help: "How many months of history (1 to 120; a month is 30 days).") var months = 24
    @Option(help: "The seed: the same seed (and end) gives the same programme.") var seed: UInt64 = 1
    @Option(help: "The history's last day, e.g. 2026-12-01T10:00:00Z (default: now).") var end: String?
    @Option(help: "The data directory of the SQLite store (without --database).") var data = "./loyalty-server-data"
    @OptionGroup var database: DatabaseOptions

    func validate() throws {
        guard (1...10_000_000).contains(members) else {
            throw ValidationError("Please give --members from 1 to 10000000.")
        }
        guard (1...120).contains(months) else { throw ValidationError("Please give --months from 1 to 120.") }
        if let end, Timestamp.parse(end) == nil {
            throw ValidationError("Please give --end as a date and time, e.g. 2026-12-01T10:00:00Z.")
        }
    }

    func run() async throws {
        var quiet = Logger(label: "loyalty-server")
        quiet.logLevel = .warning
        let logger = quiet
        let generator = DataGenerator(
            members: members, months: months, seed: seed, end: end.flatMap(Timestamp.parse) ?? Timestamp(Date()))
        let progress: @Sendable (String) -> Void = { FileHandle.standardError.write(Data("\($0)\n".utf8)) }
        let report: DataGenerator.Report
        if let url = try database.url() {
            let storage = PostgresStorage(url: url, connections: 4, logger: logger)
            report = try await storage.whileRunning {
                try await storage.applyMigrations()
                let service = try await DataGenerator.service(
                    on: storage, tokens: try await storage.tokenAuthority(), seed: seed, logger: logger)
                return try await generator.run(on: service, progress: progress)
            }
        } else {
            let (storage, tokens) = try LoyaltyServerApp.embeddedStore(in: URL(fileURLWithPath: data))
            let service = try await DataGenerator.service(on: storage, tokens: tokens, seed: seed, logger: logger)
            report = try await generator.run(on: service, progress: progress)
        }
        print("generated \(report)")
    }
}

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Bring a PostgreSQL database's schema up to date, and nothing else (a deploy step).",
        discussion: """
            Runs the schema's migrations that the database has not had yet, in order, under an advisory lock (an \
            instance starting at the same time waits, then finds them done), and prints each one applied. \
            `serve` does the same at start; run this before rolling out new instances.

            Example:
              LOYALTY_DATABASE_URL=postgres://loyalty@db.internal/loyalty loyalty-server migrate
            """)

    @OptionGroup var database: DatabaseOptions

    func run() async throws {
        guard let url = try database.url() else {
            throw ValidationError("Please give --database or LOYALTY_DATABASE_URL (SQLite migrates at serve).")
        }
        var logger = Logger(label: "loyalty-server")
        logger.logLevel = .warning
        let storage = PostgresStorage(url: url, connections: 1, logger: logger)
        let applied: [String]
        do {
            applied = try await storage.whileRunning { try await storage.applyMigrations() }
        } catch {
            throw ValidationError("\(url) was not migrated: \(PostgresStorage.describe(error))")
        }
        print(
            applied.isEmpty ? "\(url): the schema is up to date" : "\(url): applied \(applied.joined(separator: ", "))")
    }
}

struct MigrateStore: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate-store",
        abstract: "Copy a pilot's SQLite data directory into an empty PostgreSQL database, devices and all.",
        discussion: """
            Stop the server first (the directory is locked while it runs). Everything is copied in one transaction: \
            members, devices with their refresh-token hashes and sequence numbers, stored mutation results, the \
            feed with its versions and horizon, cards, receipts, till transactions and the signing keys. Devices \
            then sync with servers on the database without a reset and without signing in again. The target must be \
            empty; the counts of every table are compared at the end. The SQLite directory is left as it was.

            Example:
              loyalty-server migrate-store --from ./loyalty-server-data --to postgres://loyalty@db.internal/loyalty
            """)

    @Option(help: "The SQLite data directory (the server's --data).")
    var from: String

    @Option(help: "The empty PostgreSQL database, postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE.")
    var to: String

    func run() async throws {
        let url: DatabaseURL
        do { url = try DatabaseURL(parsing: to) } catch let error as LoyaltyError {
            throw ValidationError("Please check --to: \(error.message)")
        }
        var logger = Logger(label: "loyalty-server")
        logger.logLevel = .warning
        let storage = PostgresStorage(url: url, connections: 2, logger: logger)
        let report: StoreMove.Report
        do {
            report = try await storage.whileRunning {
                try await StoreMove.copy(from: URL(fileURLWithPath: from), to: storage) { line in print(line) }
            }
        } catch {
            throw ValidationError("Nothing was moved: \(PostgresStorage.describe(error))")
        }
        for table in report.tables {
            print("\(table.name): \(table.source) in \(from), \(table.target) in \(url.database)")
        }
        guard report.verified else {
            throw ValidationError("The counts differ (above): do not point devices at the database; ask for help.")
        }
        print("moved: start loyalty-server serve with the database; devices go on where they were")
    }
}

struct RotateKey: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rotate-key",
        abstract: "Make a new token signing key; the current one stays valid for the tokens it signed.",
        discussion: """
            Run it with the server stopped, then start the server. It signs new access tokens with the new key and \
            accepts those of the previous key until they expire (15 minutes); a device refreshes as usual. Refresh \
            tokens are not signed and are not affected. Rotate again later to drop the previous key for good.

            With --database (or LOYALTY_DATABASE_URL) the keys in that database are rotated: restart every instance \
            afterwards, since each reads the keys when it starts.
            """)

    @Option(help: "The server's data directory (the SQLite store).")
    var data = "./loyalty-server-data"

    @OptionGroup var database: DatabaseOptions

    func run() async throws {
        if let url = try database.url() {
            var logger = Logger(label: "loyalty-server")
            logger.logLevel = .warning
            let storage = PostgresStorage(url: url, connections: 1, logger: logger)
            do {
                try await storage.whileRunning {
                    try await storage.migrate()
                    _ = try await storage.tokenAuthority()
                    try await storage.rotateSigningKey()
                }
            } catch {
                throw ValidationError("The key was not rotated: \(PostgresStorage.describe(error))")
            }
        } else {
            let directory = URL(fileURLWithPath: data)
            do {
                // Holding the store's lock proves no server has the directory open.
                let storage = try SQLiteStorage(path: directory.appendingPathComponent("loyalty.sqlite").path)
                try TokenAuthority.rotateKey(in: directory)
                _ = storage
            } catch {
                throw ValidationError("The key was not rotated: \(error)")
            }
        }
        print("rotated: new tokens are signed with the new key; the previous one verifies its tokens until they expire")
    }
}
