import Foundation
import LoyaltyCore
import LoyaltySQLite
import LoyaltyTesting
import Synchronization
import Testing

@testable import LoyaltyServer

/// Units of work that wait for SQLite's writer are committed together, each in a savepoint of its own.
@Suite struct GroupCommitTests {
    @Test func unitsWaitingForTheWriterAreCommittedTogetherAndAFailingOneRollsBackAlone() async throws {
        let harness = try await Harness.make()
        let storage = try #require(harness.service.storage as? SQLiteStorage)
        let (anna, annaDevice) = try await harness.enroll()
        let (ben, benDevice) = try await harness.enroll()
        let (_, revoked) = try await harness.enroll()
        try await harness.service.revoke(revoked.id, by: revoked.memberID)
        let before = storage.writer.statistics

        // The writer is held by a unit of work on the catalogue until every unit below is waiting for it.
        let release = DispatchSemaphore(value: 0)
        let (entered, enteredSignal) = AsyncStream<Void>.makeStream()
        let holder = Task {
            try await storage.withCatalogue(now: harness.clock.now()) { _ in
                enteredSignal.yield()
                release.wait()
            }
        }
        for await _ in entered { break }

        let service = harness.service
        let pushAnna = Task {
            try await service.push(
                PushRequest(
                    deviceID: annaDevice.id,
                    mutations: (1...3).map {
                        harness.envelope(annaDevice, $0, .setConsent(.marketingEmail, granted: $0 % 2 == 1))
                    }), from: annaDevice)
        }
        let pushBen = Task {
            try await service.push(
                PushRequest(
                    deviceID: benDevice.id,
                    mutations: (1...2).map { harness.envelope(benDevice, $0, .setConsent(.profiling, granted: true)) }),
                from: benDevice)
        }
        let pushRevoked = Task {
            try await service.push(
                PushRequest(
                    deviceID: revoked.id,
                    mutations: [harness.envelope(revoked, 1, .setConsent(.profiling, granted: true))]),
                from: revoked)
        }
        // A unit whose writes fail halfway (its entities are written, then the card it registers is Ben's): what it
        // wrote must not be committed with the others.
        let failing = Task {
            try await storage.withMember(MemberWorkRequest(memberID: anna.memberID, now: harness.clock.now())) { work in
                let envelope = harness.envelope(annaDevice, 99, .setConsent(.marketingSMS, granted: true))
                let outcome = work.state.apply(
                    envelope,
                    context: .server(
                        now: work.now, claimedActedAt: work.now, grace: .hours(1), notBefore: nil, facts: ServerFacts())
                )
                work.write(outcome.changes)
                #expect(!outcome.changes.isEmpty)
                work.register(card: ben.cardNumber)
            }
        }
        for _ in 0..<2000 where storage.writer.waiting + storage.writer.statistics.units - before.units < 4 {
            try await Task.sleep(for: .milliseconds(5))
        }
        #expect(storage.writer.waiting + storage.writer.statistics.units - before.units == 4)
        release.signal()
        try await holder.value

        let annaAnswer = try await pushAnna.value
        #expect(annaAnswer.lastProcessedSequence == 3)
        #expect(annaAnswer.codes == ["applied", "applied", "applied"])
        #expect(try await pushBen.value.lastProcessedSequence == 2)
        await #expect(throws: APIFailure.self) { try await pushRevoked.value }
        await #expect(throws: LoyaltyError.self) { try await failing.value }

        let after = storage.writer.statistics
        #expect(after.units - before.units == 4)
        // The first unit may have been taken alone before the others arrived; the rest share one commit.
        #expect(after.commits - before.commits <= 2)

        // What was committed, read back from a second connection to the same file.
        let reopened = try SQLiteStorage(path: storage.path)
        let annaState = try await reopened.withMember(
            MemberWorkRequest(memberID: anna.memberID, now: harness.clock.now())
        ) { $0.state }
        #expect(annaState.consents.current(.marketingEmail)?.granted == true)
        #expect(annaState.consents.current(.marketingSMS) == nil)
        let benState = try await reopened.withMember(
            MemberWorkRequest(memberID: ben.memberID, now: harness.clock.now())
        ) { $0.state }
        #expect(benState.consents.current(.profiling)?.granted == true)
        #expect(try await reopened.device(annaDevice.id)?.lastSequence == 3)
        #expect(try await reopened.device(benDevice.id)?.lastSequence == 2)
        #expect(try await reopened.device(revoked.id)?.lastSequence == 0)

        // The states the group left are the ones later units start from: the same as loading them afresh.
        let cached = try await storage.withMember(
            MemberWorkRequest(memberID: anna.memberID, now: harness.clock.now())
        ) { $0.state }
        #expect(cached == annaState)
    }

    @Test func manyConcurrentPushesOfManyDevicesAreEachAppliedOnce() async throws {
        let harness = try await Harness.make()
        let storage = try #require(harness.service.storage as? SQLiteStorage)
        var devices: [DeviceRecord] = []
        for _ in 0..<12 { devices.append(try await harness.enroll().1) }
        let before = storage.writer.statistics
        let service = harness.service
        try await withThrowingTaskGroup(of: Void.self) { group in
            for device in devices {
                group.addTask {
                    for round in 0..<5 {
                        let first = UInt64(round * 4 + 1)
                        let mutations = (first..<first + 4).map {
                            harness.envelope(device, $0, .setConsent(.marketingPush, granted: $0 % 2 == 0))
                        }
                        // Each push is sent twice, the second time as a retry of a lost answer.
                        for _ in 0..<2 {
                            let answer = try await service.push(
                                PushRequest(deviceID: device.id, mutations: mutations), from: device)
                            #expect(answer.lastProcessedSequence == first + 3)
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        let after = storage.writer.statistics
        #expect(after.units - before.units == 12 * 5 * 2)
        let reopened = try SQLiteStorage(path: storage.path)
        for device in devices {
            #expect(try await reopened.device(device.id)?.lastSequence == 20)
            let state = try await reopened.withMember(
                MemberWorkRequest(memberID: device.memberID, now: harness.clock.now())
            ) { $0.state }
            #expect(state.consents.current(.marketingPush)?.granted == true)
            #expect(state.consents.changes.filter { $0.kind == .marketingPush }.count == 20)
        }
    }
}

extension GroupCommitTests {
    @Test func theLogIsCopiedIntoTheDatabaseFileBesideTheWriter() async throws {
        let harness = try await Harness.make()
        let storage = try #require(harness.service.storage as? SQLiteStorage)
        let checkpointer = try #require(storage.writer.checkpointer)
        let (_, device) = try await harness.enroll()
        for push in 0..<UInt64(4) {
            _ = try await harness.service.push(
                PushRequest(
                    deviceID: device.id,
                    mutations: [harness.envelope(device, push + 1, .setConsent(.profiling, granted: push % 2 == 0))]),
                from: device)
        }
        for _ in 0..<2000 where checkpointer.checkpoints < 2 { try await Task.sleep(for: .milliseconds(5)) }
        #expect(checkpointer.checkpoints >= 2)
        // The database file alone, without its log: what the checkpoints copied into it. The writer's own
        // checkpoint threshold is far above these few pages, so only the checkpointer can have copied them.
        let copy = FileManager.default.temporaryDirectory.appendingPathComponent("checkpointed-\(UUID()).sqlite")
        try FileManager.default.copyItem(atPath: storage.path, toPath: copy.path)
        defer { try? FileManager.default.removeItem(at: copy) }
        let alone = try SQLiteStorage(path: copy.path)
        let last = try await alone.device(device.id)?.lastSequence ?? 0
        #expect(last >= 2)
    }

    @Test func aLongLogStartsOverOnceTheCheckpointerHasCaughtUp() async throws {
        let harness = try await Harness.make()
        let storage = try #require(harness.service.storage as? SQLiteStorage)
        let checkpointer = try #require(storage.writer.checkpointer)
        checkpointer.restart(after: 16)
        let (_, device) = try await harness.enroll()
        let pushes = 150
        for push in 1...UInt64(pushes) {
            _ = try await harness.service.push(
                PushRequest(
                    deviceID: device.id,
                    mutations: [harness.envelope(device, push, .setConsent(.profiling, granted: push % 2 == 0))]),
                from: device)
        }
        // Each push wrote pages of its own (a consent change, its result, the device's sequence): without the log
        // starting over, the file would hold every one of them (over 450 frames). The bound leaves room for a
        // checkpoint that a loaded machine ran late (107 frames were seen in a full test run).
        let log = try #require(
            try FileManager.default.attributesOfItem(atPath: storage.path + "-wal")[.size] as? Int)
        let frame = 4_096 + 24
        #expect(checkpointer.restarts > 0)
        #expect(log < 200 * frame, "the log holds \(log / frame) frames after \(pushes) pushes")
        #expect(try await storage.device(device.id)?.lastSequence == UInt64(pushes))
    }
}
