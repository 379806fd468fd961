import Foundation
import LoyaltyCore
import LoyaltyTesting
import Testing

@testable import LoyaltyServer

/// The jobs find the members that are due through the times kept with every write (`MemberState.jobsDue`). Over two
/// years of a programme with short windows, members buying, returning and being adjusted at random, every run that
/// visits only the due members must leave nothing for a run over every member to do: no lot unlocked late or
/// expired late (none missed), no tier left stale, and nothing done twice.
@Suite struct JobIndexTests {
    @Test(arguments: StorageBackend.all)
    func jobsThatVisitOnlyDueMembersMissNothingAndDoNothingTwice(backend: StorageBackend) async throws {
        let harness = try await TestServer.make(
            backend,
            program: {
                $0.expiry = .monthsAfterEarning(5)
                $0.tiers.windowMonths = 3
                $0.tiers.retentionMonths = 2
            })
        var random = SeededRandom(seed: 2026)
        var members: [MemberID] = []
        for _ in 0..<10 { members.append(try await harness.enroll().0.memberID) }
        var purchases: [(member: MemberID, transaction: String)] = []
        var unlocked = 0
        var expired = 0
        for step in 0..<36 {
            for member in members where random.int(0..<3) == 0 {
                switch random.int(0..<4) {
                case 0, 1:
                    let transaction = "T-\(step)-\(member)"
                    _ = try await harness.service.recordPurchase(
                        amount: "\(100 + random.int(0..<900)).00", card: nil, member: member.rawValue,
                        receiptCode: nil, transaction: transaction)
                    purchases.append((member, transaction))
                case 2:
                    _ = try await harness.service.adjustPoints(
                        member: member, points: 10 + random.int(0..<200), reason: "goodwill")
                default:
                    guard !purchases.isEmpty else { continue }
                    let purchase = purchases[random.int(0..<purchases.count)]
                    _ = try? await harness.service.recordReturn(
                        amount: "10.00", receiptCode: nil, transaction: purchase.transaction,
                        returnID: "R-\(step)-\(member)")
                }
            }
            try harness.clock.advance(by: .days(Int64(3 + random.int(0..<40))))
            unlocked += try await harness.service.run(.unlock).movements
            expired += try await harness.service.run(.expire).movements

            // A run over every member now finds nothing left: the index missed no one.
            var before: [MemberState] = []
            for member in members { before.append(try await harness.state(of: member)) }
            let lateUnlocks = try await harness.service.run(.unlock, everyMember: true)
            let lateExpiries = try await harness.service.run(.expire, everyMember: true)
            #expect(lateUnlocks.movements == 0, "step \(step): a lot the index missed was unlocked late")
            #expect(lateExpiries.movements == 0, "step \(step): a lot the index missed expired late")
            for (member, state) in zip(members, before) {
                let after = try await harness.state(of: member)
                #expect(after.ledger == state.ledger, "step \(step): \(member)'s ledger was left stale")
                #expect(after.allowances == state.allowances)
                // The tier and its points; a tier held on points is re-qualified at whatever moment it is evaluated
                // (its `since` is the evaluation's time), which says nothing about what the index found.
                #expect(after.tier?.tierID == state.tier?.tierID, "step \(step): \(member)'s tier was left stale")
                #expect(after.tier?.qualifyingPoints == state.tier?.qualifyingPoints)
            }
        }
        // The history covered what it is meant to: unlocks, expiries, and each lot unlocked at most once.
        #expect(unlocked > 20)
        #expect(expired > 5)
        for member in members {
            let state = try await harness.state(of: member)
            #expect(state.ledger.available >= 0)
        }
    }
}
