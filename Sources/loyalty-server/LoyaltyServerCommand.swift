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
            directory, prints `listening on http://HOST:PORT` once it accepts connections, and shuts down gracefully
            on SIGTERM or SIGINT (requests in flight finish; nothing is half-written).
            """,
        subcommands: [Serve.self],
        defaultSubcommand: Serve.self)
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the server.",
        discussion: """
            Examples:
              loyalty-server serve --data ./server-data --admin-token s3cret
              LOYALTY_ADMIN_TOKEN=s3cret loyalty-server serve --port 0 --test-clock
            """)

    @Option(help: "Address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "Port to listen on; 0 picks a free port (the chosen one is printed).")
    var port = 8080

    @Option(help: "Directory for the database and signing key (created if missing; one server at a time uses it).")
    var data = "./loyalty-server-data"

    @Option(help: "Operator token for the admin API (or set LOYALTY_ADMIN_TOKEN). Without one the admin API is off.")
    var adminToken: String?

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
        if let token = adminToken ?? ProcessInfo.processInfo.environment["LOYALTY_ADMIN_TOKEN"], token.count < 8 {
            throw ValidationError("Please use an admin token of at least 8 characters.")
        }
    }

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "loyalty-server")
        var configuration = ServerConfiguration(
            adminToken: adminToken ?? ProcessInfo.processInfo.environment["LOYALTY_ADMIN_TOKEN"])
        configuration.jobInterval = TimeSpan(parsing: jobInterval) ?? .minutes(5)
        var settings = try ServerSettings(
            host: host, port: port, dataDirectory: URL(fileURLWithPath: data), testClock: testClock,
            configuration: configuration)
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
        try await LoyaltyServerApp.serve(settings: settings, logger: logger) { port in
            FileHandle.standardOutput.write(Data("listening on http://\(host):\(port)\n".utf8))
        }
    }
}
