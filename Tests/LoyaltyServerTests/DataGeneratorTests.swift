import Foundation
import Logging
import LoyaltyAnalysis
import LoyaltyCore
import LoyaltyTesting
import Testing

@testable import LoyaltyServer

/// `loyalty-server generate`'s history: the same seed gives the same programme, on either backend; it is plausible
/// enough to analyse (every stage occurs, some members lapse, some withdraw their consent); a store with members is
/// refused.
@Suite struct DataGeneratorTests {
    static func generate(
        _ backend: StorageBackend, seed: UInt64
    ) async throws -> (TestServer, SyncService, DataGenerator.Report) {
        let harness = try await TestServer.make(backend)
        let service = try await DataGenerator.service(
            on: harness.service.storage, tokens: harness.service.tokens, seed: seed, logger: Logger(label: "test"))
        let generator = DataGenerator(
            members: 80, months: 12, seed: seed, end: Timestamp(millisecondsSince1970: 1_796_000_000_000))
        let report = try await generator.run(on: service) { _ in }
        return (harness, service, report)
    }

    static func programme(_ service: SyncService) async throws -> [MemberID: Set<Entity>] {
        var states: [MemberID: Set<Entity>] = [:]
        for member in try await service.storage.memberIDs(after: nil, limit: 1_000) {
            states[member] = Set(try await service.overview(of: member).state.entities)
        }
        return states
    }

    @Test(arguments: StorageBackend.all)
    func theSameSeedGivesTheSameProgramme(backend: StorageBackend) async throws {
        let (_, first, report) = try await Self.generate(backend, seed: 11)
        let (_, second, again) = try await Self.generate(backend, seed: 11)
        #expect(report == again)
        #expect(report.members == 80)
        let programme = try await Self.programme(first)
        #expect(programme.count == 80)
        #expect(programme == (try await Self.programme(second)), "the same members with the same entities")
        let (_, _, other) = try await Self.generate(backend, seed: 12)
        #expect(other != report, "another seed, another programme")
    }

    @Test func theHistoryIsWorthAnalysing() async throws {
        let (_, service, report) = try await Self.generate(.sqlite, seed: 3)
        #expect(report.purchases > 5 * report.members, "\(report)")
        #expect(
            report.returns > 0 && report.redemptions > 0 && report.answers > 0 && report.withdrawals > 0, "\(report)")
        _ = try await service.run(.segment)
        var stages: [LifecycleStage: Int] = [:]
        var excluded = 0
        for member in try await service.storage.memberIDs(after: nil, limit: 1_000) {
            let analysis = try #require(try await service.memberAnalysis(member))
            if let stage = analysis.stage { stages[stage, default: 0] += 1 } else { excluded += 1 }
        }
        #expect(Set(stages.keys).isSuperset(of: [.new, .active, .atRisk, .lapsed]), "\(stages)")
        #expect(excluded > 0, "members without the profiling consent")
        await #expect(throws: LoyaltyError.self) {
            _ = try await DataGenerator(members: 1, months: 1, seed: 1, end: service.now).run(on: service) { _ in }
        }
    }
}
