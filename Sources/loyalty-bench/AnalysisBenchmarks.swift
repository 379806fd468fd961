import Foundation
import GRDB
import Logging
import LoyaltyAnalysis
import LoyaltyCore
import LoyaltyServer

/// The analysis on a generated store (`loyalty-server generate`'s history, 24 months): the segment job over every
/// member against one bare SQL aggregate computing recency, frequency and monetary per member over the same
/// purchases (the lots of the entities table, read with SQLite's JSON functions), an incremental run after 1,000
/// new purchases, and the programme report over the 24 months. The store is generated once per size and kept for
/// both rows (not timed; its time is reported).
extension Benchmark {
    /// A generated store of `members` members: the service on it (its clock at the history's end) and the time it
    /// took to generate (0 when it was there already).
    static func generatedStore(
        in directory: URL, members: Int
    ) async throws -> (service: SyncService, path: String, seconds: Double) {
        let folder = directory.appendingPathComponent("analysis-\(members)")
        let exists = FileManager.default.fileExists(atPath: folder.appendingPathComponent("generated").path)
        var logger = Logger(label: "loyalty-bench")
        logger.logLevel = .warning
        let (storage, tokens) = try LoyaltyServerApp.embeddedStore(in: folder)
        try await storage.migrate()
        let service = try await DataGenerator.service(on: storage, tokens: tokens, seed: 2_026, logger: logger)
        let end = Timestamp(millisecondsSince1970: 1_796_000_000_000)
        var seconds = 0.0
        if !exists {
            let started = DispatchTime.now()
            let report = try await DataGenerator(members: members, months: 24, seed: 2_026, end: end).run(
                on: service
            ) { line in
                FileHandle.standardError.write(Data("  generating: \(line)\n".utf8))
            }
            seconds = microseconds(since: started) / 1_000_000
            FileHandle.standardError.write(Data("  generated \(report) in \(Int(seconds)) s\n".utf8))
            _ = FileManager.default.createFile(atPath: folder.appendingPathComponent("generated").path, contents: nil)
        }
        _ = try service.setClock(to: end, advanceBy: nil)
        return (service, folder.appendingPathComponent("loyalty.sqlite").path, seconds)
    }

    /// The segment job over every member (members/s) against the bare aggregate (members/s); the incremental run
    /// after 1,000 new purchases.
    func measureSegmentJob(in directory: URL, runs: Int, members: Int) async throws -> BenchmarkResult {
        let (service, path, generating) = try await Self.generatedStore(in: directory, members: members)
        _ = try? await service.defineSegment(name: "slipping", rule: "stage in (at-risk, lapsed) and monetary >= 100")
        _ = try? await service.defineSegment(name: "loyal", rule: "frequency >= 10 and r >= 4")
        let queue = try DatabaseQueue(path: path)
        var samples: [Sample] = []
        var incremental: [Double] = []
        var fullMs: [Double] = []
        var baselineMs: [Double] = []
        let ids = try await service.storage.memberIDs(after: nil, limit: members)
        for run in 0..<runs {
            // The baseline: recency, frequency and monetary per member in one statement.
            var started = DispatchTime.now()
            let rows = try Self.rfmAggregate(queue, at: service.now)
            let baseline = Self.microseconds(since: started) / 1000
            guard rows > 0 else { throw LoyaltyError("bench", "the aggregate found no purchases") }
            // The job over every member.
            started = DispatchTime.now()
            _ = try await service.run(.segment, everyMember: true)
            let full = Self.microseconds(since: started) / 1000
            _ = try await service.run(.segment)  // settles what the full run wrote (the members' segments)
            // 1,000 purchases by as many members, then the incremental run.
            for (index, member) in ids.enumerated() where index % max(1, ids.count / 1_000) == 0 {
                _ = try await service.recordPurchase(
                    amount: "25.00", card: nil, member: member.rawValue, receiptCode: nil,
                    transaction: "B-\(run)-\(index)")
            }
            started = DispatchTime.now()
            let report = try await service.run(.segment)
            incremental.append(Self.microseconds(since: started) / 1000)
            guard report.members > 0 else { throw LoyaltyError("bench", "the incremental run changed no member") }
            fullMs.append(full)
            baselineMs.append(baseline)
            samples.append(
                Sample(
                    latencies: [Double(members) / (full / 1000)], baseline: [Double(members) / (baseline / 1000)]))
        }
        let incrementalMs = BenchmarkResult.percentile(incremental, 0.5)
        var result = BenchmarkResult(
            name: rawValue, unit: "members/s", samples: samples, parameters: ["members": members, "months": 24],
            bar: "full job >= 0.3 of the bare aggregate's rate; incremental run after 1,000 purchases <= 1 s"
        ) { value, baseline, _ in value >= 0.3 * baseline && incrementalMs <= 1_000 }
        result.extra = [
            "fullJobMs": BenchmarkResult.percentile(fullMs, 0.5),
            "aggregateMs": BenchmarkResult.percentile(baselineMs, 0.5), "incrementalMs": incrementalMs,
            "generateSeconds": generating,
        ]
        return result
    }

    /// The programme report over 24 months by month, read from the maintained sums (ms, 20 reads a run).
    func measureReport(in directory: URL, runs: Int, members: Int) async throws -> BenchmarkResult {
        let (service, _, generating) = try await Self.generatedStore(in: directory, members: members)
        _ = try await service.run(.segment)
        let to = CalendarDate.of(service.now, in: TimeZone(identifier: "Europe/Berlin")!)
        let from = to.adding(days: -730)
        var samples: [Sample] = []
        for _ in 0..<runs {
            var latencies: [Double] = []
            for _ in 0..<20 {
                let started = DispatchTime.now()
                let report = try await service.programmeReport(from: from, to: to, by: .month)
                latencies.append(Self.microseconds(since: started) / 1000)
                guard report.headline.members == Int64(members) else {
                    throw LoyaltyError("bench", "the report counts \(report.headline.members) of \(members) members")
                }
            }
            samples.append(Sample(latencies: latencies, baseline: []))
        }
        var result = BenchmarkResult(
            name: rawValue, unit: "ms", samples: samples, parameters: ["members": members, "months": 24],
            bar: "a programme report over 24 months <= 200 ms"
        ) { value, _, _ in value <= 200 }
        result.extra = ["generateSeconds": generating]
        return result
    }

    /// Recency, frequency and monetary per member over the purchases (lots earned by a purchase), in one statement;
    /// returns the members it found.
    static func rfmAggregate(_ queue: DatabaseQueue, at now: Timestamp) throws -> Int {
        let yearAgo = now.adding(.days(-365)).millisecondsSince1970
        return try queue.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT scope, max(earned) AS last, count(CASE WHEN earned > ? THEN 1 END) AS frequency,
                        sum(CASE WHEN earned > ? THEN amount - returned ELSE 0 END) AS monetary
                    FROM (SELECT scope, unixepoch(json_extract(body, '$.earnedAt'), 'subsec') * 1000 AS earned,
                            json_extract(body, '$.purchaseAmount') AS amount,
                            json_extract(body, '$.returnedAmount') AS returned
                        FROM entities WHERE kind = 'lot' AND json_extract(body, '$.cause') = 'purchase')
                    GROUP BY scope
                    """, arguments: [yearAgo, yearAgo]
            ).count
        }
    }
}
