internal import Foundation

/// Many seeds run `jobs` at a time (each seed is still one sequence of steps), optionally each twice to check the
/// simulator's own determinism.
public struct SimulationBatch: Sendable {
    /// The seeds to run, in order.
    public var seeds: [UInt64]
    /// The settings every seed runs with.
    public var settings: SimulationSettings
    /// Seeds run at once.
    public var jobs: Int
    /// Whether each seed runs twice and the two traces' digests are compared.
    public var checkDeterminism: Bool

    /// A batch of `seeds`.
    public init(seeds: [UInt64], settings: SimulationSettings, jobs: Int = 2, checkDeterminism: Bool = false) {
        self.seeds = seeds
        self.settings = settings
        self.jobs = max(1, jobs)
        self.checkDeterminism = checkDeterminism
    }

    /// One seed's result: its outcome and, if its second run's digest differed, that digest.
    public struct Result: Sendable {
        /// What the (first) run found.
        public var outcome: SimulationOutcome
        /// The second run's digest when it differed from the first's (the simulator is not deterministic).
        public var mismatch: String?
        /// Whether the seed passed (and replayed the same).
        public var passed: Bool { outcome.passed && mismatch == nil }
    }

    /// What the whole batch found.
    public struct Report: Sendable {
        /// Seeds that passed.
        public var passed = 0
        /// Seeds that failed or did not replay the same.
        public var failed: [Result] = []
        /// What happened in all runs, counted.
        public var totals: [String: Int] = [:]
        /// How long the batch took.
        public var seconds = 0.0
    }

    /// Runs the batch; `each` sees every seed's result as it finishes, `progress` the count done every 100 seeds.
    public func run(
        each: (Result) -> Void = { _ in }, progress: (_ done: Int, _ report: Report) -> Void = { _, _ in }
    ) async -> Report {
        let started = Date()
        var report = Report()
        var next = 0
        let settings = self.settings
        let checkDeterminism = self.checkDeterminism
        await withTaskGroup(of: Result.self) { group in
            func launch() {
                guard next < seeds.count else { return }
                let seed = seeds[next]
                next += 1
                group.addTask {
                    let outcome = await Simulator.run(seed: seed, settings: settings)
                    guard checkDeterminism else { return Result(outcome: outcome) }
                    let again = await Simulator.run(seed: seed, settings: settings)
                    return Result(outcome: outcome, mismatch: again.digest == outcome.digest ? nil : again.digest)
                }
            }
            for _ in 0..<jobs { launch() }
            var done = 0
            while let result = await group.next() {
                launch()
                done += 1
                for (key, value) in result.outcome.counts { report.totals[key, default: 0] += value }
                if result.passed { report.passed += 1 } else { report.failed.append(result) }
                report.seconds = Date().timeIntervalSince(started)
                each(result)
                if done % 100 == 0 && done < seeds.count { progress(done, report) }
            }
        }
        report.seconds = Date().timeIntervalSince(started)
        return report
    }
}
