import Foundation
import Logging
import LoyaltyCore
import LoyaltyStore
import LoyaltySync
import LoyaltyTesting
import Synchronization
import Testing

@testable import LoyaltyServer

/// A pilot on SQLite moves to PostgreSQL: its devices go on syncing with the new server without a reset, without
/// signing in again, and without pulling anything twice.
@Suite struct StoreMoveTests {
    static func engine(_ store: DeviceStore, _ server: URL, clock: TestClock) -> SyncEngine {
        SyncEngine(
            store: store, transport: HTTPSyncTransport(serverURL: server), policy: SyncPolicy(retries: 0),
            wallClock: { clock.now() }, jitter: { 1 }, sleep: { _ in })
    }

    @Test(arguments: StorageBackend.postgresOnly)
    func devicesGoOnAfterTheMoveWithoutAResetASignInOrAPullTwice(backend: StorageBackend) async throws {
        let pilot = try await DeviceHarness.make(.sqlite, program: { $0.allowances = .off })
        let stores = try ["phone", "tablet"].map {
            try DeviceStore(path: pilot.directory.appendingPathComponent("\($0).sqlite").path)
        }
        let email = "move-\(UUID().uuidString.prefix(6))@example.de"
        try await pilot.live { server in
            let phone = Self.engine(stores[0], server, clock: pilot.clock)
            let tablet = Self.engine(stores[1], server, clock: pilot.clock)
            _ = try await phone.enroll(
                Registration(name: "Anna Schmidt", email: email), password: "correct horse", deviceName: "phone",
                serverURL: server.absoluteString)
            _ = try await tablet.login(
                email: email, password: "correct horse", deviceName: "tablet", serverURL: server.absoluteString)
            try await pilot.give(800, to: phone)
            await pilot.settle([phone, tablet])
            _ = try stores[0].record(.redeemReward("voucher-5"), at: pilot.clock.now())
            await pilot.settle([phone, tablet])
        }
        let member = try #require(try stores[0].identity()?.memberID)
        let identities = try stores.map { try #require(try $0.identity()) }

        let target = PostgresStorage(
            url: try await StorageBackend.freshDatabase(), connections: 4, idleTimeout: .seconds(2),
            logger: pilot.logger)
        target.runInBackground()
        let lines = Mutex<[String]>([])
        let report = try await StoreMove.copy(from: pilot.settings.dataDirectory, to: target) { line in
            lines.withLock { $0.append(line) }
        }
        #expect(report.verified, "\(report.tables)")
        #expect(report.tables.first { $0.name == "devices" }?.target == 2)
        #expect(lines.withLock { $0 }.contains { $0.hasPrefix("entities:") }, "progress per table")
        // A second move into the same database is refused, and changes nothing.
        await #expect(throws: LoyaltyError.self) {
            _ = try await StoreMove.copy(from: pilot.settings.dataDirectory, to: target) { _ in }
        }

        let moved = pilot.with(
            service: SyncService(
                storage: target, clock: pilot.clock, configuration: pilot.service.configuration,
                tokens: try await target.tokenAuthority(), logger: pilot.logger),
            database: target.url)
        // Past the access tokens' lifetime: the devices refresh with their refresh tokens, now checked in PostgreSQL.
        try pilot.clock.advance(by: .minutes(20))
        try await moved.live { server in
            let phone = Self.engine(stores[0], server, clock: pilot.clock)
            let tablet = Self.engine(stores[1], server, clock: pilot.clock)
            for engine in [phone, tablet] {
                let report = await engine.sync()
                #expect(report.outcome == .synced)
                #expect(report.pulled == 0, "nothing is pulled twice, and no reset")
            }
            // The same devices of the same member, their access tokens renewed with their refresh tokens.
            let after = try stores.map { try #require(try $0.identity()) }
            #expect(after.map(\.deviceID) == identities.map(\.deviceID), "no one signed in again")
            #expect(after.map(\.memberID) == identities.map(\.memberID))
            #expect(
                zip(after, identities).allSatisfy { $0.refreshToken != $1.refreshToken }, "refreshed on the new store")
            _ = try await moved.service.adjustPoints(member: member, points: 50, reason: "after the move")
            _ = try stores[1].record(.redeemReward("tote-bag"), at: pilot.clock.now())
            await moved.settle([phone, tablet])
            let server = try await moved.state(of: member)
            #expect(server.ledger.available == 800 - 500 + 50 - 300)
            for store in stores { #expect(store.confirmed?.ledger.available == server.ledger.available) }
        }
    }
}
