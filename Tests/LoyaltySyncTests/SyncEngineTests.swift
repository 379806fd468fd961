import Foundation
import GRDB
import LoyaltyCore
import LoyaltyStore
import LoyaltySync
import LoyaltyTesting
import Synchronization
import Testing

@testable import LoyaltyServer

/// The device engine against a real `loyalty-server` on loopback, through the real HTTP transport.
@Suite struct SyncEngineTests {
    @Test func enrolmentBootstrapsTheDeviceWithTheMembersWholeState() async throws {
        let harness = try await DeviceHarness.make()
        try await harness.live { server in
            let (phone, _) = try await harness.pair(server: server)
            let view = try #require(phone.store.view)
            #expect(view.activeCard != nil)
            #expect(view.offers.count == 3)
            #expect(view.program.id == "de-retail")
            #expect(view == (try await harness.serverState(of: phone)))
            #expect(try phone.store.status().condition == .ready)
        }
    }

    @Test func aChangeOnOneDeviceReachesTheOtherAndEveryoneAgrees() async throws {
        let harness = try await DeviceHarness.make()
        try await harness.live { server in
            let (phone, tablet) = try await harness.pair(server: server)
            try phone.act(.setProfileField(.phone, value: "+49 30 1234567", basedOn: nil), at: harness.clock.now())
            try phone.act(.setConsent(.marketingEmail, granted: true), at: harness.clock.now())
            #expect(phone.store.view?.profileValue(.phone) == "+49 30 1234567", "shown at once, offline")
            #expect(try phone.store.status().pending == 2)

            let pushed = await phone.sync()
            #expect(pushed.outcome == .synced)
            #expect(pushed.pushed == 2 && pushed.applied == 2)
            #expect(try phone.store.status().pending == 0, "decided and covered by the pulled state")

            _ = await tablet.sync()
            let server = try await harness.serverState(of: phone)
            #expect(tablet.store.view?.profileValue(.phone) == "+49 30 1234567")
            #expect(phone.store.confirmed == server)
            #expect(tablet.store.confirmed == server)
        }
    }

    @Test func aRejectedMutationIsUndoneOnTheDeviceWithANotice() async throws {
        let harness = try await DeviceHarness.make()
        try await harness.live { server in
            let (phone, tablet) = try await harness.pair(server: server)
            try await harness.give(1000, to: phone)
            _ = try await harness.service.createReward(Reward(id: "big", title: "Big", cost: 700))
            _ = await phone.sync()
            _ = await tablet.sync()
            // Both offline: each sees 1000 points and redeems 700.
            try phone.act(.redeemReward("big"), at: harness.clock.now())
            try tablet.act(.redeemReward("big"), at: harness.clock.now())
            #expect(tablet.store.view?.ledger.available == 300)
            #expect(tablet.store.view?.vouchers.count == 1)

            #expect(await phone.sync().applied == 1)
            let report = await tablet.sync()
            #expect(report.rejected == 1)
            #expect(report.notices.map(\.kind) == [.rejected])
            #expect(report.notices.first?.message.contains("points were restored") == true)
            #expect(tablet.store.view?.vouchers.isEmpty == false, "the phone's voucher, pulled")
            let phoneID = try #require(try phone.store.identity()).deviceID.rawValue
            #expect(tablet.store.view?.vouchers.values.allSatisfy { $0.id.rawValue.hasPrefix(phoneID) } == true)
            #expect(tablet.store.view?.ledger.available == 300)
            #expect(try tablet.store.notices(unreadOnly: true).count == 1)
            await harness.settle([phone, tablet])
            #expect(phone.store.view == tablet.store.view)
        }
    }

    @Test func aDeviceAwayLongerThanTheFeedKeepsIsResetAndItsPendingMutationsStillGoThrough() async throws {
        let harness = try await DeviceHarness.make()
        try await harness.live { server in
            let (phone, tablet) = try await harness.pair(server: server)
            try tablet.act(.setConsent(.marketingSMS, granted: true), at: harness.clock.now())
            try harness.clock.advance(by: .days(40))
            try await harness.give(200, to: phone)
            try await harness.service.compactFeed()

            let report = await tablet.sync()
            #expect(report.outcome == .synced)
            #expect(report.notices.contains { $0.kind == .reset })
            #expect(tablet.store.view?.consents.isGranted(.marketingSMS) == true)
            #expect(tablet.store.confirmed == (try await harness.serverState(of: tablet)))
            #expect(tablet.store.view?.ledger.available == 200)
        }
    }

    @Test func anExpiredSessionIsRefreshedDuringTheSync() async throws {
        let harness = try await DeviceHarness.make()
        try await harness.live { server in
            let (phone, _) = try await harness.pair(server: server)
            let before = try #require(try phone.store.identity())
            try harness.clock.advance(by: .minutes(20))
            try phone.act(.setConsent(.profiling, granted: true), at: harness.clock.now())
            let report = await phone.sync()
            #expect(report.outcome == .synced)
            #expect(report.applied == 1)
            let after = try #require(try phone.store.identity())
            #expect(after.refreshToken != before.refreshToken, "rotated")
        }
    }

    @Test func aRevokedDeviceWipesTheMembersData() async throws {
        let harness = try await DeviceHarness.make()
        try await harness.live { server in
            let (phone, tablet) = try await harness.pair(server: server)
            try phone.act(.setConsent(.profiling, granted: true), at: harness.clock.now())
            try await tablet.revoke(try #require(try phone.store.identity()).deviceID)
            let report = await phone.sync()
            #expect(report.outcome == .revoked)
            #expect(try phone.store.identity() == nil)
            #expect(phone.store.view == nil)
            #expect(try phone.store.pendingMutations().isEmpty)
            #expect(try await harness.serverState(of: tablet).consents.changes.isEmpty, "nothing of it was applied")
        }
    }

    @Test func anUpgradeRequiredAnswerKeepsDataAndOutbox() async throws {
        let harness = try await DeviceHarness.make()
        try await harness.live { server in
            let (phone, _) = try await harness.pair(server: server)
            try phone.act(.setConsent(.profiling, granted: true), at: harness.clock.now())
            let upgraded = try await DeviceHarness.make { $0.protocolVersions = ["2"] }
            try await upgraded.live { newServer in
                var identity = try #require(try phone.store.identity())
                identity.serverURL = newServer.absoluteString
                let moved = SyncEngine(
                    store: phone.store, transport: HTTPSyncTransport(serverURL: newServer),
                    policy: SyncPolicy(retries: 0))
                let report = await moved.sync()
                guard case .upgradeRequired(let message) = report.outcome else {
                    Issue.record("\(report.outcome)")
                    return
                }
                #expect(message.contains("update the app"))
            }
            #expect(try phone.store.status().condition == .upgradeRequired)
            #expect(try phone.store.pendingMutations().count == 1)
            #expect(phone.store.view?.consents.isGranted(.profiling) == true)
        }
    }

    @Test func anUnreachableServerIsRetriedWithGrowingDelaysThenReportedOffline() async throws {
        let store = try DeviceStore(
            path: FileManager.default.temporaryDirectory.appendingPathComponent("offline-\(UUID()).sqlite").path)
        try store.saveIdentity(
            DeviceIdentity(
                serverURL: "http://127.0.0.1:9", memberID: "m-1", deviceID: "d-1", cardNumber: "4000001000013",
                accessToken: "t", accessTokenExpiresAt: .init(millisecondsSince1970: 0), refreshToken: "r"))
        let waits = Mutex<[TimeSpan]>([])
        let engine = SyncEngine(
            store: store, transport: HTTPSyncTransport(serverURL: URL(string: "http://127.0.0.1:9")!, timeout: 2),
            policy: SyncPolicy(retries: 3, baseDelay: .milliseconds(100)), jitter: { 1 },
            sleep: { delay in waits.withLock { $0.append(delay) } })
        let report = await engine.sync()
        guard case .offline = report.outcome else {
            Issue.record("\(report.outcome)")
            return
        }
        #expect(waits.withLock { $0 } == [.milliseconds(100), .milliseconds(200), .milliseconds(400)])
        #expect(try store.status().lastError?.contains("cannot be reached") == true)
    }

    @Test(arguments: [true, false])
    func pagesAskedForAheadAreAppliedOnceInOrderAndAFailedOneIsAskedAgain(prefetch: Bool) async throws {
        let harness = try await DeviceHarness.make()
        try await harness.live { server in
            let email = "prefetch-\(prefetch)@example.de"
            let (phone, _) = try await harness.pair(server: server, email: email)
            for _ in 0..<6 { try await harness.give(100, to: phone) }
            let pulls = Mutex(0)
            let failOnPull = Mutex<Int?>(4)
            let counted = InterposedTransport(HTTPSyncTransport(serverURL: server)) { call throws(TransportError) in
                guard call == .pull else { return }
                let number = pulls.withLock { count in
                    count += 1
                    return count
                }
                if failOnPull.withLock({ $0 }) == number { throw .unreachable("connection reset") }
            }
            let tablet = try harness.device(
                "laptop", server: server, transport: counted,
                policy: SyncPolicy(pageSize: 2, prefetch: prefetch, retries: 0))
            let first = try await tablet.login(
                email: email, password: "correct horse", deviceName: "laptop", serverURL: server.absoluteString)
            // The fourth pull (asked for ahead, when prefetching, while the third page was applied) fails: the
            // pages before it stay applied, and the next sync goes on from there.
            #expect(first.outcome != .synced)
            #expect(first.pulled == 6)
            let member = try #require(try tablet.store.identity()?.memberID)
            let cursor = try tablet.store.cursor()
            let firstSix = try await harness.service.storage.feed(member: member, after: .start, limit: 6).changes
            #expect(cursor.version == firstSix.last?.version, "the first six changes, each once, and no more")
            #expect(try tablet.store.status().lastError != nil)
            failOnPull.withLock { $0 = nil }
            let before = pulls.withLock { $0 }
            let report = await tablet.sync()
            #expect(report.outcome == .synced)
            let rest = try await harness.service.storage.feed(member: member, after: cursor, limit: 10_000).changes
            #expect(report.pulled == rest.count, "every change after the cursor, each once")
            #expect(tablet.store.confirmed == (try await harness.serverState(of: phone)))
            // Two changes a page: as many pulls as pages, none wasted on a stale cursor.
            #expect(pulls.withLock { $0 } - before == max((rest.count + 1) / 2, 1))
        }
    }

    @Test func thePageAfterAPrefetchedOneIsAskedForBeforeThatOneIsHandedBack() async throws {
        let harness = try await DeviceHarness.make()
        try await harness.live { server in
            let email = "chain@example.de"
            let (phone, _) = try await harness.pair(server: server, email: email)
            for _ in 0..<6 { try await harness.give(100, to: phone) }
            let holding = HoldingTransport(HTTPSyncTransport(serverURL: server))
            let laptop = try harness.device(
                "laptop", server: server, transport: holding, policy: SyncPolicy(pageSize: 2, retries: 0))
            let report = try await laptop.login(
                email: email, password: "correct horse", deviceName: "laptop", serverURL: server.absoluteString)
            #expect(report.outcome == .synced)
            // The first page asked for ahead was held back until the one after it was asked for, from its
            // early cursor: the server works on a page while the device reads the one before.
            #expect(holding.askedAheadOfTheHeldPage == true)
            let member = try #require(try laptop.store.identity()?.memberID)
            let all = try await harness.service.storage.feed(member: member, after: .start, limit: 10_000).changes
            #expect(report.pulled == all.count, "every change once")
            #expect(holding.pulls == (all.count + 1) / 2, "as many pulls as pages, none wasted")
            #expect(laptop.store.confirmed == (try await harness.serverState(of: phone)))
        }
    }

    @Test func pulledPagesAreCopiedIntoTheDatabaseFileBesideTheDevicesWriter() async throws {
        let harness = try await DeviceHarness.make()
        try await harness.live { server in
            let (phone, tablet) = try await harness.pair(server: server)
            for _ in 0..<3 { try await harness.give(100, to: phone) }
            #expect(await tablet.sync().outcome == .synced)
            // The database file alone, without its log: SQLite's own checkpoint waits for 1,000 pages of log, far
            // more than these pages wrote, so only the device's checkpointer can have copied them.
            let pulled = try #require(try tablet.store.identity()?.memberID)
            var copied = 0
            for _ in 0..<200 where copied < 3 {
                let copy = harness.directory.appendingPathComponent("alone-\(UUID().uuidString.prefix(6)).sqlite")
                try FileManager.default.copyItem(atPath: tablet.store.path, toPath: copy.path)
                // Not copied yet at all: the file alone has not even the tables.
                let alone = try DatabaseQueue(path: copy.path)
                copied =
                    (try? await alone.read { db in
                        try Int.fetchOne(db, sql: "SELECT count(*) FROM ledger_entries") ?? 0
                    }) ?? 0
                if copied < 3 { try await Task.sleep(for: .milliseconds(10)) }
            }
            #expect(copied >= 3, "the three credits of \(pulled) are in the database file")
        }
    }

    @Test func aServerThatComesBackIsSyncedWithAfterTheBackoff() async throws {
        let harness = try await DeviceHarness.make()
        try await harness.live { server in
            let failures = Mutex(0)
            let flaky = InterposedTransport(HTTPSyncTransport(serverURL: server)) { call throws(TransportError) in
                guard call == .push || call == .pull else { return }
                if failures.withLock({ count in
                    defer { count = max(count - 1, 0) }
                    return count > 0
                }) {
                    throw .unreachable("connection refused")
                }
            }
            let phone = try harness.device("phone", server: server, transport: flaky, policy: SyncPolicy(retries: 3))
            _ = try await phone.enroll(
                Registration(name: "Anna", email: "flaky@example.de"), password: "correct horse", deviceName: nil,
                serverURL: server.absoluteString)
            try phone.act(.setConsent(.marketingPush, granted: true), at: harness.clock.now())
            failures.withLock { $0 = 2 }
            let report = await phone.sync()
            #expect(report.outcome == .synced)
            #expect(report.applied == 1)
        }
    }
}

/// The real transport, except that the first page asked for ahead is handed back only once the pull after it has
/// been asked for (or after two seconds): that pull can come first only if the engine asks for it from the held
/// page's early cursor.
private final class HoldingTransport: SyncTransport {
    private let base: HTTPSyncTransport
    private let state = Mutex<(pulls: Int, heldOnce: Bool, askedAhead: Bool?)>((0, false, nil))

    init(_ base: HTTPSyncTransport) { self.base = base }

    var pulls: Int { state.withLock { $0.pulls } }
    var askedAheadOfTheHeldPage: Bool? { state.withLock { $0.askedAhead } }

    func pull(_ request: PullRequest, accessToken: String) async throws(TransportError) -> PullResponse {
        state.withLock { $0.pulls += 1 }
        return try await base.pull(request, accessToken: accessToken)
    }

    func pull(
        _ request: PullRequest, accessToken: String,
        early: @escaping @Sendable (LoyaltyCore.Cursor, _ hasMore: Bool) -> Void
    ) async throws(TransportError) -> PullResponse {
        let (number, hold) = state.withLock { state -> (Int, Bool) in
            state.pulls += 1
            defer { state.heldOnce = true }
            return (state.pulls, !state.heldOnce)
        }
        let page = try await base.pull(request, accessToken: accessToken, early: early)
        guard hold, page.hasMore else { return page }
        for _ in 0..<200 where state.withLock({ $0.pulls }) == number {
            try? await Task.sleep(for: .milliseconds(10))
        }
        state.withLock { $0.askedAhead = $0.pulls > number }
        return page
    }

    func enroll(
        _ registration: Registration, password: String, deviceName: String?
    ) async throws(TransportError) -> SessionGrant {
        try await base.enroll(registration, password: password, deviceName: deviceName)
    }
    func login(email: String, password: String, deviceName: String?) async throws(TransportError) -> SessionGrant {
        try await base.login(email: email, password: password, deviceName: deviceName)
    }
    func refresh(refreshToken: String) async throws(TransportError) -> SessionGrant {
        try await base.refresh(refreshToken: refreshToken)
    }
    func push(_ request: PushRequest, accessToken: String) async throws(TransportError) -> PushResponse {
        try await base.push(request, accessToken: accessToken)
    }
    func devices(accessToken: String) async throws(TransportError) -> [DeviceSummary] {
        try await base.devices(accessToken: accessToken)
    }
    func revoke(device: DeviceID, accessToken: String) async throws(TransportError) {
        try await base.revoke(device: device, accessToken: accessToken)
    }
}
