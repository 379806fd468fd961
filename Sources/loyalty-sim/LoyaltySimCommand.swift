import ArgumentParser
import Foundation
import LoyaltyCore
import LoyaltyServer
import LoyaltySimulation

@main
struct LoyaltySimCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loyalty-sim",
        abstract: "Runs the deterministic simulation: many devices, a faulty network, crashes, one seed per run.",
        discussion: """
            Each seed builds a world (two or three members with one to four devices each, a till, an operator, the \
            jobs), runs random steps with network faults, partitions, crashes and server restarts, checks the \
            invariants after every step and at quiescence, and prints a summary line 'N passed, M failed'. A \
            failing seed prints its trace's tail; run it again with --seed to replay it exactly (add --trace for \
            every line). Hashing is made deterministic for the process (SWIFT_DETERMINISTIC_HASHING), so a seed \
            replays the same way in every run.

            Examples:
              swift run -c release loyalty-sim --seeds 200
              swift run -c release loyalty-sim --seed 1234 --steps 500 --trace
            """,
        version: loyaltyVersion)

    @Option(help: "How many seeds to run, starting at --first.") var seeds = 50
    @Option(help: "The first seed of the batch.") var first: UInt64 = 1
    @Option(help: "Run only this seed (overrides --seeds and --first).") var seed: UInt64?
    @Option(help: "Steps per seed.") var steps = 300
    @Option(help: "Seeds run at once (each seed is still one sequence of steps).") var jobs = 2
    @Option(
        help:
            "Plant a bug in the server to see the simulator find it: \(PlantedBug.allCases.map(\.rawValue).joined(separator: ", "))."
    )
    var plant: String?
    @Flag(help: "Print every seed's full trace.") var trace = false
    @Option(
        help: """
            Keep the server's data in PostgreSQL instead of SQLite: a cluster URL whose user may create databases \
            (each seed gets a database of its own).
            """)
    var postgres: String?
    @Flag(help: "Run each seed twice and compare the traces' digests (checks the simulator's own determinism).")
    var checkDeterminism = false

    func validate() throws {
        guard (1...1_000_000).contains(seeds) else { throw ValidationError("Please give --seeds from 1 to 1000000.") }
        guard (1...100_000).contains(steps) else { throw ValidationError("Please give --steps from 1 to 100000.") }
        guard (1...64).contains(jobs) else { throw ValidationError("Please give --jobs from 1 to 64.") }
        if let plant, PlantedBug(rawValue: plant) == nil {
            throw ValidationError(
                "Unknown bug '\(plant)'; plantable: \(PlantedBug.allCases.map(\.rawValue).joined(separator: ", ")).")
        }
    }

    func run() async throws {
        Self.makeHashingDeterministic()
        var settings = SimulationSettings(steps: steps, plantedBug: plant.flatMap(PlantedBug.init(rawValue:)))
        if let postgres {
            do { settings.postgres = try DatabaseURL(parsing: postgres) } catch let error as LoyaltyError {
                throw ValidationError("Please check --postgres: \(error.message)")
            }
        }
        let list: [UInt64] = seed.map { [$0] } ?? (0..<UInt64(seeds)).map { first + $0 }
        let batch = SimulationBatch(seeds: list, settings: settings, jobs: jobs, checkDeterminism: checkDeterminism)
        let steps = self.steps
        let trace = self.trace
        let report = await batch.run(
            each: { result in
                let outcome = result.outcome
                if trace { say(outcome.trace.joined(separator: "\n")) }
                if let mismatch = result.mismatch {
                    say("seed \(outcome.seed): NOT DETERMINISTIC (digest \(outcome.digest) then \(mismatch))")
                } else if !outcome.passed {
                    say("seed \(outcome.seed): FAILED at step \(outcome.steps)")
                    for failure in outcome.failures { say("  \(failure)") }
                    say("  trace (last 25 lines):")
                    for line in outcome.tail(25) { say("    \(line)") }
                    say("  replay: swift run -c release loyalty-sim --seed \(outcome.seed) --steps \(steps) --trace")
                }
            },
            progress: { done, report in
                let rate = Double(done) / max(report.seconds, 0.001)
                FileHandle.standardError.write(
                    Data(
                        "\(done)/\(list.count) seeds, \(report.failed.count) failed so far (\(String(format: "%.2f", rate)) seeds/s)\n"
                            .utf8))
            })
        let counted = report.totals.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
        say(
            "ran \(list.count) seeds × \(steps) steps in \(String(format: "%.1f", report.seconds)) s "
                + "(\(String(format: "%.1f", Double(list.count) / max(report.seconds, 0.001))) seeds/s); \(counted)")
        say("\(report.passed) passed, \(report.failed.count) failed")
        if !report.failed.isEmpty { throw ExitCode(1) }
    }

    /// Dictionary order depends on a per-process hash seed unless hashing is deterministic; re-executes this
    /// process with it set, so that a seed replays the same in every process.
    static func makeHashingDeterministic() {
        guard ProcessInfo.processInfo.environment["SWIFT_DETERMINISTIC_HASHING"] == nil else { return }
        setenv("SWIFT_DETERMINISTIC_HASHING", "1", 1)
        let arguments = CommandLine.arguments
        var pointers = arguments.map { strdup($0) } + [nil]
        execv(ProcessInfo.processInfo.arguments[0].hasPrefix("/") ? arguments[0] : "/proc/self/exe", &pointers)
        // If exec fails, carry on: only cross-process replay is affected.
    }

    /// Writes a line at once (unbuffered), so a failure shows even while a long batch runs into a file.
    private func say(_ line: String) { FileHandle.standardOutput.write(Data((line + "\n").utf8)) }
}
