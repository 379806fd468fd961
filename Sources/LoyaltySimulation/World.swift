internal import Crypto
internal import Foundation
internal import Logging
internal import LoyaltyCore
internal import LoyaltyServer
internal import LoyaltyStore
internal import LoyaltySync
internal import Synchronization

/// The simulated world of one run.
final class World: @unchecked Sendable {
    // One run is driven by one task, step after step; the lock only guards the trace against the network's
    // (synchronous) trace calls.
    let seed: UInt64
    let dice: Dice
    let directory: URL
    let settings: SimulationSettings
    let clock: TestClock
    let key = SymmetricKey(data: Data(repeating: 7, count: 32))
    var slot: ServerSlot!
    /// The database of this run on the cluster of `settings.postgres`, once made.
    var madeDatabase: DatabaseURL?
    var members: [SimMember] = []
    var devices: [SimDevice] = []
    var step = 0
    var failures: [String] = []
    var counts: [String: Int] = [:]
    private let traceLines = Mutex<[String]>([])
    var lines: [String] { traceLines.withLock { $0 } }

    /// Receipts the till printed and nobody claimed yet, and those already claimed.
    var openReceipts: [String] = []
    var claimedReceipts: [String] = []
    /// Purchases: the member's index, the till's transaction, the amount in cents, and how much was returned.
    var purchases: [(member: Int, transaction: String, cents: Int64, returned: Int64, at: Timestamp)] = []
    var offers: [OfferID] = ["welcome-10", "coffee-double", "gold-lounge"]

    init(seed: UInt64, directory: URL, settings: SimulationSettings) {
        self.seed = seed
        self.dice = Dice(seed: seed)
        self.directory = directory
        self.settings = settings
        let start = Timestamp.parse("2026-03-02T09:00:00Z")!
        self.clock = TestClock(base: { start })
    }

    var now: Timestamp { clock.now() }

    func trace(_ line: String) { traceLines.withLock { $0.append("[\(step)] " + line) } }

    func fail(_ message: String) {
        failures.append("step \(step): \(message)")
        trace("FAIL " + message)
    }

    func count(_ key: String) { counts[key, default: 0] += 1 }

    // MARK: Setting up

    func setUp() async throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        slot = ServerSlot(try await startServer())
        let memberCount = dice.int(2...3)
        for index in 0..<memberCount {
            let member = SimMember(index: index, email: "member\(index)@sim.example")
            members.append(member)
            for deviceIndex in 0..<dice.int(1...4) {
                let device = SimDevice(
                    name: "m\(index)d\(deviceIndex)", member: index,
                    path: directory.appendingPathComponent(
                        "m\(index)d\(deviceIndex).sqlite"
                    ).path,
                    network: SimNetwork(server: slot, dice: dice, name: "m\(index)d\(deviceIndex)") { [weak self] in
                        self?.trace($0)
                    })
                device.network.rates = .none  // signing in is not what this simulation tests
                try device.open(clock: clock)
                let report: SyncReport
                if deviceIndex == 0 {
                    report = try await device.engine!.enroll(
                        Registration(name: "Member \(index)", email: member.email), password: "simulation",
                        deviceName: device.name, serverURL: "sim://server")
                    members[index].id = try device.store!.identity()?.memberID
                } else {
                    report = try await device.engine!.login(
                        email: member.email, password: "simulation", deviceName: device.name,
                        serverURL: "sim://server")
                }
                device.network.rates = FaultRates()
                trace("\(device.name) signed in: \(report.outcome)")
                members[index].devices.append(devices.count)
                devices.append(device)
            }
        }
        // Rewards cheap enough for the devices' allowances (a guaranteed redemption), beside the catalogue's.
        _ = try await service.createReward(Reward(id: "sim-coffee", title: "Coffee", cost: 120))
        _ = try await service.createReward(Reward(id: "sim-cake", title: "Cake", cost: 200))
        // Every member starts with spendable points, and every device with its allowance.
        for member in members {
            guard let id = member.id else { continue }
            _ = try await service.recordPurchase(
                amount: "\(dice.int(300...1500)).00", card: nil, member: id.rawValue, receiptCode: nil,
                transaction: "T-start-\(member.index)")
        }
        try clock.advance(by: .days(8))
        _ = try await service.run(.unlock)
        for device in devices {
            device.network.rates = .none
            _ = await device.engine!.sync()
            device.network.rates = FaultRates()
        }
        trace("world: \(members.count) members, \(devices.count) devices")
    }

    func startServer() async throws -> SyncService {
        var configuration = ServerConfiguration()
        configuration.passwordHashing = ScryptParameters(logN: 1)
        configuration.retryHook = settings.plantedBug?.retryHook
        var logger = Logger(label: "sim")
        logger.logLevel = .critical
        let storage: any ServerStorage
        if let cluster = settings.postgres {
            // A restart opens a new pool on the same database: the restarted server finds what the first one wrote.
            let database = try await postgresDatabase(on: cluster)
            let postgres = PostgresStorage(url: database, connections: 4, idleTimeout: .seconds(2), logger: logger)
            postgres.runInBackground()
            storage = postgres
        } else {
            storage = try SQLiteStorage(path: directory.appendingPathComponent("server.sqlite").path)
        }
        let dice = self.dice
        let service = SyncService(
            storage: storage, clock: clock, configuration: configuration, tokens: TokenAuthority(key: key),
            logger: logger, makeID: { dice.id($0) })
        var program = try Program.decode(json: Data(DefaultProgramme.programJSON.utf8))
        // Months pass in a run: lots must expire within it, and the return window must pass.
        program.expiry = .monthsAfterEarning(2)
        program.pendingDays = 7
        program.allowances = AllowancePolicy(share: 80, cap: 1000, lease: .days(7))
        try await service.prepare(
            program: program, catalogue: try Catalogue.decode(json: Data(DefaultProgramme.catalogueJSON.utf8)))
        return service
    }

    var service: SyncService { slot.service }

    /// This run's database on the cluster, made on first use.
    func postgresDatabase(on cluster: DatabaseURL) async throws -> DatabaseURL {
        if let made = madeDatabase { return made }
        let admin = PostgresStorage(
            url: cluster, connections: 1, idleTimeout: .seconds(1), logger: Logger(label: "sim"))
        let name = "sim_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        try await admin.whileRunning { try await admin.createDatabase(named: name) }
        var database = cluster
        database.database = name
        madeDatabase = database
        return database
    }
}
