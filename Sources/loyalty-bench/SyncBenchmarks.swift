import Foundation
import GRDB
import LoyaltyCore
import LoyaltyServer
import LoyaltyStore
import LoyaltySync

/// The rows that need a server: each fills a data directory in this process, starts a real `loyalty-server`
/// process on loopback on it, and measures against that process (docs/benchmarks.md).
extension Benchmark {
    /// An empty device to usable, from a real server over loopback, against a bulk insert of the same rows.
    func bootstrap(
        in directory: URL, runs: Int, movements: Int, offers: Int, on backend: BenchBackend = .sqlite
    ) async throws -> BenchmarkResult {
        let data = directory.appendingPathComponent("\(rawValue)-server")
        // A device for each run, added before the server process takes the directory.
        let (devices, server) = try await backend.seededServer(data) { seeded in
            let member = try await seeded.enroll(0)
            try await seeded.addMovements(movements, to: member.memberID)
            try await seeded.addOffers(offers)
            var devices: [DeviceIdentity] = []
            for run in 0..<runs {
                devices.append(
                    try await seeded.addDevice(
                        member: member.memberID, card: try CardNumber(member.cardNumber), name: "bench-\(run)"))
            }
            return devices
        }
        defer { server.stop() }
        var samples: [Sample] = []
        var rows = 0
        var worstSeconds = 0.0
        var inCalls = 0.0
        var total = 0.0
        for run in 0..<runs {
            var identity = devices[run]
            identity.serverURL = server.url
            let started = DispatchTime.now()
            let store = try DeviceStore(path: directory.appendingPathComponent("\(rawValue)-device-\(run).sqlite").path)
            try store.saveIdentity(identity)
            let transport = TimedTransport(HTTPSyncTransport(serverURL: URL(string: server.url)!))
            let engine = SyncEngine(store: store, transport: transport)
            let report = await engine.sync()
            let seconds = Self.microseconds(since: started) / 1_000_000
            inCalls += transport.seconds
            total += seconds
            guard report.outcome == .synced, let view = store.view, view.ledger.lots.count == movements else {
                throw LoyaltyError("bench", "the bootstrap did not complete: \(report.outcome)")
            }
            rows = report.pulled
            worstSeconds = max(worstSeconds, seconds)
            let baseline = try Self.bulkInsert(
                rows: rows, path: directory.appendingPathComponent("\(rawValue)-bulk-\(run).sqlite").path)
            samples.append(Sample(latencies: [Double(rows) / seconds], baseline: [baseline]))
        }
        var result = BenchmarkResult(
            name: rawValue, unit: "rows/s", samples: samples,
            parameters: ["movements": movements, "offers": offers, "rows": rows],
            bar: "≥ 40% of the baseline's rows/s; ≤ 2 s in all"
        ) { value, baseline, _ in value >= 0.4 * baseline && Double(rows) / value <= 2 }
        result.extra["seconds"] = Double(rows) / result.value
        result.extra["slowestSeconds"] = worstSeconds
        result.extra["transportShare"] = inCalls / total
        result.serverPeakResidentMiB = server.peakResidentMiB
        return result
    }

    /// A device `changes` behind pulls them while pushing `pending` mutations, once per run.
    func incrementalSync(
        in directory: URL, runs: Int, movements: Int, changes: Int, pending: Int
    ) async throws -> BenchmarkResult {
        let data = directory.appendingPathComponent("incremental-server")
        var identity = try await SeededServer.seed(data) { seeded in
            let identity = try await seeded.enroll(0)
            try await seeded.addMovements(movements, to: identity.memberID)
            return identity
        }
        let server = try ServerProcess(data: data)
        defer { server.stop() }
        identity.serverURL = server.url
        let store = try DeviceStore(path: directory.appendingPathComponent("incremental.sqlite").path)
        try store.saveIdentity(identity)
        let transport = TimedTransport(HTTPSyncTransport(serverURL: URL(string: server.url)!))
        let engine = SyncEngine(store: store, transport: transport)
        guard await engine.sync().outcome == .synced else { throw LoyaltyError("bench", "the first sync failed") }
        var inCalls = 0.0
        var inPushes = 0.0
        let till = try LoadConnection(port: server.port)
        var latencies: [Double] = []
        var pulled = 0
        for run in 0..<runs {
            // The operator's till makes the changes (a purchase is a lot and its movement); the member acts offline.
            for purchase in 0..<(changes / 2) {
                let body =
                    #"{"amount": "1.00", "memberID": "\#(identity.memberID)", "transactionID": "T-\#(run)-\#(purchase)"}"#
                let (status, answer) = try till.request(
                    "POST", "/v1/admin/purchases", token: ServerProcess.adminToken, body: Array(body.utf8))
                guard (200..<300).contains(status) else {
                    throw LoyaltyError("bench", "a purchase failed: \(String(decoding: answer, as: UTF8.self))")
                }
            }
            for index in 0..<pending {
                try store.record(.setConsent(.marketingPush, granted: index % 2 == 0), at: Timestamp(Date()))
            }
            let before = (transport.seconds, transport.pushSeconds)
            let started = DispatchTime.now()
            let report = await engine.sync()
            latencies.append(Self.microseconds(since: started))
            inCalls += transport.seconds - before.0
            inPushes += transport.pushSeconds - before.1
            guard report.outcome == .synced, report.pushed == pending, report.pulled >= changes else {
                throw LoyaltyError(
                    "bench", "sync \(run): \(report.outcome), pushed \(report.pushed), pulled \(report.pulled)")
            }
            pulled = report.pulled
        }
        var result = BenchmarkResult(
            name: rawValue, unit: "µs", samples: latencies.map { Sample(latencies: [$0], baseline: []) },
            parameters: ["movements": movements, "changesBehind": pulled, "pendingMutations": pending],
            bar: "p50 ≤ 50 ms"
        ) { value, _, _ in value <= 50_000 }
        result.extra["transportShare"] = inCalls * 1_000_000 / latencies.reduce(0, +)
        result.extra["pushShare"] = inPushes * 1_000_000 / latencies.reduce(0, +)
        result.serverPeakResidentMiB = server.peakResidentMiB
        return result
    }

    /// `devices` devices (each its own member) push `pushes` batches of 10 mutations each, from this process, as
    /// fast as the server process takes them; against fsync'ed single-row commits on the same disk. `lanes` is the
    /// number of pushes in flight: 32 reaches the server's throughput on two cores (16 does not quite), and more
    /// only lengthens the queue in front of the writer, so that the push's time says more about the load
    /// generator than about the server (docs/benchmarks.md: 64 gave the same throughput at twice the p99).
    func serverIngest(
        in directory: URL, runs: Int, devices: Int, pushes: Int, lanes laneCount: Int
    ) async throws
        -> BenchmarkResult
    {
        let data = directory.appendingPathComponent("ingest-server")
        let identities = try await SeededServer.seed(data) { seeded in
            var identities: [DeviceIdentity] = []
            for index in 0..<devices { identities.append(try await seeded.enroll(index)) }
            return identities
        }
        let server = try ServerProcess(data: data)
        defer { server.stop() }
        var samples: [Sample] = []
        var p50s: [Double] = []
        var p99s: [Double] = []
        var unitsPerCommit: [Double] = []
        var sequences = [UInt64](repeating: 0, count: devices)
        for run in 0..<runs {
            let commitsBefore = try Self.commitFigures(port: server.port)
            let (mutationsPerSecond, latencies, _) = try Self.ingest(
                identities, sequences: &sequences, pushes: pushes, lanes: laneCount, ports: [server.port])
            let commitsAfter = try Self.commitFigures(port: server.port)
            unitsPerCommit.append(
                (commitsAfter.units - commitsBefore.units) / max(1, commitsAfter.commits - commitsBefore.commits))
            let baseline = try Self.rawInserts(
                path: directory.appendingPathComponent("ingest-baseline-\(run).sqlite").path, count: 2_000)
            samples.append(
                Sample(
                    latencies: [mutationsPerSecond],
                    baseline: [1_000_000 / (baseline.reduce(0, +) / Double(baseline.count))]))
            p50s.append(BenchmarkResult.percentile(latencies, 0.5))
            p99s.append(BenchmarkResult.percentile(latencies, 0.99))
            FileHandle.standardError.write(
                Data(
                    ("  server-ingest run \(run + 1): \(Int(mutationsPerSecond)) mutations/s, push p50 "
                        + "\(Int(p50s.last! / 1_000)) ms, p99 \(Int(p99s.last! / 1_000)) ms\n").utf8))
        }
        let p99 = BenchmarkResult.percentile(p99s, 0.5)
        var result = BenchmarkResult(
            name: rawValue, unit: "mutations/s", samples: samples,
            parameters: [
                "devices": devices, "pushesPerDevice": pushes, "mutationsPerPush": 10, "connections": laneCount,
            ],
            bar: "≥ 20,000 mutations/s and ≥ 3x baseline; p99 push ≤ 50 ms"
        ) { value, baseline, _ in value >= 20_000 && value >= 3 * baseline && p99 <= 50_000 }
        result.extra["p99PushMicroseconds"] = p99
        result.extra["p50PushMicroseconds"] = BenchmarkResult.percentile(p50s, 0.5)
        result.extra["pushesPerCommit"] = BenchmarkResult.percentile(unitsPerCommit, 0.5)
        result.serverPeakResidentMiB = server.peakResidentMiB
        return result
    }

    /// The server's count of transactions that committed units of work on members, and of those units (from
    /// `/metrics`).
    static func commitFigures(port: Int) throws -> (commits: Double, units: Double) {
        let (status, body) = try LoadConnection(port: port).request("GET", "/metrics", token: ServerProcess.adminToken)
        guard status == 200 else { throw LoyaltyError("bench", "/metrics answered \(status)") }
        var figures: [String: Double] = [:]
        for line in String(decoding: body, as: UTF8.self).split(separator: "\n") where !line.hasPrefix("#") {
            let parts = line.split(separator: " ")
            // Names carry the instance's label: `loyalty_store_member_commits{instance_name="..."} 12`.
            let name = parts.first.map { $0.prefix { $0 != "{" } } ?? ""
            if parts.count == 2, let value = Double(parts[1]) { figures[String(name)] = value }
        }
        guard let commits = figures["loyalty_store_member_commits"],
            let units = figures["loyalty_store_member_units_committed"]
        else { throw LoyaltyError("bench", "/metrics has no commit figures") }
        return (commits, units)
    }

    /// `devices` devices (`perMember` to a member) each pull an unchanged cursor once, against the same number of
    /// requests for the server's static liveness answer.
    func fanOut(
        in directory: URL, runs: Int, members: Int, perMember: Int, lanes laneCount: Int,
        on backend: BenchBackend = .sqlite
    ) async throws
        -> BenchmarkResult
    {
        let data = directory.appendingPathComponent("\(rawValue)-server")
        let (identities, server) = try await backend.seededServer(data) { seeded in
            var identities: [DeviceIdentity] = []
            for index in 0..<members {
                let first = try await seeded.enroll(index)
                identities.append(first)
                for extra in 1..<perMember {
                    identities.append(
                        try await seeded.addDevice(
                            member: first.memberID, card: try CardNumber(first.cardNumber), name: "bench-\(extra)"))
                }
            }
            return identities
        }
        defer { server.stop() }
        // Each member's newest cursor, read once through the first device.
        struct Pull: Sendable {
            let token: String
            let body: [UInt8]
        }
        var pulls: [Pull] = []
        let setup = try LoadConnection(port: server.port)
        var cursor = 0
        var member: MemberID?
        for identity in identities {
            if identity.memberID != member {
                member = identity.memberID
                var after = Cursor.start
                while true {
                    let (status, answer) = try setup.request(
                        "POST", "/v1/sync/pull", token: identity.accessToken,
                        body: try Wire.pull(PullRequest(deviceID: identity.deviceID, cursor: after, limit: 500)))
                    guard status == 200,
                        let object = try JSONSerialization.jsonObject(with: Data(answer)) as? [String: Any],
                        let next = object["cursor"] as? Int
                    else { throw LoyaltyError("bench", "a pull failed: \(String(decoding: answer, as: UTF8.self))") }
                    after = Cursor(version: UInt64(next))
                    if object["hasMore"] as? Bool != true { break }
                }
                cursor = Int(after.version)
            }
            pulls.append(
                Pull(
                    token: identity.accessToken,
                    body: try Wire.pull(
                        PullRequest(deviceID: identity.deviceID, cursor: Cursor(version: UInt64(cursor)), limit: 200))))
        }
        var samples: [Sample] = []
        for _ in 0..<runs {
            let (_, seconds) = try drive(lanes(pulls, laneCount), port: server.port) { connection, pull in
                let (status, answer) = try connection.request(
                    "POST", "/v1/sync/pull", token: pull.token, body: pull.body)
                guard status == 200, AnswerBytes.contains(#""changes":[]"#, in: answer) else {
                    throw LoyaltyError(
                        "bench", "an unchanged pull answered \(status) \(String(decoding: answer, as: UTF8.self))")
                }
            }
            let (_, staticSeconds) = try drive(lanes(Array(0..<pulls.count), laneCount), port: server.port) {
                connection, _ in
                let (status, _) = try connection.request("GET", "/livez")
                guard status == 200 else { throw LoyaltyError("bench", "/livez answered \(status)") }
            }
            samples.append(
                Sample(latencies: [Double(pulls.count) / seconds], baseline: [Double(pulls.count) / staticSeconds]))
        }
        var result = BenchmarkResult(
            name: rawValue, unit: "requests/s", samples: samples,
            parameters: ["devices": pulls.count, "members": members, "connections": laneCount],
            bar: "≥ 50% of the baseline's requests/s"
        ) { value, baseline, _ in value >= 0.5 * baseline }
        result.serverPeakResidentMiB = server.peakResidentMiB
        return result
    }

    /// Rows per second of a bulk insert of `rows` rows (bodies of a pulled entity's size) in one transaction.
    static func bulkInsert(rows: Int, path: String) throws -> Double {
        var configuration = Configuration()
        configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
        let pool = try DatabasePool(path: path, configuration: configuration)
        try pool.write { db in
            try db.execute(
                sql:
                    "CREATE TABLE rows (kind TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL, body BLOB NOT NULL, PRIMARY KEY (kind, id))"
            )
        }
        let body = Data(repeating: 7, count: 300)
        let started = DispatchTime.now()
        try pool.write { db in
            let statement = try db.makeStatement(sql: "INSERT INTO rows (kind, id, version, body) VALUES (?, ?, ?, ?)")
            for index in 0..<rows { try statement.execute(arguments: ["lot", "row-\(index)", index, body]) }
        }
        return Double(rows) / (microseconds(since: started) / 1_000_000)
    }
}
