import Foundation
import Logging
import LoyaltyAnalysis
import LoyaltyCore
import LoyaltyTesting
import Testing

@testable import LoyaltyServer

/// The programme report on both backends: the sums the segment job maintains, run after run, equal the sums
/// recomputed from every member's raw events; the liability equals the members' balances; a withdrawn profiling
/// consent takes the member out of the stages but not out of the liability; the headline reaches `/metrics`.
@Suite struct ProgrammeReportTests {
    @Test(arguments: StorageBackend.all)
    func theMaintainedFiguresEqualTheFiguresRecomputedFromTheRawEvents(backend: StorageBackend) async throws {
        let harness = try await TestServer.make(backend)
        let service = try await DataGenerator.service(
            on: harness.service.storage, tokens: harness.service.tokens, seed: 5, logger: Logger(label: "test"))
        let end = Timestamp(millisecondsSince1970: 1_796_000_000_000)  // 2026-11-30
        _ = try await DataGenerator(members: 60, months: 14, seed: 5, end: end).run(on: service) { _ in }
        _ = try await service.run(.segment)
        let first = try await service.storage.analysis.programmeFigures()
        #expect(first == (try await service.recomputedProgrammeFigures()))
        _ = try await service.run(.segment)
        #expect(
            try await service.storage.analysis.programmeFigures() == first, "a run with nothing new changes nothing")

        // More events of every kind, then an incremental run: the sums move by the members' changes only.
        let members = try await service.storage.memberIDs(after: nil, limit: 1_000)
        let (someone, other) = (members[3], members[17])
        _ = try await service.recordPurchase(
            amount: "80.00", card: nil, member: someone.rawValue, receiptCode: nil, transaction: "extra-1")
        _ = try await service.recordReturn(
            amount: "20.00", receiptCode: nil, transaction: "extra-1", returnID: "R-extra-1")
        _ = try await service.adjustPoints(member: other, points: 35, reason: "goodwill")
        _ = try service.setClock(to: end.adding(.days(20)), advanceBy: nil)
        _ = try await service.run(.unlock)
        let report = try await service.run(.segment)
        #expect(report.members < members.count, "incremental: \(report.members) of \(members.count) recomputed")
        let second = try await service.storage.analysis.programmeFigures()
        #expect(second != first)
        #expect(second == (try await service.recomputedProgrammeFigures()))

        // Two years on, everything earned has expired; the expiry's movements are in the sums too.
        _ = try service.setClock(to: end.adding(.days(800)), advanceBy: nil)
        _ = try await service.run(.expire)
        _ = try await service.run(.segment)
        let third = try await service.storage.analysis.programmeFigures()
        #expect(third == (try await service.recomputedProgrammeFigures()))

        // The headline against figures taken another way: balances, tiers and stages member by member.
        let whole = try await service.programmeReport(
            from: CalendarDate("2024-01-01"), to: CalendarDate.of(service.now, in: TimeZone(identifier: "UTC")!),
            by: .month)
        var liability = 0
        var tiers: [String: Int64] = [:]
        var stages: [String: Int64] = [:]
        for member in members {
            let state = try await service.overview(of: member).state
            let balance = state.balance(at: service.now)
            liability += balance.available + balance.pending
            tiers[state.tier?.tierID ?? "none", default: 0] += 1
            if let stage = try await service.memberAnalysis(member)?.stage { stages[stage.rawValue, default: 0] += 1 }
        }
        #expect(whole.headline.members == Int64(members.count))
        #expect(whole.headline.liabilityPoints == Int64(liability))
        #expect(whole.headline.liabilityMinorUnits == Int64(liability))  // the default programme: a point is a cent
        #expect(whole.headline.tiers == tiers)
        #expect(whole.headline.stages.filter { $0.value != 0 } == stages)
        #expect(whole.headline.pointsExpired > 0 && whole.headline.pointsRedeemed > 0, "\(whole.headline)")
        #expect(whole.periods.last?.liabilityPoints == Int64(liability), "the series ends at the headline")
        #expect(whole.headline.enrolments == Int64(members.count))
        #expect(whole.periods.reduce(0) { $0 + $1.enrolments } == Int64(members.count))
        #expect(whole.headline.lifetimeBreakageRate == whole.headline.breakageRate, "the range covers every event")
        let metrics = service.metrics.render()
        #expect(metrics.contains("loyalty_programme_members{instance_name=\"loyalty-server\"} \(members.count)"))
        #expect(metrics.contains("loyalty_programme_liability_points{instance_name=\"loyalty-server\"} \(liability)"))
    }

    @Test func aWithdrawnProfilingConsentLeavesTheStagesButNotTheLiability() async throws {
        let harness = try await TestServer.make(.sqlite)
        let service = harness.service
        var sequence: UInt64 = 0
        let (member, device) = try await SegmentJobTests.member(
            harness, profiling: true, amounts: ["40.00", "30.00"], sequence: &sequence)
        _ = try await service.run(.segment)
        let before = try await service.programmeReport(from: nil, to: nil, by: .month)
        #expect(before.headline.profiledMembers == 1)
        #expect(before.headline.stages["new"] == 1)
        #expect(before.headline.liabilityPoints == 70)

        try await SegmentJobTests.setProfiling(harness, device, false, sequence: sequence + 1)
        _ = try await service.run(.segment)
        let after = try await service.programmeReport(from: nil, to: nil, by: .month)
        #expect(after.headline.profiledMembers == 0)
        #expect(after.headline.stages.values.allSatisfy { $0 == 0 }, "\(after.headline.stages)")
        #expect(after.headline.liabilityPoints == 70, "the programme still owes the member's points")
        #expect(after.headline.members == 1)
        let contribution = try #require(try await service.storage.analysis.programmeFigures().values["all"])
        #expect(contribution["profiled"] == nil)
        _ = member
    }

    @Test func aReportOverAnImpossibleRangeIsRefused() async throws {
        let harness = try await TestServer.make(.sqlite)
        await #expect(throws: APIFailure.self) {
            try await harness.service.programmeReport(
                from: CalendarDate("2026-05-01"), to: CalendarDate("2026-04-01"), by: .week)
        }
        await #expect(throws: APIFailure.self) {
            try await harness.service.programmeReport(
                from: CalendarDate("2001-01-01"), to: CalendarDate("2026-04-01"), by: .week)
        }
    }
}
