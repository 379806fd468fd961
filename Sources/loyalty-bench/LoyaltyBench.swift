import ArgumentParser
import Foundation
import GRDB
import LoyaltyCore
import LoyaltyStore
import LoyaltyTesting

/// Benchmarks that measure their own baseline in the same run (docs/benchmarks.md).
@main
struct LoyaltyBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loyalty-bench",
        abstract: "Runs the benchmarks, each against a baseline measured in the same run.",
        discussion: """
            Prints one JSON object per benchmark on stdout (name, unit, value, baseline, ratio, bar, parameters, \
            peak resident memory) and a short table on stderr. Run in release mode:

              swift run -c release loyalty-bench                 # every benchmark built so far
              swift run -c release loyalty-bench screen-read     # one
              swift run loyalty-bench --smoke                    # each once at a small size (CI)

            Built: \(Benchmark.allCases.map(\.rawValue).joined(separator: ", ")). The sync and server rows of \
            ../shared/design/BENCHMARKS.md (bootstrap, incremental-sync, server-ingest, fan-out) are not built yet.
            """)

    @Argument(help: "Benchmarks to run (default: all built).") var names: [String] = []
    @Option(help: "Runs per benchmark; the figure is the median of the runs' p50s.") var runs = 5
    @Flag(help: "Each benchmark once, at a small size: checks they run and print valid JSON, nothing more.")
    var smoke = false

    func validate() throws {
        guard (1...100).contains(runs) else { throw ValidationError("Please give --runs from 1 to 100.") }
        for name in names where Benchmark(rawValue: name) == nil {
            throw ValidationError(
                "Unknown benchmark '\(name)'; built: \(Benchmark.allCases.map(\.rawValue).joined(separator: ", ")).")
        }
    }

    func run() throws {
        let chosen = names.isEmpty ? Benchmark.allCases : names.compactMap(Benchmark.init(rawValue:))
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "loyalty-bench-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let runs = smoke ? 1 : self.runs
        FileHandle.standardError.write(Data("benchmark          p50        baseline   ratio  p99        bar\n".utf8))
        for benchmark in chosen {
            let result = try benchmark.measure(in: directory, runs: runs, smoke: smoke)
            print(result.json)
            FileHandle.standardError.write(Data(result.row.utf8))
        }
    }
}

enum Benchmark: String, CaseIterable {
    case localMutation = "local-mutation"
    case screenRead = "screen-read"

    func measure(in directory: URL, runs: Int, smoke: Bool) throws -> BenchmarkResult {
        switch self {
        case .localMutation: try localMutation(in: directory, runs: runs, count: smoke ? 200 : 10_000)
        case .screenRead:
            try screenRead(in: directory, runs: runs, lots: smoke ? 2_000 : 100_000, reads: smoke ? 50 : 1_000)
        }
    }

    /// Record a mutation (validate, apply to the view, write the outbox, durable commit), `count` times, against
    /// one row inserted per transaction with the same durability settings.
    private func localMutation(in directory: URL, runs: Int, count: Int) throws -> BenchmarkResult {
        var measured: [Sample] = []
        for run in 0..<runs {
            let (store, now) = try DeviceFixture.bootstrapped(
                path: directory.appendingPathComponent("mutation-\(run).sqlite").path, lots: 1_000)
            var latencies: [Double] = []
            for index in 0..<count {
                let started = DispatchTime.now()
                try store.record(
                    .setConsent(.marketingEmail, granted: index % 2 == 0), at: now.adding(.milliseconds(Int64(index))))
                latencies.append(Self.microseconds(since: started))
            }
            let baseline = try Self.rawInserts(
                path: directory.appendingPathComponent("baseline-\(run).sqlite").path, count: count)
            measured.append(Sample(latencies: latencies, baseline: baseline))
        }
        return BenchmarkResult(
            name: rawValue, samples: measured, parameters: ["mutations": count, "movements": 1_000],
            bar: "p50 ≤ 2x baseline, p99 ≤ 1000 µs"
        ) { p50, baseline, p99 in p50 <= 2 * baseline && p99 <= 1_000 }
    }

    /// The home screen (balance, pending, expiring soon, tier, offers, the last 20 movements) on a device holding
    /// `lots` movements, against one indexed SELECT of 20 rows.
    private func screenRead(in directory: URL, runs: Int, lots: Int, reads: Int) throws -> BenchmarkResult {
        var measured: [Sample] = []
        let path = directory.appendingPathComponent("screen.sqlite").path
        let (store, now) = try DeviceFixture.bootstrapped(path: path, lots: lots, offers: 50)
        let pool = try DatabasePool(path: path)
        for _ in 0..<runs {
            var latencies: [Double] = []
            var shown = 0
            for _ in 0..<reads {
                let started = DispatchTime.now()
                let balance = store.balance(at: now)
                let tier = store.view?.currentTier
                let offers = store.offers(at: now)
                let history = try store.history(limit: 20)
                latencies.append(Self.microseconds(since: started))
                shown += (balance?.available ?? 0) > 0 && tier != nil ? offers.count + history.count : 0
            }
            precondition(shown == reads * 70, "the screen showed 50 offers and 20 movements")
            var baseline: [Double] = []
            for _ in 0..<reads {
                let started = DispatchTime.now()
                let rows = try pool.read { db in
                    try Row.fetchAll(db, sql: "SELECT body FROM ledger_entries ORDER BY at DESC, id DESC LIMIT 20")
                }
                baseline.append(Self.microseconds(since: started))
                precondition(rows.count == 20)
            }
            measured.append(Sample(latencies: latencies, baseline: baseline))
        }
        return BenchmarkResult(
            name: rawValue, samples: measured, parameters: ["movements": lots, "offers": 50, "reads": reads],
            bar: "p50 ≤ 1000 µs"
        ) { p50, _, _ in p50 <= 1_000 }
    }

    /// One row per transaction, WAL and `synchronous=FULL` as the device store: what a durable commit costs.
    private static func rawInserts(path: String, count: Int) throws -> [Double] {
        var configuration = Configuration()
        configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
        let pool = try DatabasePool(path: path, configuration: configuration)
        try pool.write { db in try db.execute(sql: "CREATE TABLE rows (id INTEGER PRIMARY KEY, body BLOB NOT NULL)") }
        let body = Data(repeating: 7, count: 300)
        var latencies: [Double] = []
        for index in 0..<count {
            let started = DispatchTime.now()
            try pool.write { db in
                try db.execute(sql: "INSERT INTO rows (id, body) VALUES (?, ?)", arguments: [index, body])
            }
            latencies.append(microseconds(since: started))
        }
        return latencies
    }

    static func microseconds(since start: DispatchTime) -> Double {
        Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1_000
    }
}

/// One run: the operation's latencies and the baseline's.
struct Sample {
    var latencies: [Double]
    var baseline: [Double]
}

/// A benchmark's figures over its runs: the median of the runs' p50s, with min and max.
struct BenchmarkResult {
    let name: String
    let samples: [Sample]
    let parameters: [String: Int]
    let bar: String
    let meets: (Double, Double, Double) -> Bool

    static func percentile(_ values: [Double], _ fraction: Double) -> Double {
        let sorted = values.sorted()
        return sorted[min(sorted.count - 1, Int(Double(sorted.count - 1) * fraction))]
    }

    var p50s: [Double] { samples.map { Self.percentile($0.latencies, 0.5) } }
    var value: Double { Self.percentile(p50s, 0.5) }
    var baseline: Double { Self.percentile(samples.map { Self.percentile($0.baseline, 0.5) }, 0.5) }
    var p99: Double { Self.percentile(samples.map { Self.percentile($0.latencies, 0.99) }, 0.5) }

    /// Peak resident memory of this process, in MiB (VmHWM).
    static var peakResidentMiB: Double {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
            let kilobytes = Double(line.split(separator: " ").dropFirst().first ?? "")
        else { return 0 }
        return kilobytes / 1024
    }

    var json: String {
        let object: [String: Any] = [
            "name": name, "unit": "µs", "value": round(value * 10) / 10, "p99": round(p99 * 10) / 10,
            "baseline": round(baseline * 10) / 10, "ratio": round(value / max(baseline, 0.001) * 100) / 100,
            "min": round((p50s.min() ?? 0) * 10) / 10, "max": round((p50s.max() ?? 0) * 10) / 10,
            "runs": samples.count, "bar": bar, "meetsBar": meets(value, baseline, p99), "parameters": parameters,
            "peakResidentMiB": round(Self.peakResidentMiB * 10) / 10,
        ]
        let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }

    var row: String {
        func cell(_ text: String, _ width: Int) -> String { text.padding(toLength: width, withPad: " ", startingAt: 0) }
        return cell(name, 19) + cell(String(format: "%.1f µs", value), 11)
            + cell(String(format: "%.1f µs", baseline), 11)
            + cell(String(format: "%.2f", value / max(baseline, 0.001)), 7) + cell(String(format: "%.1f µs", p99), 11)
            + (meets(value, baseline, p99) ? "met" : "NOT met") + " (\(bar))\n"
    }
}
