import Foundation
import LoyaltyAPI
import LoyaltyCore
import LoyaltyTesting
import Testing

@testable import LoyaltyServer

/// The feed's entities against docs/openapi.yaml's schema of each kind: a member who does everything a member can
/// (two devices, purchases, a return, a tier, an allowance, a claimed receipt, offers activated and redeemed, a
/// reward, a survey answered, profile edits that conflict, consents) pulls the whole feed, and every entity of every
/// kind decodes strictly with the contract's generated type for its kind (no field unknown to the schema, none it
/// requires missing, each of its type) and comes back from that type to the same `LoyaltyCore` entity. So the
/// contract cannot drift from the Codable types the server writes.
@Suite struct EntitySchemaTests {
    /// Every change of the feed a member's device pulls after doing everything.
    static func everything() async throws -> [Change] { try await everythingDone().changes }

    /// A member who did everything, on a server, with the first device's session and the feed it pulls.
    static func everythingDone() async throws -> (harness: Harness, session: Session, changes: [Change]) {
        let harness = try await Harness.make()
        let service = harness.service
        let email = "everything@example.de"
        let (session, phone) = try await harness.enroll(email)
        let (_, tablet) = try await harness.login(session, email: email)
        let member = session.memberID
        try await harness.give(2_000, to: member)
        // Points spent and then returned: the member owes some (the account entity).
        _ = try await service.recordPurchase(
            amount: "500.00", card: nil, member: member.rawValue, receiptCode: nil, transaction: "T-spent")
        try harness.clock.advance(by: .days(15))
        _ = try await service.run(.unlock)
        _ = try await service.redeemAtTill(points: 2_400, card: nil, member: member.rawValue, transaction: "T-till")
        _ = try await service.recordReturn(
            amount: "500.00", receiptCode: nil, transaction: "T-spent", returnID: "RT-spent")
        // More points: what is owed is settled from them, and there is enough for a reward and an allowance.
        try await harness.give(2_000, to: member)
        _ = try await service.recordPurchase(
            amount: "1500.00", card: nil, member: member.rawValue, receiptCode: nil, transaction: "T-big")
        _ = try await service.recordReturn(
            amount: "100.00", receiptCode: nil, transaction: "T-big", returnID: "RT-big")
        _ = try await service.issueReceipt(amount: "12.00", code: "R-SCHEMA", shop: "Köln", purchasedAt: nil)
        let now = harness.clock.now()
        let base = HLCTimestamp(wallMilliseconds: now.millisecondsSince1970, counter: 0)
        _ = try await service.push(
            PushRequest(
                deviceID: phone.id,
                mutations: [
                    harness.envelope(phone, 1, .claimReceipt(code: "R-SCHEMA")),
                    harness.envelope(phone, 2, .activateOffer(OfferID("welcome-10"))),
                    harness.envelope(phone, 3, .redeemOffer(OfferID("welcome-10"))),
                    harness.envelope(phone, 4, .redeemReward(RewardID("tote-bag"))),
                    harness.envelope(
                        phone, 5,
                        .answerSurvey(SurveyID("store-visit"), answers: ["rating": "4", "store": "Hamburg"])),
                    harness.envelope(phone, 6, .setConsent(.marketingPush, granted: true)),
                    harness.envelope(
                        phone, 7, .setProfileField(.address, value: "Domplatz 1, 50667 Köln", basedOn: base)),
                ]), from: phone)
        // The tablet edits the same field from what it saw before: one of the two loses, and a conflict is kept.
        _ = try await service.push(
            PushRequest(
                deviceID: tablet.id,
                mutations: [
                    harness.envelope(tablet, 1, .setProfileField(.address, value: "Markt 1, 53111 Bonn", basedOn: base))
                ]),
            from: tablet)
        let device = try #require(try await service.storage.device(phone.id))
        var changes: [Change] = []
        var cursor = Cursor.start
        while true {
            let page = try await service.pull(
                PullRequest(
                    deviceID: phone.id, cursor: cursor, limit: 500,
                    allowance: AllowanceRequest(release: nil, through: 7)),
                from: device)
            changes += page.changes
            guard page.hasMore else { break }
            cursor = page.cursor
        }
        return (harness, session, changes)
    }

    @Test func everyEntityOfEveryKindIsItsKindsSchemaBothWays() async throws {
        let changes = try await Self.everything()
        var seen = Set<EntityKey.Kind>()
        for change in changes {
            guard case .upsert(let entity) = change.operation else { continue }
            let kind = change.key.kind
            seen.insert(kind)
            let json = try entity.payloadJSON()
            // JSON → the contract's type (strictly) → JSON → the same entity, and the same JSON object.
            let wire = try Change.wireEntity(kind: kind, json: json)
            let (stated, back) = try Change.json(of: wire)
            #expect(stated == kind)
            #expect(try Entity.decode(kind: kind, json: back) == entity, "\(kind) does not come back the same")
            let original = try JSONSerialization.jsonObject(with: json) as? NSDictionary
            let returned = try JSONSerialization.jsonObject(with: back) as? NSDictionary
            #expect(original == returned, "\(kind): \(String(decoding: json, as: UTF8.self))")
            // And through the change's wire form, as a generated client reads it.
            #expect(try Change(wire: change.wire()) == change)
        }
        #expect(
            seen == Set(EntityKey.Kind.allCases),
            "kinds never written: \(Set(EntityKey.Kind.allCases).subtracting(seen))")
    }

    /// The schemas are strict: what the server does not write is refused.
    @Test func aFieldTheSchemaDoesNotNameOrAMissingOneIsRefused() throws {
        let tier = #"{"tierID":"gold","since":1797980455486,"qualifyingPoints":3412}"#
        #expect(throws: Never.self) { try Change.wireEntity(kind: .tier, json: Data(tier.utf8)) }
        let extra = #"{"tierID":"gold","since":1797980455486,"qualifyingPoints":3412,"colour":"gold"}"#
        #expect(throws: (any Error).self) { try Change.wireEntity(kind: .tier, json: Data(extra.utf8)) }
        let missing = #"{"tierID":"gold","since":1797980455486}"#
        #expect(throws: (any Error).self) { try Change.wireEntity(kind: .tier, json: Data(missing.utf8)) }
        let wrongType = #"{"tierID":"gold","since":"yesterday","qualifyingPoints":3412}"#
        #expect(throws: (any Error).self) { try Change.wireEntity(kind: .tier, json: Data(wrongType.utf8)) }
        let unknownStatus = #"{"id":"m-1","status":"sleeping","segments":[],"createdAt":1}"#
        #expect(throws: (any Error).self) { try Change.wireEntity(kind: .member, json: Data(unknownStatus.utf8)) }
    }
}
