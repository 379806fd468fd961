import Foundation
import LoyaltyCore
import LoyaltyTesting
import Testing

@testable import LoyaltyServer

/// The devices and feed versions the embedded store keeps in memory never answer a request with what a write that
/// was already answered replaced.
@Suite struct RequestCacheTests {
    private func record(_ id: DeviceID, sequence: UInt64 = 0) -> DeviceRecord {
        DeviceRecord(
            id: id, memberID: "m-1", name: "phone", createdAt: Timestamp(millisecondsSince1970: 0),
            lastSequence: sequence, refreshHash: [1])
    }

    @Test func aReadThatBeganBeforeAWriteIsNotKept() {
        let cache = RequestCache()
        let before = cache.ticket()
        cache.forget(devices: ["d-1"])
        cache.keep(record("d-1", sequence: 1), readWith: before)
        #expect(cache.device("d-1") == nil, "the read may have seen the row before the write")

        let after = cache.ticket()
        cache.keep(record("d-1", sequence: 2), readWith: after)
        #expect(cache.device("d-1")?.lastSequence == 2)

        // A write told field by field changes the kept record, and a read that raced it does not undo that.
        let racing = cache.ticket()
        cache.update(device: "d-1") { $0.lastSequence = 3 }
        #expect(cache.device("d-1")?.lastSequence == 3)
        cache.keep(record("d-1", sequence: 2), readWith: racing)
        #expect(cache.device("d-1")?.lastSequence == 3)

        // Told of a write to a device it does not hold, it holds nothing of it, and no read begun before.
        let early = cache.ticket()
        cache.update(device: "d-2") { $0.lastSequence = 9 }
        #expect(cache.device("d-2") == nil)
        cache.keep(record("d-2", sequence: 1), readWith: early)
        #expect(cache.device("d-2") == nil)
    }

    @Test func whenFullItDropsEverythingAndKeepsNoReadBegunBefore() {
        let cache = RequestCache(limit: 3)
        let early = cache.ticket()
        for index in 0..<3 { cache.keep(record(DeviceID("d-\(index)")), readWith: cache.ticket()) }
        #expect(cache.device("d-0") != nil)
        cache.keep(record("d-3"), readWith: cache.ticket())
        #expect(cache.device("d-0") == nil && cache.device("d-3") != nil)
        cache.keep(record("d-4"), readWith: early)
        #expect(cache.device("d-4") == nil, "what raced the read may have been dropped with the rest")

        cache.raise(scope: "m-1", to: 5)
        cache.raise(scope: "*", to: 4)
        cache.raise(horizon: 0)
        #expect(cache.unchanged(member: "m-1", after: 5) != nil)
        for index in 0..<3 { cache.raise(scope: "m-\(index + 2)", to: 1) }
        #expect(cache.unchanged(member: "m-1", after: 5) == nil)
        cache.keep(heads: ["m-1": 5, "*": 4], horizon: 0, readWith: early)
        #expect(cache.unchanged(member: "m-1", after: 5) == nil)
    }

    @Test func aPageIsKnownUnchangedOnlyAtTheNewestVersionOfBothScopes() {
        let cache = RequestCache()
        #expect(cache.unchanged(member: "m-1", after: 7) == nil, "nothing known")
        cache.keep(heads: ["m-1": 7, "*": 3], horizon: 2, readWith: cache.ticket())
        #expect(cache.unchanged(member: "m-1", after: 7)?.newest == 7)
        #expect(cache.unchanged(member: "m-1", after: 6) == nil)
        #expect(cache.unchanged(member: "m-1", after: 8) == nil, "a cursor past the newest is not ours")
        #expect(cache.unchanged(member: "m-2", after: 7) == nil)

        // A read from before a write does not lower what the write raised.
        let racing = cache.ticket()
        cache.raise(scope: "*", to: 9)
        cache.keep(heads: ["m-1": 7, "*": 3], horizon: 2, readWith: racing)
        #expect(cache.unchanged(member: "m-1", after: 7) == nil)
        #expect(cache.unchanged(member: "m-1", after: 9) != nil)

        cache.raise(horizon: 10)
        #expect(cache.unchanged(member: "m-1", after: 9) == nil, "a cursor before the horizon is reset")
    }

    /// Through the store and the service: each kind of write is seen by the next request.
    @Test func everyWriteIsSeenByTheNextRequest() async throws {
        let harness = try await Harness.make()
        let service = harness.service
        let (anna, phone) = try await harness.enroll()
        let email = try #require(try await service.storage.account(member: anna.memberID)?.email)
        let (tabletSession, tablet) = try await harness.login(anna, email: email)
        let token = { (session: Session) in
            service.tokens.accessToken(
                for: .init(memberID: session.memberID, deviceID: session.deviceID), now: harness.clock.now()
            ).token
        }

        // The phone is up to date, and its next pull is answered from memory.
        var cursor = Cursor.start
        while true {
            let page = try await service.pull(
                PullRequest(deviceID: phone.id, cursor: cursor, limit: 500),
                from: try await service.authenticate(accessToken: token(anna)))
            cursor = page.cursor
            if !page.hasMore { break }
        }
        #expect(
            try #require(service.storage as? SQLiteStorage).cache.unchanged(
                member: anna.memberID, after: cursor.version) != nil)

        // The tablet pushes: the phone's next pull has the change, and the tablet's record its sequence.
        _ = try await service.push(
            PushRequest(
                deviceID: tablet.id, mutations: [harness.envelope(tablet, 1, .setConsent(.profiling, granted: true))]),
            from: try await service.authenticate(accessToken: token(tabletSession)))
        let afterPush = try await service.pull(
            PullRequest(deviceID: phone.id, cursor: cursor, limit: 500),
            from: try await service.authenticate(accessToken: token(anna)))
        #expect(!afterPush.changes.isEmpty)
        cursor = afterPush.cursor
        #expect(try await service.authenticate(accessToken: token(tabletSession)).lastSequence == 1)

        // A change to the catalogue reaches every member.
        _ = try await service.createOffer(
            Offer(
                id: "flash", title: "Flash", validFrom: harness.clock.now(),
                validUntil: harness.clock.now().adding(.days(1))))
        let afterOffer = try await service.pull(
            PullRequest(deviceID: phone.id, cursor: cursor, limit: 500),
            from: try await service.authenticate(accessToken: token(anna)))
        #expect(afterOffer.changes.map(\.key) == [EntityKey(.offer, "flash")])
        cursor = afterOffer.cursor

        // An operator's points reach the member's devices.
        _ = try await service.adjustPoints(member: anna.memberID, points: 50, reason: "goodwill")
        let afterPoints = try await service.pull(
            PullRequest(deviceID: phone.id, cursor: cursor, limit: 500),
            from: try await service.authenticate(accessToken: token(anna)))
        #expect(!afterPoints.changes.isEmpty)

        // A pull is recorded on the device as in the store.
        let pulled = try #require(try await service.authenticate(accessToken: token(anna)).lastPulledAt)
        let reopened = try SQLiteStorage(path: try #require(service.storage as? SQLiteStorage).path)
        #expect(try await reopened.device(phone.id)?.lastPulledAt == pulled)
        #expect(try await reopened.device(tablet.id) == (try await service.storage.device(tablet.id)))

        // A revoked device is refused at once, though it was just let in from memory.
        try await service.revoke(tablet.id, by: anna.memberID)
        await #expect(throws: APIFailure.self) { try await service.authenticate(accessToken: token(tabletSession)) }
    }
}
