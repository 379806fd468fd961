import Foundation
import GRDB
import LoyaltyCore
import LoyaltyTesting
import Testing

@testable import LoyaltyStore

@Suite struct DeviceStoreTests {
    func temporaryPath(_ name: String = "device") -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(UUID().uuidString).sqlite").path
    }

    @Test func aCorruptFileIsAnErrorThatNamesItAndIsLeftUntouched() throws {
        let path = temporaryPath()
        let garbage =
            Data("this is not a database, it is a shopping list: milk, eggs, bread".utf8)
            + Data(repeating: 7, count: 4096)
        try garbage.write(to: URL(fileURLWithPath: path))
        do {
            _ = try DeviceStore(path: path)
            Issue.record("a corrupt file was opened")
        } catch let error as LoyaltyError {
            #expect(error.code == .unusableStore)
            #expect(error.message.contains(path))
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == garbage)
    }

    @Test func aStoreFromTheFirstSchemaVersionUpgradesWithoutLosingItsOutbox() throws {
        let path = temporaryPath()
        // Write a store as version 1 of the schema wrote it, with a mutation waiting in the outbox.
        let queue = try DatabaseQueue(path: path)
        try DeviceStore.migrator.migrate(queue, upTo: "v1: confirmed state and outbox")
        let envelope = MutationEnvelope(
            deviceID: "d-1", sequence: 7, stamp: HLCTimestamp(wallMilliseconds: 1000, counter: 0),
            deviceTime: Timestamp(millisecondsSince1970: 1000), mutation: .setConsent(.profiling, granted: false))
        try queue.write { db in
            try db.execute(
                sql: "INSERT INTO outbox (sequence, envelope, created_at) VALUES (7, ?, 1000)",
                arguments: [try JSONEncoder().encode(envelope)])
            try db.execute(sql: "UPDATE device SET next_sequence = 8")
        }
        try queue.close()

        let store = try DeviceStore(path: path)
        #expect(try store.pendingMutations().map(\.envelope) == [envelope])
        #expect(try store.notices().isEmpty, "the v2 notices table exists")
        #expect(try store.status().pending == 1)
    }

    @Test func aStoreLockedByAnotherProcessIsWaitedForThenReported() throws {
        let path = temporaryPath()
        let store = try DeviceStore(path: path)
        let other = try DatabaseQueue(path: path)  // another process's connection
        try other.writeWithoutTransaction { db in
            try db.execute(sql: "BEGIN EXCLUSIVE")
            defer { try? db.execute(sql: "ROLLBACK") }
            do {
                try store.saveIdentity(
                    DeviceIdentity(
                        serverURL: "x", memberID: "m", deviceID: "d", cardNumber: "1", accessToken: "a",
                        accessTokenExpiresAt: Timestamp(millisecondsSince1970: 0), refreshToken: "r"))
                Issue.record("a locked store was written")
            } catch let error as LoyaltyError {
                #expect(error.code == .locked)
                #expect(error.message.contains(path))
            }
        }
        #expect(try store.identity() == nil, "nothing was half-written")
    }

    @Test func anEmptyStoreHasNoViewAndRefusesMutations() throws {
        let store = try DeviceStore(path: temporaryPath())
        #expect(store.view == nil)
        #expect(try store.status().condition == .signedOut)
        #expect(throws: LoyaltyError.self) { try store.record(.activateOffer("welcome-10"), at: Timestamp(Date())) }
    }

    @Test func sequenceNumbersNeverRepeatAcrossReopeningAndDecidedMutations() throws {
        let path = temporaryPath()
        let (store, now) = try Self.bootstrapped(path: path, lots: 1)
        let first = try store.record(.setConsent(.marketingEmail, granted: true), at: now).0
        let reopened = try DeviceStore(path: path, now: now)  // as after the process was killed
        let second = try reopened.record(.setConsent(.marketingEmail, granted: false), at: now).0
        _ = try reopened.recordResults(
            [MutationResult(sequence: first.sequence, status: .rejected(MutationRejection(.memberNotActive, "x")))],
            at: now)
        let third = try reopened.record(.setConsent(.profiling, granted: true), at: now).0
        #expect([first.sequence, second.sequence, third.sequence] == [1, 2, 3])
        #expect(try reopened.pendingMutations().map(\.envelope.sequence) == [2, 3])
    }

    /// The outbox is decoded once per row and kept decoded; what is read must still be what the file holds.
    @Test func theOutboxAsReadFollowsItsRowsWhateverChangesThem() throws {
        let path = temporaryPath()
        let (store, now) = try Self.bootstrapped(path: path, lots: 1)
        let first = try store.record(.setConsent(.marketingEmail, granted: true), at: now).0
        #expect(try store.pendingMutations().map(\.result) == [nil])
        _ = try store.recordResults([MutationResult(sequence: first.sequence, status: .applied)], at: now)
        #expect(try store.pendingMutations().map(\.result?.status) == [.applied])

        // Another connection (another process) rewrites the row under the same sequence number, then removes it.
        var other = first
        other.mutation = .setConsent(.profiling, granted: false)
        let queue = try DatabaseQueue(path: path)
        try queue.write { db in
            try db.execute(
                sql: "UPDATE outbox SET envelope = ?, result = NULL WHERE sequence = ?",
                arguments: [try JSONEncoder().encode(other), Int64(first.sequence)])
        }
        let read = try store.pendingMutations()
        #expect(read.map(\.envelope) == [other])
        #expect(read.map(\.result) == [nil])
        try queue.write { db in try db.execute(sql: "DELETE FROM outbox") }
        #expect(try store.pendingMutations().isEmpty)
        try queue.close()
    }

    @Test func aMutationTheViewRefusesIsNotQueued() throws {
        let (store, now) = try Self.bootstrapped(path: temporaryPath(), lots: 1)
        do {
            try store.record(.redeemReward("voucher-20"), at: now)
            Issue.record("an overdraw was queued")
        } catch let error as LoyaltyError {
            #expect((error.cause as? MutationRejection)?.code == .insufficientPoints)
        }
        #expect(try store.pendingMutations().isEmpty)
    }

    @Test func screenQueriesOnAHundredThousandMovementsAreAnsweredFromTheView() async throws {
        // Seconds of synchronous work: done on a thread of its own, not on the shared cooperative pool that the
        // in-process servers of other tests answer on.
        let path = temporaryPath()
        let (store, now) = try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(with: Result { try Self.bootstrapped(path: path, lots: 100_000) })
            }
        }
        let balance = try #require(store.balance(at: now))
        #expect(balance.available == 100_000)
        #expect(balance.pending == 0)
        let history = try store.history(limit: 20)
        #expect(history.count == 20)
        #expect(history.map(\.at) == history.map(\.at).sorted(by: >), "newest first")
        #expect(store.offers(at: now).map(\.state) == [.available], "targeted offers only")

        // An optimistic spend shows at once, at the top of the history.
        try store.record(.redeemReward("tote-bag"), at: now)
        #expect(store.balance(at: now)?.available == 99_700)
        #expect(try store.history(limit: 1).first?.kind == .spend)
    }

    static func bootstrapped(path: String, lots: Int) throws -> (DeviceStore, Timestamp) {
        try DeviceFixture.bootstrapped(path: path, lots: lots)
    }
}

/// A wipe while the store stays open (the app keeps it open after signing out) leaves nothing of the member in the
/// files: not in the database, not in the write-ahead log.
@Suite struct WipeTests {
    @Test func aWipeLeavesNothingReadableWhileTheStoreStaysOpen() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("wipe-\(UUID().uuidString).sqlite")
            .path
        let (store, now) = try DeviceFixture.bootstrapped(path: path, lots: 300)
        try store.saveIdentity(
            DeviceIdentity(
                serverURL: "http://127.0.0.1:1", memberID: "m-wipe", deviceID: "d-wipe", cardNumber: "4000001000013",
                accessToken: "access-SECRET-4f1c9a", accessTokenExpiresAt: now.adding(.hours(1)),
                refreshToken: "d-wipe.refresh-SECRET-77b2e0"))
        _ = try store.applyPage(
            PullResponse(
                changes: [
                    Change(
                        version: 10_000,
                        operation: .upsert(
                            .profileField(
                                ProfileFieldValue(
                                    field: .email, value: "wipe-me@example.de", stamp: .zero, source: .operator))))
                ], cursor: Cursor(version: 10_000), hasMore: false, reset: false, lastProcessedSequence: 0,
                serverTime: now, serverStamp: .zero), at: now)
        let secrets = ["wipe-me@example.de", "access-SECRET-4f1c9a", "refresh-SECRET-77b2e0", "purchase:"]
        func readable() -> [String] {
            ["", "-wal", "-shm"].flatMap { suffix -> [String] in
                guard let bytes = FileManager.default.contents(atPath: path + suffix) else { return [] }
                return secrets.filter { bytes.range(of: Data($0.utf8)) != nil }.map { "\(suffix): \($0)" }
            }
        }
        #expect(!readable().isEmpty, "before the wipe the check sees the member's data")
        #expect(!readable().contains { $0.contains("SECRET") }, "no token is ever written into the database files")
        #expect(try store.identity()?.refreshToken == "d-wipe.refresh-SECRET-77b2e0", "the tokens come back")
        let tokensFile = try FileManager.default.attributesOfItem(atPath: path + ".secrets")
        #expect(tokensFile[.posixPermissions] as? Int == 0o600, "the tokens' file is the owner's alone")
        try store.wipe()
        #expect(readable() == [], "readable after the wipe, the store still open")
        #expect(try store.identity() == nil && store.view == nil)
        #expect(!FileManager.default.fileExists(atPath: path + ".secrets"), "the tokens are forgotten")
    }

    /// A mobile app's secret store (the Keychain, say) gets the tokens; the store's files never hold them.
    @Test func tokensGoToTheSecretStoreTheAppGives() throws {
        final class Keychain: SecretStore, @unchecked Sendable {
            var kept: DeviceSecrets?
            func read() throws -> DeviceSecrets? { kept }
            func write(_ secrets: DeviceSecrets?) throws { kept = secrets }
        }
        let keychain = Keychain()
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("keychain-\(UUID().uuidString).sqlite")
            .path
        let store = try DeviceStore(path: path, secrets: keychain)
        try store.saveIdentity(
            DeviceIdentity(
                serverURL: "x", memberID: "m", deviceID: "d", cardNumber: "1", accessToken: "access-KEYCHAIN",
                accessTokenExpiresAt: Timestamp(millisecondsSince1970: 0), refreshToken: "refresh-KEYCHAIN"))
        #expect(keychain.kept == DeviceSecrets(accessToken: "access-KEYCHAIN", refreshToken: "refresh-KEYCHAIN"))
        #expect(try store.identity()?.accessToken == "access-KEYCHAIN")
        #expect(!FileManager.default.fileExists(atPath: path + ".secrets"))
        let database = try #require(FileManager.default.contents(atPath: path))
        let log = FileManager.default.contents(atPath: path + "-wal") ?? Data()
        #expect(database.range(of: Data("KEYCHAIN".utf8)) == nil && log.range(of: Data("KEYCHAIN".utf8)) == nil)
        try store.wipe()
        #expect(keychain.kept == nil)
    }
}
