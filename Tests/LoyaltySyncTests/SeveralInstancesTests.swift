import Foundation
import Logging
import LoyaltyCore
import LoyaltyStore
import LoyaltySync
import LoyaltyTesting
import Testing

@testable import LoyaltyServer

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Two real `loyalty-server` processes on one PostgreSQL database, devices talking HTTP to them: what a programme
/// with several app servers behind a load balancer sees. Each test ends the processes it started, by pid.
@Suite struct SeveralInstancesTests {
    static let adminToken = "operator-secret-0123456789abcdefghij"

    /// A `loyalty-server serve` on the database, on a free port; its process and base URL.
    final class Instance: @unchecked Sendable {
        let process = Process()
        let url: URL

        init(database: DatabaseURL, directory: URL, arguments: [String] = []) throws {
            let binary = try #require(BuiltExecutable.locate("loyalty-server"), "build the package first")
            process.executableURL = binary
            process.arguments =
                [
                    "serve", "--port", "0", "--data", directory.path, "--password-cost", "10", "--log-level", "warning",
                ] + arguments
            var environment = ProcessInfo.processInfo.environment
            environment["LOYALTY_DATABASE_URL"] = Self.text(of: database)
            environment["LOYALTY_ADMIN_TOKEN"] = SeveralInstancesTests.adminToken
            process.environment = environment
            let output = Pipe()
            process.standardOutput = output
            process.standardError = FileHandle.nullDevice
            try process.run()
            var line: [UInt8] = []
            while let byte = try output.fileHandleForReading.read(upToCount: 1)?.first, byte != UInt8(ascii: "\n") {
                line.append(byte)
            }
            let text = String(decoding: line, as: UTF8.self)
            guard text.hasPrefix("listening on "), let url = URL(string: String(text.dropFirst(13))) else {
                process.terminate()
                throw LoyaltyError("no_port", "loyalty-server did not start: \(text)")
            }
            self.url = url
        }

        static func text(of url: DatabaseURL) -> String {
            "postgres://\(url.user)@\(url.host):\(url.port)/\(url.database)?sslmode=\(url.tls.rawValue)"
        }

        /// SIGKILL: no graceful shutdown, connections dropped mid-transaction.
        func kill() {
            Foundation.kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }

        deinit {
            if process.isRunning {
                process.terminate()
                process.waitUntilExit()
            }
        }
    }

    /// A device store and an engine talking to `server`; a second engine on the same store moves the device.
    static func engine(_ store: DeviceStore, _ server: URL) -> SyncEngine {
        SyncEngine(
            store: store, transport: HTTPSyncTransport(serverURL: server, timeout: 10),
            policy: SyncPolicy(retries: 0), jitter: { 1 }, sleep: { _ in })
    }

    static func adjust(_ member: MemberID, by points: Int, on server: URL) async throws {
        var request = URLRequest(url: server.appendingPathComponent("v1/admin/members/\(member)/adjust"))
        request.httpMethod = "POST"
        request.setValue("Bearer \(adminToken)", forHTTPHeaderField: "Authorization")
        request.setValue("1", forHTTPHeaderField: "Loyalty-Protocol")
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.httpBody = Data(#"{"points": \#(points), "reason": "test"}"#.utf8)
        let (_, response) = try await URLSession.shared.data(for: request)
        #expect((response as? HTTPURLResponse)?.statusCode == 201)
    }

    /// The member's state as the database holds it, read by a store of the test's own.
    static func serverState(_ member: MemberID, _ storage: PostgresStorage) async throws -> MemberState {
        try await storage.withMember(MemberWorkRequest(memberID: member, now: Timestamp(Date()))) { $0.state }
    }

    @Test(arguments: StorageBackend.postgresOnly)
    func devicesOfOneMemberAlternateBetweenInstancesAndOneOfTwoConcurrentSpendsWins(
        backend: StorageBackend
    ) async throws {
        let database = try await StorageBackend.freshDatabase()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("instances-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        // Without offline allowances, so that both devices may try to spend the same points.
        var program = try Program.decode(json: Data(DefaultProgramme.programJSON.utf8))
        program.allowances = .off
        let programFile = directory.appendingPathComponent("program.json")
        try JSONEncoder().encode(program).write(to: programFile)
        let a = try Instance(
            database: database, directory: directory.appendingPathComponent("a"),
            arguments: ["--program", programFile.path])
        let b = try Instance(database: database, directory: directory.appendingPathComponent("b"))
        let phoneStore = try DeviceStore(path: directory.appendingPathComponent("phone.sqlite").path)
        let tabletStore = try DeviceStore(path: directory.appendingPathComponent("tablet.sqlite").path)
        let email = "instances-\(UUID().uuidString.prefix(6))@example.de"
        let enrolled = try await Self.engine(phoneStore, a.url).enroll(
            Registration(name: "Anna Schmidt", email: email), password: "correct horse", deviceName: "phone",
            serverURL: a.url.absoluteString)
        #expect(enrolled.outcome == .synced)
        let signedIn = try await Self.engine(tabletStore, b.url).login(
            email: email, password: "correct horse", deviceName: "tablet", serverURL: b.url.absoluteString)
        #expect(signedIn.outcome == .synced)
        let member = try #require(try phoneStore.identity()?.memberID)
        try await Self.adjust(member, by: 600, on: b.url)

        // Each device syncs through the other instance than before, then both spend 500 of the 600 at once.
        #expect(await Self.engine(phoneStore, b.url).sync().outcome == .synced)
        #expect(await Self.engine(tabletStore, a.url).sync().outcome == .synced)
        _ = try phoneStore.record(.redeemReward("voucher-5"), at: Timestamp(Date()))
        _ = try tabletStore.record(.redeemReward("voucher-5"), at: Timestamp(Date()))
        async let phoneSync = Self.engine(phoneStore, a.url).sync()
        async let tabletSync = Self.engine(tabletStore, b.url).sync()
        let (phoneReport, tabletReport) = await (phoneSync, tabletSync)
        #expect(phoneReport.outcome == .synced && tabletReport.outcome == .synced)
        #expect(phoneReport.applied + tabletReport.applied == 1, "one spend wins")
        #expect(phoneReport.rejected + tabletReport.rejected == 1, "the other is told")

        // Once both have pulled through either instance, they and the database agree.
        for _ in 0..<2 {
            _ = await Self.engine(phoneStore, b.url).sync()
            _ = await Self.engine(tabletStore, a.url).sync()
        }
        let storage = PostgresStorage(
            url: database, connections: 2, idleTimeout: .seconds(2), logger: Logger(label: "t"))
        storage.runInBackground()
        let server = try await Self.serverState(member, storage)
        #expect(server.ledger.available == 100)
        #expect(phoneStore.confirmed?.ledger.available == 100)
        #expect(tabletStore.confirmed?.ledger.available == 100)
        #expect(server.vouchers.count == 1)
    }

    /// An instance is killed (SIGKILL) while a push is inside its transaction; the device retries against the other
    /// instance and the effect is applied once.
    @Test(arguments: StorageBackend.postgresOnly)
    func anInstanceKilledMidPushLosesNothingAndTheRetryOnTheOtherAppliesOnce(backend: StorageBackend) async throws {
        let database = try await StorageBackend.freshDatabase()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("instances-\(UUID())")
        let a = try Instance(database: database, directory: directory.appendingPathComponent("a"))
        let b = try Instance(database: database, directory: directory.appendingPathComponent("b"))
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let phoneStore = try DeviceStore(path: directory.appendingPathComponent("phone.sqlite").path)
        _ = try await Self.engine(phoneStore, a.url).enroll(
            Registration(name: "Anna Schmidt", email: "killed-\(UUID().uuidString.prefix(6))@example.de"),
            password: "correct horse", deviceName: "phone", serverURL: a.url.absoluteString)
        let member = try #require(try phoneStore.identity()?.memberID)
        try await Self.adjust(member, by: 600, on: a.url)
        #expect(await Self.engine(phoneStore, a.url).sync().outcome == .synced)

        // The test holds the member's lock from its own connection: instance A's push waits inside its transaction.
        let storage = PostgresStorage(
            url: database, connections: 3, idleTimeout: .seconds(2), logger: Logger(label: "t"))
        storage.runInBackground()
        let held = Gate()
        let holder = Task {
            try await storage.holdingMemberLock(member) { await held.wait() }
        }
        _ = try phoneStore.record(.redeemReward("voucher-5"), at: Timestamp(Date()))
        let inFlight = Task { await Self.engine(phoneStore, a.url).sync() }
        // Wait until A's push is blocked on the lock (a waiting advisory lock in pg_locks).
        var waiting = 0
        for _ in 0..<500 where waiting == 0 {
            waiting = try await storage.advisoryLocksWaited()
            if waiting == 0 { try await Task.sleep(for: .milliseconds(20)) }
        }
        #expect(waiting == 1, "instance A's push waits for the member's lock")
        a.kill()
        let lost = await inFlight.value
        #expect(lost.outcome != .synced, "the answer was lost with the instance")
        held.open()
        try await holder.value

        let retried = await Self.engine(phoneStore, b.url).sync()
        #expect(retried.outcome == .synced)
        _ = await Self.engine(phoneStore, b.url).sync()
        let server = try await Self.serverState(member, storage)
        #expect(server.ledger.available == 100, "spent once")
        #expect(server.vouchers.count == 1)
        #expect(phoneStore.confirmed?.ledger.available == 100)
        #expect(try phoneStore.pendingMutations().isEmpty)
    }
}

/// A one-shot gate: `wait()` blocks until `open()`.
final class Gate: Sendable {
    private let opened = AsyncStream<Void>.makeStream()

    func wait() async { for await _ in opened.stream { return } }
    func open() {
        opened.continuation.yield()
        opened.continuation.finish()
    }
}
