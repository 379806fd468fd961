public import Foundation
public import LoyaltyServer

#if canImport(Glibc)
internal import Glibc
#endif

/// A PostgreSQL cluster of a test's own (for what a test does to the database server itself: stopping and starting
/// it), from the binaries in `LOYALTY_PG_BIN` (set by scripts/with-postgres.sh). Run as the `postgres` user when the
/// tests run as root (initdb refuses root). `stop()` before the test ends; the directory is removed then.
public final class PostgresCluster: Sendable {
    public let directory: URL
    public let port: Int
    private let bin: URL

    /// Makes and starts a cluster on a free port.
    public init() throws {
        guard let bin = ProcessInfo.processInfo.environment["LOYALTY_PG_BIN"] else {
            throw LoyaltyServerTestSetupError("LOYALTY_PG_BIN is not set: run the tests under scripts/with-postgres.sh")
        }
        self.bin = URL(fileURLWithPath: bin)
        directory = URL(fileURLWithPath: "/tmp/loyalty-test-pg-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        port = try LoopbackSocket.freePort()
        if getuid() == 0 { try Self.run(URL(fileURLWithPath: "/bin/chown"), ["postgres", directory.path]) }
        try command("initdb", ["-D", directory.path + "/data", "-U", "loyalty", "--auth=trust", "-E", "UTF8"])
        try start()
    }

    /// The URL of its `postgres` database.
    public var url: DatabaseURL {
        get throws { try DatabaseURL(parsing: "postgres://loyalty@127.0.0.1:\(port)/postgres?sslmode=disable") }
    }

    public func start() throws {
        try command(
            "pg_ctl",
            [
                "-D", directory.path + "/data", "-l", directory.path + "/server.log", "-w", "-o",
                "-p \(port) -k \(directory.path) -c listen_addresses=127.0.0.1", "start",
            ])
    }

    /// Stops the server (fast: open transactions are rolled back, connections closed).
    public func stop() throws { try command("pg_ctl", ["-D", directory.path + "/data", "-m", "fast", "-w", "stop"]) }

    /// Stops it if it runs, and removes its directory.
    public func remove() {
        try? stop()
        try? FileManager.default.removeItem(at: directory)
    }

    private func command(_ name: String, _ arguments: [String]) throws {
        let tool = bin.appendingPathComponent(name)
        if getuid() == 0 {
            try Self.run(URL(fileURLWithPath: "/usr/sbin/runuser"), ["-u", "postgres", "--", tool.path] + arguments)
        } else {
            try Self.run(tool, arguments)
        }
    }

    /// Runs a tool to its end (``Spawn``: `Process` never returned for `pg_ctl start`).
    private static func run(_ executable: URL, _ arguments: [String]) throws {
        let exited = try Spawn.run(executable.path, arguments)
        guard exited == 0 else {
            throw LoyaltyServerTestSetupError(
                "\(executable.lastPathComponent) \(arguments.joined(separator: " ")) exited \(exited)")
        }
    }
}
