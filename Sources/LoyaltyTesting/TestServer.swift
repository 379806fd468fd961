public import Foundation
public import Hummingbird
internal import HummingbirdTesting
public import Logging
public import LoyaltyCore
public import LoyaltyServer

/// A real `loyalty-server` for tests: its SQLite store and signing key in a temporary directory, a test clock,
/// an operator token, and the HTTP application on demand (in-process, or listening on loopback).
public struct TestServer: Sendable {
    /// The operator token of every test server.
    public static let adminToken = "admin-token-for-tests-0123456789ab"
    /// The temporary directory (the store is in `server/`).
    public let directory: URL
    public let settings: ServerSettings
    public let service: SyncService
    public let clock: TestClock
    /// Where the server logs (the service and the HTTP layer).
    public let logger: Logger

    /// Starts a server. `configure` adjusts limits and policies, `program` the programme's rules; `backend` says where
    /// it keeps its data (a database of its own on the test cluster for PostgreSQL); `storage` may wrap the real
    /// store (to slow it).
    public static func make(
        _ backend: StorageBackend = .sqlite,
        configure: (inout ServerConfiguration) -> Void = { _ in },
        program adjust: (inout Program) -> Void = { _ in },
        storage wrap: (any ServerStorage) -> any ServerStorage = { $0 },
        logger: Logger = Logger(label: "test")
    ) async throws -> TestServer {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "loyalty-test-\(UUID().uuidString)")
        var configuration = ServerConfiguration(adminToken: adminToken)
        // Tests enrol hundreds of members: a cheaper hash than production's (2^17) keeps them quick. A test of the
        // cost itself sets its own.
        configuration.passwordHashing = ScryptParameters(logN: 10)
        configure(&configuration)
        var settings = try ServerSettings(
            port: 0, dataDirectory: directory.appendingPathComponent("server"), testClock: true,
            configuration: configuration, schedulesJobs: false)
        adjust(&settings.program)
        try settings.program.validate()
        try FileManager.default.createDirectory(at: settings.dataDirectory, withIntermediateDirectories: true)
        let clock = TestClock()
        let base: any ServerStorage
        let tokens: TokenAuthority
        switch backend {
        case .sqlite:
            base = try SQLiteStorage(path: settings.dataDirectory.appendingPathComponent("loyalty.sqlite").path)
            tokens = TokenAuthority(key: try TokenAuthority.loadKey(in: settings.dataDirectory))
        case .postgres:
            let storage = try await StorageBackend.freshPostgres(logger: logger)
            base = storage
            tokens = try await storage.tokenAuthority()
            settings.database = storage.url
        }
        let storage = wrap(base)
        let service = SyncService(
            storage: storage, clock: clock, configuration: configuration, tokens: tokens, logger: logger)
        try await service.prepare(program: settings.program, catalogue: settings.catalogue)
        return TestServer(directory: directory, settings: settings, service: service, clock: clock, logger: logger)
    }

    /// The same test server with another service (the data moved to another store, say).
    public func with(service: SyncService, database: DatabaseURL?) -> TestServer {
        var settings = self.settings
        settings.database = database
        return TestServer(directory: directory, settings: settings, service: service, clock: clock, logger: logger)
    }

    /// The HTTP application; `onListening` gets the port once it listens.
    public func application(
        onListening: @escaping @Sendable (Int) async -> Void = { _ in }
    ) throws -> some ApplicationProtocol {
        try LoyaltyServerApp.application(
            service: service, settings: settings, logger: logger, onListening: onListening)
    }

    /// Runs `body` with the server listening on loopback.
    public func live(_ body: @escaping @Sendable (URL) async throws -> Void) async throws {
        try await application().test(.live) { client in
            guard let port = client.port else {
                throw LoyaltyError("no_port", "the test server did not report the port it listens on")
            }
            try await body(URL(string: "http://127.0.0.1:\(port)")!)
        }
    }

    /// Credits `points` to a member: a purchase, then the return window passes and the unlock job runs.
    public func give(_ points: Int, to member: MemberID) async throws {
        _ = try await service.recordPurchase(
            amount: "\(points).00", card: nil, member: member.rawValue, receiptCode: nil, transaction: nil)
        try clock.advance(by: .days(15))
        _ = try await service.run(.unlock)
    }

    /// The member's state as the server holds it.
    public func state(of member: MemberID) async throws -> MemberState {
        try await service.overview(of: member).state
    }
}

/// A test server that could not be reached.
