import Foundation
import HummingbirdTesting
import LoyaltyAPI
import LoyaltyCore
import LoyaltyTesting
import OpenAPIRuntime
import Testing

@testable import LoyaltyServer

/// The member's export (docs/privacy.md), over real HTTP through the generated client, which decodes it strictly
/// against the contract's `MemberExport` (version 1): complete (every entity of the member in its place), the same
/// for the member's device and the service desk, and only ever the caller's own.
@Suite struct PrivacyTests {
    @Test func anExportHoldsEverythingAboutTheMemberAndMatchesItsSchema() async throws {
        let (harness, first, changes) = try await EntitySchemaTests.everythingDone()
        _ = try await harness.service.run(.segment)
        // Weeks passed in the scenario: the phone refreshes its session first, as the app would.
        let session = try await harness.service.refresh(token: first.refreshToken)
        let other = try await harness.service.enroll(
            Registration(name: "Ben Meyer", email: "ben@example.de"), password: "correct horse", deviceName: "phone")
        try await harness.application().test(.live) { client in
            let port = try #require(client.port)
            let mine = try await apiClient(port: port, token: session.accessToken).exportMyData(
                headers: .init(loyaltyProtocol: "1")
            ).ok.body.json
            let desk = try await apiClient(port: port, token: Harness.adminToken).adminExportMember(
                path: .init(memberID: session.memberID.rawValue)
            ).ok.body.json
            #expect(mine.format == .loyaltyMemberExport && mine.version == ._1)
            #expect(mine.member.id == session.memberID.rawValue)
            #expect(mine.account.email == "everything@example.de")
            // Every entity of the member's feed is in the export, kind by kind.
            var count: [EntityKey.Kind: Int] = [:]
            for change in changes {
                guard case .upsert(let entity) = change.operation, !entity.isProgrammeWide else { continue }
                count[change.key.kind, default: 0] += 1
            }
            #expect(mine.lots.count == count[.lot] && mine.movements.count == count[.ledgerEntry])
            #expect(mine.consents.count == count[.consentChange] && mine.profile.count == count[.profileField])
            #expect(mine.cards.count == count[.card] && mine.vouchers.count == count[.voucher])
            #expect(mine.receiptClaims.count == 1 && mine.surveyResponses.count == 1 && mine.conflicts.count == 1)
            #expect(mine.offers.count == count[.memberOffer] && mine.allowances.count == count[.allowance])
            #expect(mine.tier?.tierID == "gold" && mine.pointsOwed == 0)
            #expect(mine.devices.count == 2)
            #expect(mine.movements.map(\.at) == mine.movements.map(\.at).sorted(), "movements oldest first")
            #expect(mine.consents.map(\.at) == mine.consents.map(\.at).sorted(), "consents oldest first")
            let till = Set(mine.tillTransactions.map { "\($0.kind.rawValue) \($0.id)" })
            #expect(till.isSuperset(of: ["purchase T-big", "return RT-big", "redemption T-till"]), "\(till)")
            #expect(mine.analysis?.memberID == session.memberID.rawValue, "the analysis, with its reasons")
            // The service desk's copy is the same document (but the time it was made).
            var same = desk
            same.exportedAt = mine.exportedAt
            #expect(same == mine)
            // Another member's device exports its own member, never this one.
            let theirs = try await apiClient(port: port, token: other.accessToken).exportMyData(
                headers: .init(loyaltyProtocol: "1")
            ).ok.body.json
            #expect(theirs.member.id == other.memberID.rawValue && theirs.lots.isEmpty)
            let anonymous = try await apiClient(port: port).exportMyData(headers: .init(loyaltyProtocol: "1"))
            guard case .unauthorized = anonymous else {
                Issue.record("an export without a token was answered \(anonymous)")
                return
            }
            let nobody = try await apiClient(port: port, token: Harness.adminToken).adminExportMember(
                path: .init(memberID: "m-nobody"))
            guard case .notFound = nobody else {
                Issue.record("an export of no member was answered \(nobody)")
                return
            }
        }
    }
}
