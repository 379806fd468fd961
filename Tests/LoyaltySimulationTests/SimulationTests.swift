import Foundation
import LoyaltyServer
import LoyaltySimulation
import LoyaltyTesting
import Testing

/// The simulator, run as CI runs it: a fixed batch of seeds must pass; a seed must replay exactly; and a bug
/// planted in the server must make the batch fail.
@Suite struct SimulationTests {
    /// CI's batch: the first seeds, each 300 steps of member actions, syncs, till, operator, clock and faults.
    static let batch: [UInt64] = Array(1...16)
    static let steps = 300

    @Test func theCIBatchPasses() async throws {
        var failures: [String] = []
        var guaranteed = 0
        var crashes = 0
        for seed in Self.batch {
            let outcome = await Simulator.run(seed: seed, settings: SimulationSettings(steps: Self.steps))
            guaranteed += outcome.counts["guaranteed redemptions"] ?? 0
            crashes += outcome.counts["device crashes"] ?? 0
            if !outcome.passed {
                failures.append("seed \(seed): \(outcome.failures.joined(separator: "; "))")
            }
        }
        #expect(failures.isEmpty, "\(failures.joined(separator: "\n"))")
        // The batch must exercise what it claims to: promises made and crashes survived.
        #expect(guaranteed > 0)
        #expect(crashes > 0)
    }

    /// A batch with the server's data in PostgreSQL (a database per seed): the same invariants hold. The database's
    /// timing is not deterministic, so this batch is not replayed exactly; its invariants are what it checks.
    @Test(arguments: StorageBackend.postgresOnly)
    func aBatchPassesWithTheServerOnPostgres(backend: StorageBackend) async throws {
        var settings = SimulationSettings(steps: Self.steps)
        let cluster: DatabaseURL = try #require(StorageBackend.clusterURL)
        settings.postgres = cluster
        var failures: [String] = []
        var restarts = 0
        for seed in Self.batch.prefix(6) {
            let outcome = await Simulator.run(seed: seed, settings: settings)
            restarts += outcome.counts["server restarts"] ?? 0
            if !outcome.passed { failures.append("seed \(seed): \(outcome.failures.joined(separator: "; "))") }
        }
        #expect(failures.isEmpty, "\(failures.joined(separator: "\n"))")
        #expect(restarts > 0, "servers restarted on the database they wrote")
    }

    @Test func aSeedReplaysExactly() async throws {
        let settings = SimulationSettings(steps: 200)
        let first = await Simulator.run(seed: 42, settings: settings)
        let second = await Simulator.run(seed: 42, settings: settings)
        #expect(first.digest == second.digest)
        #expect(first.trace.count == second.trace.count)
        #expect(first.trace.count > 200, "the trace records every step")
        let other = await Simulator.run(seed: 43, settings: settings)
        #expect(other.digest != first.digest, "another seed is another run")
    }

    /// The self-test: a server that applies a repeated push a second time (instead of answering the stored
    /// result) is caught within the CI batch, by the ledger invariant, with the seed to replay it.
    @Test func aPlantedDuplicateApplicationIsCaughtWithinTheBatch() async throws {
        let settings = SimulationSettings(steps: Self.steps, plantedBug: .reapplyDuplicates)
        // The first seed the ledger invariant catches (others may first catch the bug elsewhere, for example as a
        // consent applied twice that a device never saw).
        var caught: SimulationOutcome?
        var failing = 0
        for seed in Self.batch {
            let outcome = await Simulator.run(seed: seed, settings: settings)
            if !outcome.passed { failing += 1 }
            if outcome.failures.contains(where: { $0.contains("not the sum of its movements") }) {
                caught = outcome
                break
            }
        }
        let outcome = try #require(
            caught, "the ledger invariant missed the planted bug in \(Self.batch.count) seeds (\(failing) failed)")
        #expect(outcome.trace.contains { $0.contains("answer lost") || $0.contains("delivered twice") })
        let replay = await Simulator.run(seed: outcome.seed, settings: settings)
        #expect(replay.failures == outcome.failures, "the failing seed replays the same failure")
    }
}
