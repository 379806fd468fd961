import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import LoyaltyCore
import LoyaltyStore
import LoyaltySync
import LoyaltyTesting
import Testing

@testable import LoyaltyServer

/// A real server (temporary SQLite store, test clock) and device stores in temporary files.
typealias DeviceHarness = TestServer

extension TestServer {
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

    /// Credits points to the member of a device.
    func give(_ points: Int, to engine: SyncEngine) async throws {
        try await give(points, to: try #require(try engine.store.identity()?.memberID))
    }

    /// Syncs the devices in rounds until a round brings nothing new (a sync can change what the others must pull,
    /// such as a device's new allowance); returns every report.
    @discardableResult
    func settle(_ devices: [SyncEngine]) async -> [SyncReport] {
        var reports: [SyncReport] = []
        for _ in 0..<4 {
            var round: [SyncReport] = []
            for device in devices { round.append(await device.sync()) }
            reports += round
            if round.allSatisfy({ $0.pulled == 0 && $0.pushed == 0 }) { break }
        }
        return reports
    }

    func serverState(of engine: SyncEngine) async throws -> MemberState {
        try await state(of: try #require(try engine.store.identity()?.memberID))
    }
}

extension SyncEngine {
    /// Records a mutation at the device's (test) clock.
    @discardableResult
    nonisolated func act(_ mutation: Mutation, at time: Timestamp) throws -> MutationEnvelope {
        try store.record(mutation, at: time).0
    }
}
