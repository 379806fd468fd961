import Foundation
import GRDB
import LoyaltyCore
import LoyaltyServer

/// The scheduled jobs on a store of `members`: a run with nothing due (the index answers "no one"), and a run with
/// 1% of the members due (each due member one unit of work), against a full scan of every member (what every run
/// cost before the index). The store is filled directly in SQLite (the enrolment path would take an hour for
/// 100,000 members); the runs go through the service as the scheduler's do.
extension Benchmark {
    func jobs(in directory: URL, runs: Int, members: Int) async throws -> BenchmarkResult {
        let folder = directory.appendingPathComponent("jobs")
        return try await SeededServer.seed(folder) { seeded in
            let ids = try Self.fillMembers(members, path: folder.appendingPathComponent("loyalty.sqlite").path)
            let service = seeded.service
            let due = ids.enumerated().filter { $0.offset % 100 == 0 }.map(\.element)
            var samples: [Sample] = []
            var dueRuns: [Double] = []
            for _ in 0..<runs {
                // Nothing due: both jobs, as the scheduler runs them.
                var started = DispatchTime.now()
                let idle = try await service.run(.unlock).members + service.run(.expire).members
                let nothingDue = Self.microseconds(since: started) / 1000
                guard idle == 0 else { throw LoyaltyError("bench", "a run with nothing due moved \(idle) members") }
                // 1% due: each of them gets a lot whose return window has just ended.
                try await Self.arm(due, service: service)
                started = DispatchTime.now()
                let unlocked = try await service.run(.unlock)
                dueRuns.append(Self.microseconds(since: started) / 1000)
                guard unlocked.members == due.count else {
                    throw LoyaltyError("bench", "\(unlocked.members) of \(due.count) due members were unlocked")
                }
                samples.append(Sample(latencies: [nothingDue], baseline: []))
            }
            // The full scan, once: what every run cost before the index.
            let started = DispatchTime.now()
            _ = try await service.run(.unlock, everyMember: true)
            let fullScan = Self.microseconds(since: started) / 1000
            let dueRun = BenchmarkResult.percentile(dueRuns, 0.5)
            let perDue = dueRun / Double(due.count)
            let perScanned = fullScan / Double(members)
            var result = BenchmarkResult(
                name: rawValue, unit: "ms", samples: samples, parameters: ["members": members, "due": due.count],
                bar: "nothing due < 1 s; 1% due costs per member at most twice a full scan's"
            ) { value, _, _ in value < 1000 && perDue <= 2 * perScanned }
            result.extra = [
                "dueRunMs": dueRun, "perDueMemberMs": perDue, "fullScanMs": fullScan, "perScannedMemberMs": perScanned,
            ]
            return result
        }
    }

    /// Gives each member a pending lot whose return window ended a minute ago (its write records the member due).
    static func arm(_ members: [MemberID], service: SyncService) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (lane, chunk) in lanes(members, 16).enumerated() {
                group.addTask {
                    for (index, member) in chunk.enumerated() {
                        let now = Timestamp(Date())
                        try await service.storage.withMember(MemberWorkRequest(memberID: member, now: now)) { work in
                            let lot = EarnLot(
                                id: LotID("bench-\(lane)-\(index)-\(now.millisecondsSince1970)"), cause: .purchase,
                                amount: 5, earnedAt: now.adding(.days(-15)), pendingUntil: now.adding(.minutes(-1)),
                                expiresAt: now.adding(.days(700)), purchaseAmount: Money(minorUnits: 500))
                            work.state.merge(.lot(lot))
                            work.write([.lot(lot)])
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    /// Adds `count` members (account, member record, tier; nothing due) in one transaction; returns their ids.
    static func fillMembers(_ count: Int, path: String) throws -> [MemberID] {
        let queue = try DatabaseQueue(path: path)
        let program = try Program.decode(json: Data(DefaultProgramme.programJSON.utf8))
        let now = Timestamp(Date())
        var ids: [MemberID] = []
        try queue.write { db in
            var version = try Int64.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'version'") ?? 0
            let account = try db.makeStatement(
                sql: """
                    INSERT INTO accounts (member_id, email, password_hash, salt, created_at, unlock_due, expire_due)
                    VALUES (?, ?, x'00', x'00', ?, NULL, NULL)
                    """)
            let entity = try db.makeStatement(
                sql: "INSERT INTO entities (scope, kind, id, version, body, updated_at) VALUES (?, ?, ?, ?, ?, ?)")
            for index in 0..<count {
                let id = MemberID(String(format: "m-bench%07d", index))
                var state = MemberState(program: program, member: MemberRecord(id: id, createdAt: now))
                try account.execute(arguments: [id.rawValue, "bench\(index)@jobs.example", now.millisecondsSince1970])
                for written in [Entity.member(state.member)] + state.refreshTier(at: now) {
                    version += 1
                    try entity.execute(arguments: [
                        id.rawValue, written.key.kind.rawValue, written.key.id, version, try written.payloadJSON(),
                        now.millisecondsSince1970,
                    ])
                }
                ids.append(id)
            }
            try db.execute(sql: "UPDATE meta SET value = ? WHERE key = 'version'", arguments: [version])
        }
        return ids
    }
}
