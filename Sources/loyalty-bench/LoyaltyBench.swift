import ArgumentParser
import Foundation
import GRDB
import LoyaltyCore
import LoyaltyStore
import LoyaltyTesting

/// Benchmarks that measure their own baseline in the same run (docs/benchmarks.md).
@main
struct LoyaltyBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loyalty-bench",
        abstract: "Runs the benchmarks, each against a baseline measured in the same run.",
        discussion: """
            Prints one JSON object per benchmark on stdout (name, unit, value, baseline, ratio, bar, parameters, \
            peak resident memory) and a short table on stderr. Run in release mode:

              swift run -c release loyalty-bench                 # every benchmark built so far
              swift run -c release loyalty-bench screen-read     # one
              swift run loyalty-bench --smoke                    # each once at a small size (CI)

            Benchmarks: \(Benchmark.allCases.map(\.rawValue).joined(separator: ", ")). The sync and server rows \
            start the real loyalty-server (the executable beside this one: build it too, e.g. `swift build -c \
            release`) on a data directory filled beforehand, and generate load from this process. The PostgreSQL \
            rows (the names ending in -postgres) need a cluster (LOYALTY_BENCH_DATABASE_URL, or run them under \
            scripts/with-postgres.sh) and pgbench; without them each prints a line saying it was skipped and why.
            """,
        version: loyaltyVersion)

    @Argument(help: "Benchmarks to run (default: all built).") var names: [String] = []
    @Option(help: "Runs per benchmark; the figure is the median of the runs' p50s.") var runs = 5
    @Flag(help: "Each benchmark once, at a small size: checks they run and print valid JSON, nothing more.")
    var smoke = false
    @Option(help: "Members of the generated store of the segment-job and report rows (24 months of history).")
    var analysisMembers = 20_000

    func validate() throws {
        guard (1...100).contains(runs) else { throw ValidationError("Please give --runs from 1 to 100.") }
        guard (100...10_000_000).contains(analysisMembers) else {
            throw ValidationError("Please give --analysis-members from 100 to 10000000.")
        }
        for name in names where Benchmark(rawValue: name) == nil {
            throw ValidationError(
                "Unknown benchmark '\(name)'; built: \(Benchmark.allCases.map(\.rawValue).joined(separator: ", ")).")
        }
    }

    func run() async throws {
        let chosen = names.isEmpty ? Benchmark.allCases : names.compactMap(Benchmark.init(rawValue:))
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "loyalty-bench-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let runs = smoke ? 1 : self.runs
        FileHandle.standardError.write(
            Data("benchmark          figure                baseline              ratio  bar\n".utf8))
        for benchmark in chosen {
            let result = try await benchmark.measure(
                in: directory, runs: runs, smoke: smoke, analysisMembers: smoke ? 300 : analysisMembers)
            print(result.json)
            FileHandle.standardError.write(Data(result.row.utf8))
        }
    }
}

enum Benchmark: String, CaseIterable {
    case localMutation = "local-mutation"
    case screenRead = "screen-read"
    case bootstrap
    case incrementalSync = "incremental-sync"
    case serverIngest = "server-ingest"
    case fanOut = "fan-out"
    case jobs
    case serverIngestPostgres = "server-ingest-postgres"
    case fanOutPostgres = "fan-out-postgres"
    case bootstrapPostgres = "bootstrap-postgres"
    case segmentJob = "segment-job"
    case report

    func measure(in directory: URL, runs: Int, smoke: Bool, analysisMembers: Int) async throws -> BenchmarkResult {
        switch self {
        case .localMutation: try localMutation(in: directory, runs: runs, count: smoke ? 200 : 10_000)
        case .screenRead:
            try screenRead(in: directory, runs: runs, lots: smoke ? 2_000 : 100_000, reads: smoke ? 50 : 1_000)
        case .bootstrap:
            try await bootstrap(
                in: directory, runs: runs, movements: smoke ? 2_000 : 100_000, offers: smoke ? 20 : 1_000)
        case .incrementalSync:
            try await incrementalSync(
                in: directory, runs: smoke ? 1 : max(runs, 5), movements: smoke ? 500 : 10_000,
                changes: smoke ? 100 : 1_000, pending: smoke ? 10 : 100)
        case .serverIngest:
            try await serverIngest(
                in: directory, runs: runs, devices: smoke ? 20 : 1_000, pushes: smoke ? 2 : 10, lanes: smoke ? 4 : 32)
        case .fanOut:
            try await fanOut(
                in: directory, runs: runs, members: smoke ? 20 : 1_000, perMember: smoke ? 2 : 10,
                lanes: smoke ? 4 : 64)
        case .jobs: try await jobs(in: directory, runs: runs, members: smoke ? 2_000 : 100_000)
        case .segmentJob: try await measureSegmentJob(in: directory, runs: runs, members: analysisMembers)
        case .report: try await measureReport(in: directory, runs: runs, members: analysisMembers)
        case .serverIngestPostgres, .fanOutPostgres, .bootstrapPostgres:
            if let missing = Self.postgresMissing {
                BenchmarkResult.skipped(rawValue, because: missing)
            } else {
                try await measureOnPostgres(in: directory, runs: runs, smoke: smoke)
            }
        }
    }

    /// The rows that need a PostgreSQL cluster, at the sizes of their SQLite counterparts.
    private func measureOnPostgres(in directory: URL, runs: Int, smoke: Bool) async throws -> BenchmarkResult {
        switch self {
        case .fanOutPostgres:
            try await fanOut(
                in: directory, runs: runs, members: smoke ? 20 : 1_000, perMember: smoke ? 2 : 10,
                lanes: smoke ? 4 : 64, on: .postgres)
        case .bootstrapPostgres:
            try await bootstrap(
                in: directory, runs: runs, movements: smoke ? 2_000 : 100_000, offers: smoke ? 20 : 1_000,
                on: .postgres)
        default:
            try await serverIngestPostgres(
                in: directory, runs: runs, devices: smoke ? 20 : 1_000, pushes: smoke ? 2 : 10,
                lanes: smoke ? 4 : 32, seconds: smoke ? 2 : 10)
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
            name: rawValue, unit: "µs", samples: measured, parameters: ["mutations": count, "movements": 1_000],
            bar: "p50 ≤ 2x baseline, p99 ≤ 1000 µs"
        ) { p50, baseline, p99 in p50 <= 2 * baseline && p99 <= 1_000 }
    }

    /// The home screen (balance, pending, expiring soon, tier, offers, the last 20 movements) on a device holding
    /// `lots` movements, against one indexed SELECT of 20 rows.
    private func screenRead(in directory: URL, runs: Int, lots: Int, reads: Int) throws -> BenchmarkResult {
        var measured: [Sample] = []
        // Laid out as a `loyalty --device` directory, so that a separate device process can open it (below).
        let device = directory.appendingPathComponent("screen-device")
        try FileManager.default.createDirectory(at: device, withIntermediateDirectories: true)
        let path = device.appendingPathComponent("device.sqlite").path
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
        var result = BenchmarkResult(
            name: rawValue, unit: "µs", samples: measured,
            parameters: ["movements": lots, "offers": 50, "reads": reads],
            bar: "p50 ≤ 1000 µs"
        ) { p50, _, _ in p50 <= 1_000 }
        // This process made the store, so its own peak says little about a device: the terminal client, a device
        // process of its own, opens the store and shows the balance screen, and its peak is reported.
        result.extra["devicePeakResidentMiB"] = try ChildProcess.peakResidentMiB(
            sibling: "loyalty", arguments: ["--device", device.path, "--json", "balance"])
        return result
    }

    /// One row per transaction, WAL and `synchronous=FULL` as the device store: what a durable commit costs.
    static func rawInserts(path: String, count: Int) throws -> [Double] {
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

/// A benchmark's figures over its runs: the median of the runs' p50s, with min and max. Throughput rows give
/// one figure per run (a one-element sample).
struct BenchmarkResult {
    let name: String
    let unit: String
    let samples: [Sample]
    let parameters: [String: Int]
    let bar: String
    let meets: (Double, Double, Double) -> Bool
    /// Further figures for the JSON line (the p99 push latency of server-ingest, ...).
    var extra: [String: Double] = [:]
    /// The server process's peak resident memory, for the rows that run one.
    var serverPeakResidentMiB: Double?
    /// Why the row did not run here (a part it needs is missing), if it did not.
    var skipped: String?

    /// A row that could not run here, and why.
    static func skipped(_ name: String, because reason: String) -> BenchmarkResult {
        var result = BenchmarkResult(name: name, unit: "", samples: [], parameters: [:], bar: "") { _, _, _ in false }
        result.skipped = reason
        return result
    }

    init(
        name: String, unit: String, samples: [Sample], parameters: [String: Int], bar: String,
        meets: @escaping (Double, Double, Double) -> Bool
    ) {
        self.name = name
        self.unit = unit
        self.samples = samples
        self.parameters = parameters
        self.bar = bar
        self.meets = meets
    }

    static func percentile(_ values: [Double], _ fraction: Double) -> Double {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return 0 }
        return sorted[min(sorted.count - 1, Int(Double(sorted.count - 1) * fraction))]
    }

    var p50s: [Double] { samples.map { Self.percentile($0.latencies, 0.5) } }
    var value: Double { Self.percentile(p50s, 0.5) }
    var baseline: Double { Self.percentile(samples.map { Self.percentile($0.baseline, 0.5) }, 0.5) }
    var p99: Double { Self.percentile(samples.map { Self.percentile($0.latencies, 0.99) }, 0.5) }

    /// Peak resident memory of a process (this one by default), in MiB (VmHWM).
    static func peakResidentMiB(of process: String = "self") -> Double {
        guard let status = try? String(contentsOfFile: "/proc/\(process)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
            let kilobytes = Double(line.split(separator: " ").dropFirst().first ?? "")
        else { return 0 }
        return kilobytes / 1024
    }

    var ratio: Double? { samples.allSatisfy { $0.baseline.isEmpty } ? nil : value / max(baseline, 0.001) }

    var json: String {
        func rounded(_ value: Double) -> Double { round(value * 10) / 10 }
        if let skipped {
            let data = try! JSONSerialization.data(
                withJSONObject: ["name": name, "skipped": skipped, "peakResidentMiB": rounded(Self.peakResidentMiB())],
                options: [.sortedKeys])
            return String(decoding: data, as: UTF8.self)
        }
        var object: [String: Any] = [
            "name": name, "unit": unit, "value": rounded(value),
            "min": rounded(p50s.min() ?? 0), "max": rounded(p50s.max() ?? 0),
            "runs": samples.count, "bar": bar, "meetsBar": meets(value, baseline, p99), "parameters": parameters,
            "peakResidentMiB": rounded(Self.peakResidentMiB()),
        ]
        if unit == "µs" { object["p99"] = rounded(p99) }
        if let ratio {
            object["baseline"] = rounded(baseline)
            object["ratio"] = round(ratio * 100) / 100
        }
        if let serverPeakResidentMiB { object["serverPeakResidentMiB"] = rounded(serverPeakResidentMiB) }
        for (key, value) in extra { object[key] = rounded(value) }
        let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }

    var row: String {
        func cell(_ text: String, _ width: Int) -> String { text.padding(toLength: width, withPad: " ", startingAt: 0) }
        if let skipped { return cell(name, 19) + "skipped: \(skipped)\n" }
        return cell(name, 19) + cell(String(format: "%.1f %@", value, unit), 22)
            + cell(ratio == nil ? "-" : String(format: "%.1f %@", baseline, unit), 22)
            + cell(ratio.map { String(format: "%.2f", $0) } ?? "-", 7)
            + (meets(value, baseline, p99) ? "met" : "NOT met") + " (\(bar))\n"
    }
}
