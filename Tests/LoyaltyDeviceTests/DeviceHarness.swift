import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import LoyaltyCore
import LoyaltyStore
import LoyaltySync
import Testing

@testable import LoyaltyServer

/// A real server (temporary SQLite store, test clock) and device stores in temporary files.
struct DeviceHarness {
    static let adminToken = "admin-token-for-tests"
    let directory: URL
    let settings: ServerSettings
    let service: SyncService
    let clock: TestClock

    static func make(configure: (inout ServerConfiguration) -> Void = { _ in }) async throws -> DeviceHarness {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "loyalty-device-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var configuration = ServerConfiguration(adminToken: adminToken)
        configure(&configuration)
        let settings = try ServerSettings(
            port: 0, dataDirectory: directory.appendingPathComponent("server"), testClock: true,
            configuration: configuration, schedulesJobs: false)
        try FileManager.default.createDirectory(at: settings.dataDirectory, withIntermediateDirectories: true)
        let clock = TestClock()
        let service = SyncService(
            storage: try SQLiteStorage(path: settings.dataDirectory.appendingPathComponent("loyalty.sqlite").path),
            clock: clock, configuration: configuration,
            tokens: TokenAuthority(key: try TokenAuthority.loadKey(in: settings.dataDirectory)),
            logger: Logger(label: "test"))
        try await service.prepare(program: settings.program, catalogue: settings.catalogue)
        return DeviceHarness(directory: directory, settings: settings, service: service, clock: clock)
    }

    /// Runs `body` with the server listening on loopback.
    func live(_ body: @escaping @Sendable (URL) async throws -> Void) async throws {
        let app = try LoyaltyServerApp.application(service: service, settings: settings, logger: Logger(label: "test"))
        try await app.test(.live) { client in
            try await body(URL(string: "http://127.0.0.1:\(try #require(client.port))")!)
        }
    }

    /// A new device: its own store file and an engine talking HTTP to `server`, on the server's (test) clock.
    func device(
        _ name: String, server: URL, transport: (any SyncTransport)? = nil, policy: SyncPolicy = SyncPolicy(retries: 0),
        skew: TimeSpan = .zero
    ) throws -> SyncEngine {
        let store = try DeviceStore(
            path: directory.appendingPathComponent("\(name)-\(UUID().uuidString.prefix(4)).sqlite").path)
        let clock = self.clock
        return SyncEngine(
            store: store, transport: transport ?? HTTPSyncTransport(serverURL: server), policy: policy,
            wallClock: { clock.now().adding(skew) }, jitter: { 1 }, sleep: { _ in })
    }

    /// Enrols a member on a first device and signs a second one in.
    func pair(
        server: URL, email: String = "anna-\(UUID().uuidString.prefix(6))@example.de"
    ) async throws -> (SyncEngine, SyncEngine) {
        let phone = try device("phone", server: server)
        let tablet = try device("tablet", server: server)
        let enrolled = try await phone.enroll(
            Registration(name: "Anna Schmidt", email: email), password: "correct horse", deviceName: "phone",
            serverURL: server.absoluteString)
        #expect(enrolled.outcome == .synced)
        let signedIn = try await tablet.login(
            email: email, password: "correct horse", deviceName: "tablet", serverURL: server.absoluteString)
        #expect(signedIn.outcome == .synced)
        return (phone, tablet)
    }

    /// Credits points to the member (purchase, then the return window passes and the unlock job runs).
    func give(_ points: Int, to engine: SyncEngine) async throws {
        let member = try #require(try engine.store.identity()?.memberID)
        _ = try await service.recordPurchase(
            amount: "\(points).00", card: nil, member: member.rawValue, receiptCode: nil, transaction: nil)
        try clock.advance(by: .days(15))
        _ = try await service.run(.unlock)
    }

    func serverState(of engine: SyncEngine) async throws -> MemberState {
        try await service.overview(of: try #require(try engine.store.identity()?.memberID)).state
    }
}

extension SyncEngine {
    /// Records a mutation at the device's (test) clock.
    @discardableResult
    nonisolated func act(_ mutation: Mutation, at time: Timestamp) throws -> MutationEnvelope {
        try store.record(mutation, at: time).0
    }
}
