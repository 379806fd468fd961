import Foundation
import LoyaltyCore
import LoyaltyTesting
import Testing

@testable import LoyaltyServer

/// Blocking a member (docs/privacy.md, "Blocking") on both backends: points actions refused from the devices and at
/// the till, the devices' allowances returned and no new one granted, consents and the profile still the member's;
/// unblocking restores everything; bad reasons, unknown and erased members refused.
@Suite struct BlockingTests {
    static func pull(_ harness: Harness, _ device: DeviceRecord, through: UInt64) async throws -> PullResponse {
        try await harness.service.pull(
            PullRequest(
                deviceID: device.id, cursor: .start, limit: 500,
                allowance: AllowanceRequest(release: nil, through: through)),
            from: try #require(try await harness.service.storage.device(device.id)))
    }

    @Test(arguments: StorageBackend.all)
    func aBlockedMemberCanReadAndKeepTheirRightsButNotTakePart(backend: StorageBackend) async throws {
        let harness = try await TestServer.make(backend)
        let service = harness.service
        let (session, phone) = try await harness.enroll()
        let member = session.memberID
        try await harness.give(1_000, to: member)
        _ = try await Self.pull(harness, phone, through: 0)
        let held = try await harness.state(of: member).allowances[phone.id]
        #expect(held?.status == .held && (held?.points ?? 0) > 0, "the phone holds an allowance")

        try await service.blockMember(member, reason: "  Card reported lost; please call the service desk.  ")
        var state = try await harness.state(of: member)
        #expect(state.member.status == .blocked)
        #expect(state.member.statusReason == "Card reported lost; please call the service desk.")
        #expect(state.allowances[phone.id]?.status == .revoked, "the reserved points return to the balance")
        #expect(state.ledger.available == 1_000, "no point is lost by a block")

        let answer = try await service.push(
            PushRequest(
                deviceID: phone.id,
                mutations: [
                    harness.envelope(phone, 1, .redeemReward(RewardID("tote-bag"))),
                    harness.envelope(phone, 2, .setConsent(.marketingPush, granted: false)),
                    harness.envelope(phone, 3, .setProfileField(.phone, value: "+49 30 1234567", basedOn: nil)),
                    harness.envelope(phone, 4, .activateOffer(OfferID("welcome-10"))),
                ]), from: phone)
        let statuses = answer.results.map(\.status)
        guard case .rejected(let refusal) = statuses[0] else {
            Issue.record("a reward redeemed while blocked: \(statuses[0])")
            return
        }
        #expect(refusal.message.contains("blocked"), "\(refusal.message)")
        #expect(statuses[1] == .applied && statuses[2] == .applied, "consents and the profile stay the member's")
        if case .rejected = statuses[3] {} else { Issue.record("an offer activated while blocked: \(statuses[3])") }
        await #expect(throws: APIFailure.self) {
            try await service.recordPurchase(
                amount: "20.00", card: session.cardNumber.digits, member: nil, receiptCode: nil, transaction: "T-b1")
        }
        await #expect(throws: APIFailure.self) {
            try await service.redeemAtTill(points: 200, card: session.cardNumber.digits, member: nil, transaction: nil)
        }
        let pulled = try await Self.pull(harness, phone, through: 4)
        #expect(!pulled.changes.contains { $0.key == EntityKey(.allowance, phone.id.rawValue) && !$0.isRevoked })
        state = try await harness.state(of: member)
        #expect(state.allowances[phone.id]?.status == .revoked, "no allowance while blocked")

        // Blocking again changes nothing but the reason; unblocking restores taking part.
        try await service.blockMember(member, reason: "Card reported lost; please call the service desk.")
        try await service.unblockMember(member)
        state = try await harness.state(of: member)
        #expect(state.member.status == .active && state.member.statusReason == nil)
        let purchase = try await service.recordPurchase(
            amount: "20.00", card: session.cardNumber.digits, member: nil, receiptCode: nil, transaction: "T-b2")
        #expect(purchase.points == 20)
        try await service.unblockMember(member)  // not blocked: nothing to do
    }

    @Test func badBlocksAreRefused() async throws {
        let harness = try await TestServer.make(.sqlite)
        let (session, _) = try await harness.enroll()
        for reason in ["", "   ", String(repeating: "x", count: 501), "line\nbreak"] {
            await #expect(throws: APIFailure.self) {
                try await harness.service.blockMember(session.memberID, reason: reason)
            }
        }
        #expect(try await harness.state(of: session.memberID).member.status == .active)
        await #expect(throws: APIFailure.self) {
            try await harness.service.blockMember(MemberID("m-nobody"), reason: "fraud")
        }
        try await harness.service.storage.withMember(
            MemberWorkRequest(memberID: session.memberID, now: harness.clock.now())
        ) { work in work.write(work.state.setStatus(.erased)) }
        do {
            try await harness.service.blockMember(session.memberID, reason: "fraud")
            Issue.record("an erased member was blocked")
        } catch let failure as APIFailure {
            #expect(failure.kind == .conflict && failure.message.contains("erased"), "\(failure.message)")
        }
    }
}

extension Change {
    /// Whether this change is an allowance no longer held.
    fileprivate var isRevoked: Bool {
        if case .upsert(.allowance(let allowance)) = operation { return allowance.status != .held }
        return false
    }
}
