import Foundation
import Logging
import LoyaltyCore
import LoyaltyServer
import LoyaltyStore
import LoyaltyTesting

#if canImport(Glibc)
import Glibc
#endif

/// The PostgreSQL rows: server-ingest against one `loyalty-server` on PostgreSQL and against two on the same
/// database, each against `pgbench` running the storage work of one push on the same cluster, with as many clients
/// as the load has connections, in the same run. They need a cluster: `LOYALTY_BENCH_DATABASE_URL` (or
/// `LOYALTY_TEST_DATABASE_URL`, which scripts/with-postgres.sh sets) naming a user that may create databases, and
/// `pgbench` (from `LOYALTY_PG_BIN`, or /usr/lib/postgresql/*/bin).
extension Benchmark {
    /// Why the PostgreSQL rows cannot run here, or nil.
    static var postgresMissing: String? {
        let environment = ProcessInfo.processInfo.environment
        if environment["LOYALTY_TEST_DATABASE_URL"] == nil, let url = environment["LOYALTY_BENCH_DATABASE_URL"] {
            setenv("LOYALTY_TEST_DATABASE_URL", url, 1)
        }
        guard StorageBackend.clusterURL != nil else {
            return "no PostgreSQL cluster: set LOYALTY_BENCH_DATABASE_URL, or run under scripts/with-postgres.sh"
        }
        guard pgbench != nil else { return "no pgbench: install postgresql, or set LOYALTY_PG_BIN" }
        return nil
    }

    static var pgbench: URL? {
        let directories =
            [ProcessInfo.processInfo.environment["LOYALTY_PG_BIN"]].compactMap { $0 }
            + ((try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []).sorted().reversed()
            .map { "/usr/lib/postgresql/\($0)/bin" }
        return directories.map { URL(fileURLWithPath: $0).appendingPathComponent("pgbench") }.first {
            FileManager.default.isExecutableFile(atPath: $0.path)
        }
    }

    func serverIngestPostgres(
        in directory: URL, runs: Int, devices: Int, pushes: Int, lanes laneCount: Int, seconds: Int
    ) async throws -> BenchmarkResult {
        let database = try await StorageBackend.freshDatabase()
        var logger = Logger(label: "loyalty-bench")
        logger.logLevel = .warning
        let storage = PostgresStorage(url: database, connections: 8, logger: logger)
        storage.runInBackground()
        let identities = try await SeededServer.seed(
            postgres: storage, directory: directory.appendingPathComponent("ingest-postgres")
        ) { seeded in
            var identities: [DeviceIdentity] = []
            for index in 0..<devices { identities.append(try await seeded.enroll(index)) }
            return identities
        }
        try await Self.preparePgbench(storage, members: devices)
        let url = Self.urlText(database)
        let first = try ServerProcess(data: directory.appendingPathComponent("pg-a"), database: url)
        defer { first.stop() }
        var samples: [Sample] = []
        var twoInstances: [Double] = []
        var p50s: [Double] = []
        var p99s: [Double] = []
        var shares: [(server: Double, database: Double)] = []
        var sequences = [UInt64](repeating: 0, count: devices)
        for run in 0..<runs {
            // One instance.
            let postgresBefore = Self.postgresCPUSeconds()
            let serverBefore = Self.processCPU(first.process.processIdentifier)
            let one = try Self.ingest(
                identities, sequences: &sequences, pushes: pushes, lanes: laneCount, ports: [first.port])
            let postgresAfter = Self.postgresCPUSeconds()
            let cores = Double(ProcessInfo.processInfo.activeProcessorCount)
            shares.append(
                (
                    (Self.processCPU(first.process.processIdentifier) - serverBefore) / (one.seconds * cores),
                    (postgresAfter - postgresBefore) / (one.seconds * cores)
                ))
            // The baseline: pgbench doing one push's storage work per transaction, as many clients.
            let baseline = try Self.runPgbench(database, members: devices, clients: laneCount, seconds: seconds)
            samples.append(Sample(latencies: [one.mutationsPerSecond], baseline: [baseline]))
            p50s.append(BenchmarkResult.percentile(one.latencies, 0.5))
            p99s.append(BenchmarkResult.percentile(one.latencies, 0.99))
            FileHandle.standardError.write(
                Data(
                    ("  server-ingest-postgres run \(run + 1): one instance \(Int(one.mutationsPerSecond)) mutations/s "
                        + "(p50 \(Int(p50s.last! / 1_000)) ms, p99 \(Int(p99s.last! / 1_000)) ms), pgbench "
                        + "\(Int(baseline)) mutations/s; CPU: server \(Int(shares.last!.server * 100))%, PostgreSQL "
                        + "\(Int(shares.last!.database * 100))%\n").utf8))
        }
        // Two instances on the same database, the lanes split between them: after the one-instance runs, because a
        // member written by the other instance must be loaded again from the database (a kept state is used only
        // at the versions it reflects), which would make the next one-instance run start by reloading every member.
        let second = try ServerProcess(data: directory.appendingPathComponent("pg-b"), database: url)
        defer { second.stop() }
        for run in 0..<runs {
            let two = try Self.ingest(
                identities, sequences: &sequences, pushes: pushes, lanes: laneCount, ports: [first.port, second.port])
            twoInstances.append(two.mutationsPerSecond)
            FileHandle.standardError.write(
                Data(
                    "  server-ingest-postgres run \(run + 1): two instances \(Int(two.mutationsPerSecond)) mutations/s\n"
                        .utf8))
        }
        let two = BenchmarkResult.percentile(twoInstances, 0.5)
        var result = BenchmarkResult(
            name: rawValue, unit: "mutations/s", samples: samples,
            parameters: [
                "devices": devices, "pushesPerDevice": pushes, "mutationsPerPush": 10, "connections": laneCount,
            ],
            bar: "one instance ≥ 0.5x pgbench doing the same storage work; two instances ≥ one"
        ) { value, baseline, _ in value >= 0.5 * baseline && two >= value * 0.95 }
        result.extra["twoInstancesMutationsPerSecond"] = two
        result.extra["p50PushMicroseconds"] = BenchmarkResult.percentile(p50s, 0.5)
        result.extra["p99PushMicroseconds"] = BenchmarkResult.percentile(p99s, 0.5)
        result.extra["serverCPUShare"] = BenchmarkResult.percentile(shares.map(\.server), 0.5)
        result.extra["postgresCPUShare"] = BenchmarkResult.percentile(shares.map(\.database), 0.5)
        result.serverPeakResidentMiB = first.peakResidentMiB
        return result
    }

    static func urlText(_ url: DatabaseURL) -> String {
        "postgres://\(url.user)@\(url.host):\(url.port)/\(url.database)?sslmode=\(url.tls.rawValue)"
    }

    /// Pushes of 10 consent changes from every device, the devices spread over `lanes` connections (and the
    /// connections over `ports`), each answer checked; bodies are made before the clock starts, so that generating
    /// the load costs the server's machine little.
    static func ingest(
        _ identities: [DeviceIdentity], sequences: inout [UInt64], pushes: Int, lanes laneCount: Int, ports: [Int]
    ) throws -> (mutationsPerSecond: Double, latencies: [Double], seconds: Double) {
        struct Push: Sendable {
            let token: String
            let body: [UInt8]
            let last: Int
        }
        var clocks = [HybridLogicalClock](repeating: HybridLogicalClock(), count: identities.count)
        var byDevice: [[Push]] = []
        for (index, identity) in identities.enumerated() {
            var made: [Push] = []
            for _ in 0..<pushes {
                let now = Timestamp(Date())
                let mutations = (0..<10).map { _ -> MutationEnvelope in
                    sequences[index] += 1
                    return MutationEnvelope(
                        deviceID: identity.deviceID, sequence: sequences[index], stamp: clocks[index].now(wall: now),
                        deviceTime: now, mutation: .setConsent(.marketingEmail, granted: sequences[index] % 2 == 0))
                }
                made.append(
                    Push(
                        token: identity.accessToken,
                        body: try Wire.push(PushRequest(deviceID: identity.deviceID, mutations: mutations)),
                        last: Int(sequences[index])))
            }
            byDevice.append(made)
        }
        // Each lane takes whole devices, so a device's pushes stay in order.
        let jobs = lanes(byDevice, laneCount).map { devicesInLane in
            (0..<pushes).flatMap { round in devicesInLane.map { $0[round] } }
        }
        let (latencies, seconds) = try drive(jobs, ports: ports) { connection, push in
            let (status, answer) = try connection.request("POST", "/v1/sync/push", token: push.token, body: push.body)
            guard status == 200, AnswerBytes.integer("lastProcessedSequence", in: answer) == push.last else {
                throw LoyaltyError(
                    "bench", "a push was not processed: \(status) \(String(decoding: answer, as: UTF8.self))")
            }
        }
        return (Double(identities.count * pushes * 10) / seconds, latencies, seconds)
    }

    /// Tables of the same shape as the server's for the pgbench baseline: a member's entities (as many, as large as
    /// an enrolled member's), its device, the results, the account's job times.
    static func preparePgbench(_ storage: PostgresStorage, members: Int) async throws {
        try await storage.runScript([
            "CREATE SEQUENCE pgb_version", "CREATE SEQUENCE pgb_result",
            """
            CREATE TABLE pgb_accounts (member_id bigint PRIMARY KEY, unlock_due bigint, expire_due bigint)
            """,
            """
            CREATE TABLE pgb_entities (member_id bigint NOT NULL, kind text NOT NULL, id text NOT NULL,
                version bigint NOT NULL UNIQUE, body bytea, updated_at bigint NOT NULL, PRIMARY KEY (member_id, kind, id))
            """,
            """
            CREATE TABLE pgb_devices (member_id bigint NOT NULL, id text NOT NULL, last_sequence bigint NOT NULL,
                last_acted_at bigint, last_seen_at bigint, PRIMARY KEY (member_id, id))
            """,
            """
            CREATE TABLE pgb_results (member_id bigint NOT NULL, device_id text NOT NULL, sequence bigint NOT NULL,
                result bytea NOT NULL, processed_at bigint NOT NULL, PRIMARY KEY (member_id, device_id, sequence))
            """,
            "INSERT INTO pgb_accounts SELECT m, NULL, NULL FROM generate_series(1, \(members)) m",
            """
            INSERT INTO pgb_entities SELECT m, 'kind' || e, 'id' || e, nextval('pgb_version'),
                convert_to(repeat('x', 300), 'UTF8'), 0
            FROM generate_series(1, \(members)) m, generate_series(1, 13) e
            """,
            "INSERT INTO pgb_devices SELECT m, 'd' || m, 0, NULL, NULL FROM generate_series(1, \(members)) m",
            "ANALYZE",
        ])
    }

    /// pgbench with the storage work of one push per transaction (the server's statements, in its order), `clients`
    /// clients for `seconds`; mutations per second (10 per transaction). Each client owns its members, as each of the
    /// load's connections owns its devices: pgbench stops its clients mid-transaction when the time is up, and one
    /// waiting for another's member lock would then wait for ever.
    static func runPgbench(_ url: DatabaseURL, members: Int, clients: Int, seconds: Int) throws -> Double {
        let script = FileManager.default.temporaryDirectory.appendingPathComponent("push-\(UUID().uuidString).sql")
        try """
        \\set m :client_id * \(max(1, members / clients)) + random(1, \(max(1, members / clients)))
        BEGIN;
        SELECT pg_advisory_xact_lock(1, :m);
        SELECT kind, body, version FROM pgb_entities WHERE member_id = :m AND body IS NOT NULL;
        SELECT * FROM pgb_devices WHERE member_id = :m;
        INSERT INTO pgb_results SELECT :m, 'd' || :m, nextval('pgb_result'), convert_to(repeat('r', 150), 'UTF8'), 0 FROM generate_series(1, 10);
        INSERT INTO pgb_entities SELECT :m, 'consent', 'marketingEmail', nextval('pgb_version'), convert_to(repeat('c', 250), 'UTF8'), 0 ON CONFLICT (member_id, kind, id) DO UPDATE SET version = excluded.version, body = excluded.body, updated_at = excluded.updated_at;
        UPDATE pgb_devices SET last_sequence = last_sequence + 10, last_acted_at = 1, last_seen_at = 1 WHERE id = 'd' || :m;
        UPDATE pgb_accounts SET unlock_due = NULL, expire_due = NULL WHERE member_id = :m;
        COMMIT;
        """.write(to: script, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: script) }
        guard let pgbench else { throw LoyaltyError("bench", "pgbench is missing") }
        let process = Process()
        process.executableURL = pgbench
        process.arguments = [
            // A count of transactions, not -T: pgbench times -T with SIGALRM, which the threads this process starts
            // children from block (the child inherits the mask and runs for ever). About 2,000 a second here.
            "-h", url.host, "-p", "\(url.port)", "-U", url.user, "-n", "-c", "\(clients)", "-j", "2", "-t",
            "\(max(50, seconds * 2_000 / clients))", "-f", script.path, url.database,
        ]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0,
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix("tps = ") }),
            let tps = Double(line.dropFirst(6).prefix { $0.isNumber || $0 == "." })
        else { throw LoyaltyError("bench", "pgbench failed: \(text)") }
        return tps * 10
    }

    /// CPU seconds used so far by this machine's PostgreSQL server processes (by the command name the server gives
    /// them; read only).
    static func postgresCPUSeconds() -> Double {
        var total = 0.0
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] where Int32(entry) != nil {
            guard let comm = try? String(contentsOfFile: "/proc/\(entry)/comm", encoding: .utf8),
                comm.trimmingCharacters(in: .whitespacesAndNewlines) == "postgres"
            else { continue }
            total += processCPU(Int32(entry)!)
        }
        return total
    }

    /// A process's user and system CPU seconds so far.
    static func processCPU(_ pid: Int32) -> Double {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return 0 }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // After the command: state is field 3; utime and stime are fields 14 and 15 (1-based in proc(5)).
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
}
