import Foundation
import LoyaltyCore
import LoyaltyTesting
import Testing

@testable import LoyaltyServer

/// The sync service in-process on a real SQLite store.
@Suite struct SyncServiceTests {
    @Test(arguments: StorageBackend.all)
    func aRetriedPushGetsTheStoredResultsAndNoSecondEffect(backend: StorageBackend) async throws {
        let harness = try await Harness.make(backend)
        let (session, device) = try await harness.enroll()
        try await harness.give(1000, to: session.memberID)
        let push = PushRequest(
            deviceID: device.id, mutations: [harness.envelope(device, 1, .redeemReward("voucher-5"))])

        let first = try await harness.service.push(push, from: device)
        let retry = try await harness.service.push(push, from: device)

        #expect(first.codes == ["applied"])
        #expect(retry.results == first.results)
        #expect(try await harness.state(of: session.memberID).ledger.available == 500, "spent once")
        #expect(try await harness.state(of: session.memberID).vouchers.count == 1)
    }

    @Test(arguments: StorageBackend.all)
    func overlappingBatchesApplyEachMutationOnce(backend: StorageBackend) async throws {
        let harness = try await Harness.make(backend)
        let (session, device) = try await harness.enroll()
        try await harness.give(2000, to: session.memberID)
        let envelopes = (1...5).map { harness.envelope(device, UInt64($0), .redeemReward("tote-bag")) }

        _ = try await harness.service.push(
            PushRequest(deviceID: device.id, mutations: Array(envelopes[0..<3])), from: device)
        let second = try await harness.service.push(
            PushRequest(deviceID: device.id, mutations: Array(envelopes[1..<5])), from: device)

        #expect(second.results.map(\.sequence) == [2, 3, 4, 5])
        #expect(second.lastProcessedSequence == 5)
        let state = try await harness.state(of: session.memberID)
        #expect(state.ledger.available == 2000 - 5 * 300)
        #expect(state.vouchers.count == 5)
        #expect(state.rewards["tote-bag"]?.stock == 495)
    }

    @Test(arguments: StorageBackend.all)
    func aGapIsRefusedUnprocessedUntilTheMissingMutationArrives(backend: StorageBackend) async throws {
        let harness = try await Harness.make(backend)
        let (session, device) = try await harness.enroll()
        let gap = try await harness.service.push(
            PushRequest(
                deviceID: device.id, mutations: [harness.envelope(device, 2, .setConsent(.profiling, granted: true))]),
            from: device)
        #expect(gap.codes == ["out_of_order"])
        #expect(gap.lastProcessedSequence == 0)
        #expect(try await harness.state(of: session.memberID).consents.changes.isEmpty)

        let filled = try await harness.service.push(
            PushRequest(
                deviceID: device.id,
                mutations: [
                    harness.envelope(device, 1, .setConsent(.marketingEmail, granted: true)),
                    harness.envelope(device, 2, .setConsent(.profiling, granted: true)),
                ]), from: device)
        #expect(filled.codes == ["applied", "applied"])
    }

    @Test(arguments: StorageBackend.all)
    func aRejectedMutationIsProcessedAndDoesNotBlockTheQueue(backend: StorageBackend) async throws {
        let harness = try await Harness.make(backend)
        let (session, device) = try await harness.enroll()
        let response = try await harness.service.push(
            PushRequest(
                deviceID: device.id,
                mutations: [
                    harness.envelope(device, 1, .redeemReward("voucher-20")),
                    harness.envelope(device, 2, .setConsent(.marketingSMS, granted: true)),
                ]), from: device)
        #expect(response.codes == ["insufficient_points", "applied"])
        #expect(response.lastProcessedSequence == 2)
        #expect(try await harness.state(of: session.memberID).consents.isGranted(.marketingSMS))
    }

    @Test(arguments: StorageBackend.all, [2, 3])
    func concurrentPushesFromSeveralDevicesNeverSpendThePointsTwice(
        backend: StorageBackend, devices count: Int
    ) async throws {
        let harness = try await Harness.make(backend)
        let email = "shared-\(UUID().uuidString.prefix(6))@example.de"
        let (session, first) = try await harness.enroll(email)
        var devices = [first]
        for _ in 1..<count { devices.append(try await harness.login(session, email: email).1) }
        try await harness.give(1000, to: session.memberID)
        _ = try await harness.service.createReward(Reward(id: "big", title: "Big", cost: 700))

        let service = harness.service
        let pushes = devices.map {
            PushRequest(deviceID: $0.id, mutations: [harness.envelope($0, 1, .redeemReward("big"))])
        }
        let results = try await withThrowingTaskGroup(of: [String].self) { group in
            for (push, device) in zip(pushes, devices) {
                group.addTask { try await service.push(push, from: device).codes }
            }
            return try await group.reduce(into: [String]()) { $0 += $1 }
        }
        #expect(results.filter { $0 == "applied" }.count == 1)
        #expect(results.filter { $0 == "insufficient_points" }.count == count - 1)
        #expect(try await harness.state(of: session.memberID).ledger.available == 300)
    }

    @Test(arguments: StorageBackend.all)
    func pullPagesThroughTheWholeFeedWithoutGapsOrRepeats(backend: StorageBackend) async throws {
        let harness = try await Harness.make(backend)
        let (session, device) = try await harness.enroll()
        try await harness.give(800, to: session.memberID)
        var cursor = Cursor.start
        var versions: [UInt64] = []
        var pages = 0
        var mirror = MemberState(
            program: harness.settings.program,
            member: MemberRecord(id: session.memberID, createdAt: .init(millisecondsSince1970: 0)))
        while true {
            let page = try await harness.service.pull(
                PullRequest(deviceID: device.id, cursor: cursor, limit: 3), from: device)
            #expect(page.changes.count <= 3)
            #expect(!page.reset)
            versions += page.changes.map(\.version)
            for change in page.changes { mirror.apply(change) }
            cursor = page.cursor
            pages += 1
            if !page.hasMore { break }
        }
        #expect(pages > 2)
        #expect(versions == versions.sorted() && Set(versions).count == versions.count)
        let server = try await harness.state(of: session.memberID)
        #expect(mirror == server, "a device that applies every page holds the server's state")
        let again = try await harness.service.pull(
            PullRequest(deviceID: device.id, cursor: cursor, limit: 3), from: device)
        #expect(again.changes.isEmpty && !again.hasMore && again.cursor == cursor)
    }

    @Test(arguments: StorageBackend.all)
    func aPageIsNeverLargerThanTheServerLimit(backend: StorageBackend) async throws {
        let harness = try await Harness.make { $0.maxPageSize = 4 }
        let (_, device) = try await harness.enroll()
        let page = try await harness.service.pull(
            PullRequest(deviceID: device.id, cursor: .start, limit: 1000), from: device)
        #expect(page.changes.count == 4)
        #expect(page.hasMore)
    }

    @Test(arguments: StorageBackend.all)
    func aCursorOlderThanTheFeedKeepsIsAnsweredWithAReset(backend: StorageBackend) async throws {
        let harness = try await Harness.make(backend)
        let (session, device) = try await harness.enroll()
        let first = try await harness.service.pull(
            PullRequest(deviceID: device.id, cursor: .start, limit: 500), from: device)
        try harness.clock.advance(by: .days(40))
        try await harness.give(100, to: session.memberID)
        try await harness.service.compactFeed()

        // As over HTTP, the device record is loaded afresh for each call.
        let returning = try await harness.service.authenticate(
            accessToken: harness.service.tokens.accessToken(
                for: .init(memberID: session.memberID, deviceID: device.id), now: harness.clock.now()
            ).token)
        let stale = try await harness.service.pull(
            PullRequest(deviceID: device.id, cursor: first.cursor, limit: 500), from: returning)
        #expect(stale.reset)
        #expect(stale.changes.first?.version ?? 0 <= first.cursor.version, "a reset starts from the beginning")
        let foreign = try await harness.service.pull(
            PullRequest(deviceID: device.id, cursor: Cursor(version: 9_999_999), limit: 5), from: returning)
        #expect(foreign.reset, "a cursor from another store resets too")
    }

    @Test(arguments: StorageBackend.all)
    func aDeviceThatPullsRegularlyIsNeverReset(backend: StorageBackend) async throws {
        let harness = try await Harness.make(backend)
        let (session, device) = try await harness.enroll()
        let token = {
            harness.service.tokens.accessToken(
                for: .init(memberID: session.memberID, deviceID: device.id), now: harness.clock.now()
            ).token
        }
        var cursor = Cursor.start
        for _ in 0..<4 {
            let current = try await harness.service.authenticate(accessToken: token())
            let page = try await harness.service.pull(
                PullRequest(deviceID: device.id, cursor: cursor, limit: 500), from: current)
            #expect(!page.reset)
            cursor = page.cursor
            try harness.clock.advance(by: .days(5))
            try await harness.give(10, to: session.memberID)  // and 15 more days: 20 between pulls, within 30
            try await harness.service.compactFeed()
        }
    }

    @Test(arguments: StorageBackend.all)
    func theJobsAreIdempotentAndSafeToRepeat(backend: StorageBackend) async throws {
        let harness = try await Harness.make(backend)
        let (session, _) = try await harness.enroll()
        _ = try await harness.service.recordPurchase(
            amount: "300.00", card: nil, member: session.memberID.rawValue, receiptCode: nil, transaction: "T-1")
        try harness.clock.advance(by: .days(15))
        let first = try await harness.service.run(.unlock)
        let second = try await harness.service.run(.unlock)
        #expect(first.movements == 1 && first.members == 1)
        #expect(second.movements == 0 && second.members == 0)
        try harness.clock.advance(by: .days(800))
        #expect(try await harness.service.run(.expire).movements == 1)
        #expect(try await harness.service.run(.expire).movements == 0)
        #expect(try await harness.state(of: session.memberID).ledger.available == 0)
    }

    @Test(arguments: StorageBackend.all)
    func aTransactionIsCreditedOnceAndAReturnRevokesItsPoints(backend: StorageBackend) async throws {
        let harness = try await Harness.make(backend)
        let (session, _) = try await harness.enroll()
        let card = session.cardNumber.digits
        let purchase = try await harness.service.recordPurchase(
            amount: "80.00", card: card, member: nil, receiptCode: "R-7001", transaction: "T-9")
        #expect(purchase.points == 80)
        await #expect(throws: APIFailure.self) {
            try await harness.service.recordPurchase(
                amount: "80.00", card: card, member: nil, receiptCode: nil, transaction: "T-9")
        }
        let returned = try await harness.service.recordReturn(
            amount: "20.00", receiptCode: "R-7001", transaction: nil, returnID: "RT-1")
        #expect(returned.points == 20)
        #expect(try await harness.state(of: session.memberID).ledger.pendingPoints == 60)
        await #expect(throws: APIFailure.self) {
            try await harness.service.recordReturn(
                amount: "20.00", receiptCode: "R-7001", transaction: nil, returnID: "RT-1")
        }
    }

    @Test(arguments: StorageBackend.all)
    func aReceiptEarnsOnceForWhoeverClaimsItFirst(backend: StorageBackend) async throws {
        let harness = try await Harness.make(backend)
        let (anna, annaDevice) = try await harness.enroll()
        let (jonas, jonasDevice) = try await harness.enroll()
        _ = try await harness.service.issueReceipt(amount: "42.50", code: "R-4250", shop: nil, purchasedAt: nil)
        let first = try await harness.service.push(
            PushRequest(
                deviceID: annaDevice.id, mutations: [harness.envelope(annaDevice, 1, .claimReceipt(code: "R-4250"))]),
            from: annaDevice)
        let second = try await harness.service.push(
            PushRequest(
                deviceID: jonasDevice.id, mutations: [harness.envelope(jonasDevice, 1, .claimReceipt(code: "R-4250"))]),
            from: jonasDevice)
        #expect(first.codes == ["applied"])
        #expect(second.codes == ["receipt_already_claimed"])
        #expect(try await harness.state(of: anna.memberID).ledger.pendingPoints == 42)
        #expect(try await harness.state(of: jonas.memberID).ledger.pendingPoints == 0)
    }

    @Test(arguments: StorageBackend.all)
    func aBlockedCardEarnsNothingAndAReplacementDoes(backend: StorageBackend) async throws {
        let harness = try await Harness.make(backend)
        let (session, _) = try await harness.enroll()
        let replacement = try await harness.service.replaceCard(member: session.memberID)
        await #expect(throws: APIFailure.self) {
            try await harness.service.recordPurchase(
                amount: "10.00", card: session.cardNumber.digits, member: nil, receiptCode: nil, transaction: nil)
        }
        let credited = try await harness.service.recordPurchase(
            amount: "10.00", card: replacement.number, member: nil, receiptCode: nil, transaction: nil)
        #expect(credited.points == 10)
    }

    @Test(arguments: StorageBackend.all)
    func theServerJudgesAnOfferAtTheTimeTheDeviceActedWithinGrace(backend: StorageBackend) async throws {
        let harness = try await Harness.make(backend)
        let (_, device) = try await harness.enroll()
        _ = try await harness.service.createOffer(
            Offer(
                id: "flash", title: "Flash", validFrom: harness.clock.now().adding(.days(-1)),
                validUntil: harness.clock.now().adding(.hours(1))))
        let actedAt = harness.clock.now().adding(.minutes(30))
        try harness.clock.advance(by: .hours(5))
        let response = try await harness.service.push(
            PushRequest(
                deviceID: device.id, mutations: [harness.envelope(device, 1, .activateOffer("flash"), at: actedAt)]),
            from: device)
        #expect(response.codes == ["applied"], "acted before expiry, synced within the 72h grace")
    }
}
