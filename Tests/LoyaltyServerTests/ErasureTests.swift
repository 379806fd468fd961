import Foundation
import LoyaltyAnalysis
import LoyaltyCore
import LoyaltyTesting
import Testing

@testable import LoyaltyServer

/// Erasure at the service desk (docs/privacy.md, "Erasure") on both backends: personal data removed, the books kept,
/// points forfeited as a movement of their own that the KPIs show, every device signed out (a device's queued
/// changes are refused and nothing of them stored), the card refused at the till, idempotent, and the e-mail free
/// to enrol again as a new member.
@Suite struct ErasureTests {
    @Test(arguments: StorageBackend.all)
    func anErasedMemberKeepsOnlyThePseudonymousBooks(backend: StorageBackend) async throws {
        let harness = try await TestServer.make(backend)
        let service = harness.service
        let email = "erase-me-\(backend)@example.de"
        let (session, phone) = try await harness.enroll(email)
        let (_, tablet) = try await harness.login(session, email: email)
        let member = session.memberID
        try await harness.give(1_000, to: member)
        _ = try await service.recordPurchase(
            amount: "50.00", card: nil, member: member.rawValue, receiptCode: nil, transaction: "T-erase",
            shop: "Berlin Mitte", categories: ["food"])
        _ = try await service.push(
            PushRequest(
                deviceID: phone.id,
                mutations: [
                    harness.envelope(phone, 1, .setProfileField(.phone, value: "+49 30 5550100", basedOn: nil)),
                    harness.envelope(phone, 2, .setConsent(.profiling, granted: true)),
                    harness.envelope(
                        phone, 3, .answerSurvey(SurveyID("store-visit"), answers: ["rating": "5", "store": "Hamburg"])),
                ]), from: phone)
        _ = try await service.run(.segment)
        let before = try await service.programmeReport(from: nil, to: nil, by: .month)
        let held = try await harness.state(of: member).balance(at: service.now)
        let points = held.available + held.pending
        #expect(points == 1_050 + 50, "1,000 given, 50 for the purchase, 50 for the survey")

        let report = try await service.eraseMember(member, reason: "Request by e-mail of 2026-12-01")
        #expect(report == ErasureReport(pointsForfeited: points, devicesRevoked: 2))
        let state = try await harness.state(of: member)
        #expect(state.member.status == .erased && state.member.segments.isEmpty)
        #expect(state.profile.values.allSatisfy { $0.value == nil }, "no profile value is left")
        #expect(state.surveyResponses.values.allSatisfy { $0.answers.isEmpty })
        #expect(state.cards.values.allSatisfy { $0.status != .active })
        #expect(state.balance(at: service.now).available == 0 && state.balance(at: service.now).pending == 0)
        #expect(state.consents.changes.count == 1, "the consent history stays as proof")
        #expect(state.ledger.lots.count == 3, "the lots keep their amounts and dates")
        let account = try #require(try await service.storage.account(member: member))
        #expect(account.email != email && account.email.hasSuffix("@erased.invalid") && account.signInBlocked)
        let devices = try await service.storage.devices(member: member)
        #expect(devices.allSatisfy { $0.revokedAt != nil && $0.name == "erased" })
        #expect(try await service.storage.transaction(TransactionID("T-erase"))?.shop == "Berlin Mitte")

        // The tablet had a change queued offline: refused, and nothing of it stored.
        await #expect(throws: APIFailure.self) {
            try await service.push(
                PushRequest(
                    deviceID: tablet.id,
                    mutations: [harness.envelope(tablet, 1, .setProfileField(.name, value: "Anna S.", basedOn: nil))]),
                from: tablet)
        }
        #expect(try await harness.state(of: member).profile[.name]?.value == nil)
        // The till refuses the card; a second erasure changes nothing.
        await #expect(throws: APIFailure.self) {
            try await service.recordPurchase(
                amount: "10.00", card: session.cardNumber.digits, member: nil, receiptCode: nil, transaction: nil)
        }
        #expect(
            try await service.eraseMember(member, reason: "again")
                == ErasureReport(pointsForfeited: 0, devicesRevoked: 0))
        #expect(try await harness.state(of: member) == state)

        // The KPIs show the forfeit on its own, and the liability goes down by it; the sums still add up.
        _ = try await service.run(.segment)
        let after = try await service.programmeReport(from: nil, to: nil, by: .month)
        #expect(after.headline.pointsForfeited == Int64(points))
        #expect(after.headline.liabilityPoints == before.headline.liabilityPoints - Int64(points))
        #expect(after.headline.profiledMembers == before.headline.profiledMembers - 1)
        #expect(
            try await service.storage.analysis.programmeFigures() == (try await service.recomputedProgrammeFigures()))
        #expect(try await service.memberAnalysis(member)?.figures == nil, "no figures of an erased member")

        // The address may enrol again, as a new member with nothing of the old one.
        let again = try await service.enroll(
            Registration(name: "Anna Schmidt", email: email), password: "correct horse", deviceName: "phone")
        #expect(again.memberID != member)
        let fresh = try await harness.state(of: again.memberID)
        #expect(fresh.ledger.lots.isEmpty && fresh.surveyResponses.isEmpty)
    }

    /// The member asks on a device, offline; the request is done when it reaches the server, what the same push
    /// carries after it is refused, and the member's other device, with a change queued, is signed out.
    @Test(arguments: StorageBackend.all)
    func aMemberAsksForErasureFromADevice(backend: StorageBackend) async throws {
        let harness = try await TestServer.make(backend)
        let service = harness.service
        let email = "asks-\(backend)@example.de"
        let (session, phone) = try await harness.enroll(email)
        let (_, tablet) = try await harness.login(session, email: email)
        try await harness.give(300, to: session.memberID)
        let answer = try await service.push(
            PushRequest(
                deviceID: phone.id,
                mutations: [
                    harness.envelope(phone, 1, .setProfileField(.phone, value: "+49 30 5550199", basedOn: nil)),
                    harness.envelope(phone, 2, .requestErasure),
                    harness.envelope(phone, 3, .setProfileField(.name, value: "Anna S.", basedOn: nil)),
                ]), from: phone)
        #expect(answer.results.map(\.status).prefix(2) == [.applied, .applied])
        guard case .rejected = answer.results[2].status else {
            Issue.record("a change after the erasure in the same push was applied: \(answer.results[2])")
            return
        }
        let state = try await harness.state(of: session.memberID)
        #expect(state.member.status == .erased && state.profile.values.allSatisfy { $0.value == nil })
        #expect(state.balance(at: service.now).available == 0)
        let account = try #require(try await service.storage.account(member: session.memberID))
        #expect(account.email.hasSuffix("@erased.invalid") && account.signInBlocked)
        #expect(try await service.storage.devices(member: session.memberID).allSatisfy { $0.revokedAt != nil })
        await #expect(throws: APIFailure.self) {
            try await service.push(
                PushRequest(
                    deviceID: tablet.id,
                    mutations: [harness.envelope(tablet, 1, .setConsent(.profiling, granted: true))]),
                from: tablet)
        }
        #expect(try await harness.state(of: session.memberID).consents.changes.isEmpty, "nothing of it stored")
    }

    /// A programme whose rule pays an erased member's points out: the movement says so, and the KPIs show it apart.
    @Test func aProgrammeMayPayAnErasedMembersPointsOut() async throws {
        let harness = try await TestServer.make(.sqlite)
        let service = harness.service
        try await service.storage.withCatalogue(now: service.now) { work in
            work.program.erasedPoints = .payOut
            work.write([.program(work.program)])
        }
        let (session, _) = try await harness.enroll()
        try await harness.give(400, to: session.memberID)
        let report = try await service.eraseMember(session.memberID, reason: "Request at the desk")
        #expect(report.pointsForfeited == 400)
        let entries = try await service.ledgerEntries(of: session.memberID)
        #expect(entries.contains { $0.kind == .payout && $0.points == -400 && $0.reference == "erasure" })
        #expect(!entries.contains { $0.kind == .forfeit })
        _ = try await service.run(.segment)
        let figures = try await service.programmeReport(from: nil, to: nil, by: .month).headline
        #expect(figures.pointsPaidOut == 400 && figures.pointsForfeited == 0 && figures.liabilityPoints == 0)
    }

    @Test func badErasuresAreRefused() async throws {
        let harness = try await TestServer.make(.sqlite)
        let (session, _) = try await harness.enroll()
        await #expect(throws: APIFailure.self) { try await harness.service.eraseMember(session.memberID, reason: " ") }
        await #expect(throws: APIFailure.self) {
            try await harness.service.eraseMember(MemberID("m-nobody"), reason: "x")
        }
        #expect(try await harness.state(of: session.memberID).member.status == .active)
    }
}
