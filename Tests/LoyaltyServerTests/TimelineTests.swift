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
            amount: "42.00", card: nil, member: member.rawValue, receiptCode: nil, transaction: "T-timeline",
            shop: "Berlin Mitte", categories: ["food", "drugstore"])
        _ = try await service.recordPurchase(
            amount: "9.00", card: nil, member: member.rawValue, receiptCode: nil, transaction: "T-no-shop")
        _ = try await service.recordReturn(
            amount: "21.00", receiptCode: nil, transaction: "T-timeline", returnID: "RT-timeline", shop: "Potsdam",
            categories: ["food"])
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
        let purchase = try #require(events.first { $0.kind == "earn" && $0.detail.contains("T-timeline") })
        #expect(purchase.channel == .till && purchase.kind == "earn" && purchase.points == 42)
        #expect(purchase.place == "Berlin Mitte" && purchase.detail == "purchase T-timeline (food, drugstore)")
        let returned = try #require(events.first { $0.kind == "reversal" })
        #expect(returned.channel == .till && returned.place == "Potsdam" && returned.points == -21)
        #expect(returned.detail == "return RT-timeline (food)")
        let unknownShop = try #require(events.first { $0.detail.contains("T-no-shop") })
        #expect(unknownShop.channel == .till && unknownShop.place == nil, "a till that said no shop: none")
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

    @Test func aTillsShopAndCategoriesAreChecked() async throws {
        let harness = try await TestServer.make(.sqlite)
        let (session, _) = try await harness.enroll()
        let member = session.memberID.rawValue
        let refusals: [(String?, [String], String)] = [
            (String(repeating: "x", count: 65), [], "shop must be 1 to 64 characters"),
            ("", [], "shop must be 1 to 64 characters"),
            ("Berlin\u{7}", [], "without control characters"),
            ("Berlin", ["Food"], "category 'Food' must be 1 to 32 lower-case letters"),
            ("Berlin", ["food", "food"], "at most 10, each once"),
            ("Berlin", (0..<11).map { "c\($0)" }, "at most 10, each once"),
        ]
        for (index, (shop, categories, message)) in refusals.enumerated() {
            do {
                _ = try await harness.service.recordPurchase(
                    amount: "5.00", card: nil, member: member, receiptCode: nil, transaction: "T-bad-\(index)",
                    shop: shop, categories: categories)
                Issue.record("\(shop ?? "nil") \(categories) was accepted")
            } catch let failure as APIFailure {
                #expect(failure.kind == .unprocessable && failure.message.contains(message), "\(failure.message)")
            }
            #expect(try await harness.service.storage.transaction(TransactionID("T-bad-\(index)")) == nil)
        }
        let stored = try await harness.service.recordPurchase(
            amount: "5.00", card: nil, member: member, receiptCode: nil, transaction: "T-good",
            shop: String(repeating: "ß", count: 64), categories: ["food", "drug-store", "x1"])
        #expect(stored.points == 5)
        let record = try #require(try await harness.service.storage.transaction(TransactionID("T-good")))
        #expect(record.shop?.count == 64 && record.categories == ["food", "drug-store", "x1"])
    }
}
