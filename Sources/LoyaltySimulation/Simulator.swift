internal import Crypto
internal import Foundation

/// A deterministic simulation of the whole system in one process: several members with one to four devices each,
/// a till, an operator and the jobs, a clock that runs for months, and a network that loses, duplicates and
/// reorders messages, partitions devices and crashes them. The parts are the real ones: LoyaltyCore, the device
/// store on SQLite files and the sync engine, the server's sync service on its SQLite storage. Every step awaits
/// the previous one, and every random choice comes from one seeded generator, so a seed replays exactly.
public enum Simulator {
    /// Runs one seed.
    public static func run(seed: UInt64, settings: SimulationSettings) async -> SimulationOutcome {
        let directory = settings.directory.appendingPathComponent("loyalty-sim-\(seed)-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: directory) }
        let world = World(seed: seed, directory: directory, settings: settings)
        do {
            try await world.setUp()
            for step in 1...max(settings.steps, 1) {
                world.step = step
                try await world.randomStep()
                try await world.checkStepInvariants()
                if world.failures.count > 0 { break }
            }
            if world.failures.isEmpty {
                try await world.quiesce()
                try await world.checkQuiescentInvariants()
            }
        } catch {
            world.fail("the run stopped: \(error)")
        }
        let trace = world.lines
        let digest = SHA256.hash(data: Data(trace.joined(separator: "\n").utf8)).map { String(format: "%02x", $0) }
            .joined()
        return SimulationOutcome(
            seed: seed, steps: world.step, failures: world.failures, trace: trace, digest: digest,
            counts: world.counts)
    }
}
