import Foundation
import LoyaltyAnalysis
import LoyaltyCore
import LoyaltyTesting
import Testing

@testable import LoyaltyServer

/// A member's timeline on both backends: every touchpoint the member met, newest first, with its channel and place.
@Suite struct TimelineTests {
    @Test(arguments: StorageBackend.all)
    func theTimelineNamesEachEventsChannelAndPlace(backend: StorageBackend) async throws {
        let harness = try await TestServer.make(backend)
        let service = harness.service
        let (session, device) = try await harness.enroll()
        let member = session.memberID
        try harness.clock.advance(by: .minutes(1))
        _ = try await service.recordPurchase(
            amount: "42.00", card: nil, member: member.rawValue, receiptCode: nil, transaction: "T-timeline")
        try harness.clock.advance(by: .minutes(1))
        _ = try await service.issueReceipt(
            amount: "10.00", code: "R-TIMELINE", shop: "Köln Ehrenfeld", purchasedAt: nil)
        _ = try await service.push(
            PushRequest(
                deviceID: device.id,
                mutations: [
                    harness.envelope(device, 1, .claimReceipt(code: "R-TIMELINE")),
                    harness.envelope(device, 2, .setConsent(.marketingPush, granted: true)),
                ]), from: device)
        try harness.clock.advance(by: .minutes(1))
        _ = try await service.adjustPoints(member: member, points: 5, reason: "goodwill after a complaint")

        let events = try await service.timeline(of: member, limit: 100)
        #expect(events.map(\.at) == events.map(\.at).sorted(by: >), "newest first")
        let purchase = try #require(events.first { $0.detail.contains("T-timeline") })
        #expect(purchase.channel == .till && purchase.kind == "earn" && purchase.points == 42)
        let receipt = try #require(events.first { $0.detail.contains("R-TIMELINE") })
        #expect(receipt.channel == .app && receipt.place == "Köln Ehrenfeld")
        let consent = try #require(events.first { $0.kind == "consent" })
        #expect(consent.channel == .app && consent.place == device.id.rawValue)
        #expect(consent.detail == "marketing-push granted")
        let adjustment = try #require(events.first { $0.kind == "adjustment" })
        #expect(adjustment.channel == .operator && adjustment.points == 5)
        #expect(events.last?.kind == "enrolment")
        #expect(try await service.timeline(of: member, limit: 2).count == 2)
        await #expect(throws: APIFailure.self) { try await service.timeline(of: MemberID("m-nobody"), limit: 10) }
        await #expect(throws: APIFailure.self) { try await service.timeline(of: member, limit: 0) }
    }
}
