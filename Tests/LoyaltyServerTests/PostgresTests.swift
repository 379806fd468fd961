import Foundation
import Logging
import LoyaltyCore
import LoyaltyTesting
import Synchronization
import Testing

@testable import LoyaltyServer

/// What only the PostgreSQL backend has to prove: a feed that never skips a change committed late, units of work
/// serialised per member across instances, exactly-once across instances, migrations that race safely, jobs that
/// two instances run at once, and a bounded wait for a connection. Run under scripts/with-postgres.sh (CI does).
@Suite struct PostgresTests {
    /// A second instance on the harness's database: its own pool and its own service, the same clock and keys.
    func secondInstance(of harness: TestServer) async throws -> SyncService {
        let url = try #require(harness.settings.database)
        let storage = PostgresStorage(url: url, connections: 6, idleTimeout: .seconds(2), logger: harness.logger)
        storage.runInBackground()
        return SyncService(
            storage: storage, clock: harness.clock, configuration: harness.service.configuration,
            tokens: try await storage.tokenAuthority(), logger: harness.logger)
    }

    /// A member unit takes a feed version and is held open; a catalogue change takes a later one and commits; a pull
    /// runs; the first is released; a pull from the first pull's cursor runs. Every change must arrive exactly once.
    /// Against the naive feed (no wait for writers in flight) the late change is skipped: the test can fail.
    @Test(arguments: StorageBackend.postgresOnly.isEmpty ? [] : [false, true])
    func theFeedNeverSkipsAChangeCommittedAfterALaterOne(naive: Bool) async throws {
        let held = Gate()
        var hooks = PostgresStorage.Hooks()
        hooks.naiveFeed = naive
        hooks.beforeMemberCommit = { _ in await held.wait() }
        let harness = try await TestServer.make(.postgres)
        let (session, device) = try await harness.enroll()
        let url = try #require(harness.settings.database)
        let storage = PostgresStorage(url: url, connections: 6, logger: harness.logger, hooks: hooks)
        storage.runInBackground()
        let start = try await storage.feed(member: session.memberID, after: .start, limit: 1_000)
        let cursor = try #require(start.changes.last?.version)

        // Writer 1: the member's unit, held after its writes (its versions taken), before its commit.
        let writer = Task {
            try await storage.withMember(MemberWorkRequest(memberID: session.memberID, now: harness.clock.now())) {
                work in
                work.state.member.segments.insert("held-writer")
                work.write([.member(work.state.member)])
            }
        }
        await held.reached()
        // Writer 2: a catalogue change, later version, committed while writer 1 is open.
        try await storage.withCatalogue(now: harness.clock.now()) { work in
            var offer = work.catalogue.offers[0]
            offer.title = "Committed second"
            work.write([.offer(offer)])
        }
        // A pull while writer 1 is open: it waits for writer 1 (or, naive, answers at once without it).
        let firstPull = Task {
            try await storage.feed(member: session.memberID, after: Cursor(version: cursor), limit: 1_000)
        }
        try await Task.sleep(for: .milliseconds(300))
        held.open()
        try await writer.value
        let first = try await firstPull.value
        let next = first.changes.last?.version ?? cursor
        let second = try await storage.feed(member: session.memberID, after: Cursor(version: next), limit: 1_000)

        let seen = (first.changes + second.changes).map(\.key)
        let memberChanges = seen.filter { $0.kind == .member }.count
        let offerChanges = seen.filter { $0.kind == .offer }.count
        if naive {
            #expect(memberChanges == 0, "the naive feed skips the change committed late")
        } else {
            #expect(memberChanges == 1)
        }
        #expect(offerChanges == 1)
        #expect(Set(first.changes.map(\.version)).isDisjoint(with: second.changes.map(\.version)))
        _ = device
    }

    /// The same push, answered by one instance and retried against the other, returns the stored results and is
    /// applied once.
    @Test(arguments: StorageBackend.postgresOnly)
    func aPushRetriedAgainstTheOtherInstanceIsAppliedOnce(backend: StorageBackend) async throws {
        let harness = try await TestServer.make(backend)
        let other = try await secondInstance(of: harness)
        let (session, device) = try await harness.enroll()
        try await harness.give(1_000, to: session.memberID)
        let push = PushRequest(
            deviceID: device.id, mutations: [harness.envelope(device, 1, .redeemReward("voucher-5"))])
        let first = try await harness.service.push(push, from: device)
        let retried = try await other.push(push, from: try #require(try await other.storage.device(device.id)))
        #expect(first.results == retried.results)
        #expect(try await other.overview(of: session.memberID).state.ledger.available == 500)
    }

    /// Two devices of one member spend the same points at once through two instances: one wins, the other is told.
    @Test(arguments: StorageBackend.postgresOnly)
    func concurrentOverdrawThroughTwoInstancesLetsOneWin(backend: StorageBackend) async throws {
        let harness = try await TestServer.make(backend)
        let other = try await secondInstance(of: harness)
        let email = "overdraw-\(UUID().uuidString.prefix(6))@example.de"
        let (session, phone) = try await harness.enroll(email)
        let (_, tablet) = try await harness.login(session, email: email)
        try await harness.give(600, to: session.memberID)
        async let a = harness.service.push(
            PushRequest(deviceID: phone.id, mutations: [harness.envelope(phone, 1, .redeemReward("voucher-5"))]),
            from: phone)
        async let b = other.push(
            PushRequest(deviceID: tablet.id, mutations: [harness.envelope(tablet, 1, .redeemReward("voucher-5"))]),
            from: tablet)
        let codes = try await (a.codes + b.codes).sorted()
        #expect(codes == ["applied", "insufficient_points"])
        #expect(try await harness.state(of: session.memberID).ledger.available == 100)
    }

    /// Both instances run the unlock job at once: each lot unlocks once.
    @Test(arguments: StorageBackend.postgresOnly)
    func twoInstancesRunningTheJobsTogetherUnlockEachLotOnce(backend: StorageBackend) async throws {
        let harness = try await TestServer.make(backend)
        let other = try await secondInstance(of: harness)
        var members: [MemberID] = []
        for _ in 0..<8 {
            let (session, _) = try await harness.enroll()
            _ = try await harness.service.recordPurchase(
                amount: "10.00", card: nil, member: session.memberID.rawValue, receiptCode: nil, transaction: nil)
            members.append(session.memberID)
        }
        try harness.clock.advance(by: .days(15))
        async let first = harness.service.run(.unlock)
        async let second = other.run(.unlock)
        let (one, two) = try await (first, second)
        #expect(one.movements + two.movements == members.count)
        for member in members { #expect(try await harness.state(of: member).ledger.available == 10) }
    }

    /// Two instances migrating an empty database at the same time: one applies the steps, the other waits and finds
    /// them applied.
    @Test(arguments: StorageBackend.postgresOnly)
    func migrationsStartedTogetherApplyEachStepOnce(backend: StorageBackend) async throws {
        let url = try await StorageBackend.freshDatabase()
        let stores = (0..<3).map { _ in
            PostgresStorage(url: url, connections: 2, idleTimeout: .seconds(2), logger: Logger(label: "test"))
        }
        for store in stores { store.runInBackground() }
        let applied = try await withThrowingTaskGroup(of: [String].self) { group in
            for store in stores { group.addTask { try await store.applyMigrations() } }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        #expect(applied.sorted() == PostgresStorage.migrations.map(\.name).sorted())
        #expect(try await stores[0].applyMigrations().isEmpty)
    }

    /// A pool with every connection taken answers `unavailable` after its bounded wait, not never.
    @Test(arguments: StorageBackend.postgresOnly)
    func anExhaustedPoolAnswersUnavailableAfterABoundedWait(backend: StorageBackend) async throws {
        let harness = try await TestServer.make(backend)
        let (session, _) = try await harness.enroll()
        let held = Gate()
        var hooks = PostgresStorage.Hooks()
        hooks.beforeMemberCommit = { _ in await held.wait() }
        let url = try #require(harness.settings.database)
        let storage = PostgresStorage(
            url: url, connections: 1, leaseTimeout: .milliseconds(300), logger: harness.logger, hooks: hooks)
        storage.runInBackground()
        let holder = Task {
            try await storage.withMember(MemberWorkRequest(memberID: session.memberID, now: harness.clock.now())) {
                _ in
            }
        }
        await held.reached()
        do {
            _ = try await storage.account(member: session.memberID)
            Issue.record("a request got a connection of a pool whose one connection is held")
        } catch let error as LoyaltyError {
            #expect(error.code == .unavailable)
            #expect(FailureMiddleware.failure(for: error).kind.status == 503)
            #expect(FailureMiddleware.failure(for: error).retryAfterSeconds != nil)
        }
        held.open()
        try await holder.value
        #expect(try await storage.account(member: session.memberID) != nil)
    }
}

/// A one-shot gate: `wait()` blocks until `open()`; `reached()` returns once someone waits.
final class Gate: Sendable {
    private let state = Mutex<(open: Bool, waiters: [CheckedContinuation<Void, Never>], arrived: Bool)>(
        (false, [], false))

    func wait() async {
        await withCheckedContinuation { continuation in
            let resume = state.withLock { state -> Bool in
                state.arrived = true
                if state.open { return true }
                state.waiters.append(continuation)
                return false
            }
            if resume { continuation.resume() }
        }
    }

    func reached() async {
        while !state.withLock({ $0.arrived }) { try? await Task.sleep(for: .milliseconds(10)) }
    }

    func open() {
        let waiters = state.withLock { state in
            state.open = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }
}

/// The database server stops while the service runs: requests are refused as unavailable (503 with `Retry-After`),
/// and once it is back the same service (the same pool) answers again, with everything acknowledged before kept.
@Suite struct PostgresOutageTests {
    @Test(arguments: StorageBackend.postgresOnly)
    func requestsDuringAnOutageAreUnavailableAndTheServiceRecoversWithoutARestart(
        backend: StorageBackend
    ) async throws {
        let cluster = try PostgresCluster()
        defer { cluster.remove() }
        let storage = PostgresStorage(
            url: try cluster.url, connections: 4, leaseTimeout: .seconds(2), idleTimeout: .seconds(30),
            logger: Logger(label: "test"))
        storage.runInBackground()
        try await storage.migrate()
        var configuration = ServerConfiguration(adminToken: TestServer.adminToken)
        configuration.passwordHashing = ScryptParameters(logN: 10)
        let settings = try ServerSettings(dataDirectory: FileManager.default.temporaryDirectory, testClock: true)
        let service = SyncService(
            storage: storage, clock: TestClock(), configuration: configuration,
            tokens: try await storage.tokenAuthority(), logger: Logger(label: "test"))
        try await service.prepare(program: settings.program, catalogue: settings.catalogue)
        let session = try await service.enroll(
            Registration(name: "Anna Schmidt", email: "outage@example.de"), password: "correct horse",
            deviceName: "phone")
        _ = try await service.adjustPoints(member: session.memberID, points: 300, reason: "before the outage")

        try cluster.stop()
        do {
            _ = try await service.adjustPoints(member: session.memberID, points: 50, reason: "during the outage")
            Issue.record("a write went through with the database stopped")
        } catch {
            let failure = FailureMiddleware.failure(for: error)
            #expect(failure.kind == .unavailable, "\(error)")
            #expect(failure.retryAfterSeconds != nil)
        }

        try cluster.start()
        var recovered = false
        for _ in 0..<50 where !recovered {
            do {
                _ = try await service.adjustPoints(member: session.memberID, points: 50, reason: "after the outage")
                recovered = true
            } catch {
                #expect(FailureMiddleware.failure(for: error).kind == .unavailable, "\(error)")
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        #expect(recovered, "the service answers again once the database is back")
        #expect(try await service.overview(of: session.memberID).state.ledger.available == 350)
    }
}

/// The schema stays distributable by member (docs/scaling.md).
@Suite struct DistributableSchemaTests {
    static let memberTables = ["accounts", "entities", "devices", "mutation_results", "member_analysis"]
    static let lookupTables = ["cards", "receipts", "transactions"]
    static let referenceTables = [
        "catalogue", "meta", "signing_keys", "schema_migrations", "segments", "programme_figures",
    ]

    @Test(arguments: StorageBackend.postgresOnly)
    func everyMemberTableIsKeyedByTheMemberAndItsStatementsNameIt(backend: StorageBackend) async throws {
        let storage = try await StorageBackend.freshPostgres()
        let keys = try await storage.primaryKeys()
        #expect(
            Set(keys.keys) == Set(Self.memberTables + Self.lookupTables + Self.referenceTables),
            "every table is classified in docs/scaling.md")
        for table in Self.memberTables {
            #expect(keys[table]?.first == "member_id", "\(table)'s key starts with the member id: \(keys[table] ?? [])")
        }

        // Every statement of the backend on a member's entities or results names the member, but the fan-outs.
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Sources/LoyaltyServer/Storage")
        let fanOuts = [
            "WHERE body IS NULL AND updated_at <", "WHERE processed_at <", "FROM entities) + (SELECT count",
            "SELECT greatest((SELECT coalesce(max(version), 0) FROM entities)",
        ]
        var checked = 0
        for file in try FileManager.default.contentsOfDirectory(atPath: folder.path)
        where file.hasPrefix("PostgresStorage") {
            let source = try String(contentsOf: folder.appendingPathComponent(file), encoding: .utf8)
            for statement in Self.sqlLiterals(in: source)
            where statement.range(
                of: #"(FROM|INTO|UPDATE)\s+(entities|mutation_results|member_analysis)\b"#, options: .regularExpression)
                != nil
            {
                checked += 1
                guard !fanOuts.contains(where: statement.contains) else { continue }
                #expect(
                    statement.contains("member_id"), "\(file): a statement that does not name the member: \(statement)")
            }
        }
        #expect(checked >= 6, "the statements were found")
    }

    /// The string literals of a Swift source (multi-line ones whole), roughly: enough for SQL.
    static func sqlLiterals(in source: String) -> [String] {
        var literals: [String] = []
        let blocks = source.components(separatedBy: "\"\"\"")
        for (index, block) in blocks.enumerated() {
            if index % 2 == 1 {
                literals.append(block)
            } else {
                for line in block.split(separator: "\n") {
                    let parts = line.split(separator: "\"", omittingEmptySubsequences: false)
                    for (part, text) in parts.enumerated() where part % 2 == 1 { literals.append(String(text)) }
                }
            }
        }
        return literals
    }
}
