internal import Crypto
public import Foundation
internal import Logging
public import LoyaltyCore
public import LoyaltyServer
internal import LoyaltyStore
internal import LoyaltySync
internal import Synchronization

/// What one run of the simulator found.
public struct SimulationOutcome: Sendable {
    /// The seed.
    public var seed: UInt64
    /// The steps run.
    public var steps: Int
    /// Broken invariants, in the order found (empty: the run passed).
    public var failures: [String]
    /// The trace, one line per event.
    public var trace: [String]
    /// SHA-256 of the trace: two runs of one seed must agree on it.
    public var digest: String
    /// What happened, counted.
    public var counts: [String: Int]

    public var passed: Bool { failures.isEmpty }

    /// The last `lines` lines of the trace, for a failure report.
    public func tail(_ lines: Int) -> [String] { Array(trace.suffix(lines)) }
}

/// The simulator's settings.
public struct SimulationSettings: Sendable {
    /// Steps per run.
    public var steps = 300
    /// A bug to plant in the server (the self-test).
    public var plantedBug: PlantedBug?
    /// Where runs keep their SQLite files (a tmpfs if there is one).
    public var directory: URL

    public init(steps: Int = 300, plantedBug: PlantedBug? = nil, directory: URL? = nil) {
        self.steps = steps
        self.plantedBug = plantedBug
        let shm = URL(fileURLWithPath: "/dev/shm")
        self.directory =
            directory
            ?? (FileManager.default.isWritableFile(atPath: shm.path) ? shm : FileManager.default.temporaryDirectory)
    }
}

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
        configuration.plantedBug = settings.plantedBug
        var logger = Logger(label: "sim")
        logger.logLevel = .critical
        let storage = try SQLiteStorage(path: directory.appendingPathComponent("server.sqlite").path)
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

    // MARK: Steps

    func randomStep() async throws {
        switch dice.weighted([35, 30, 12, 6, 10, 7]) {
        case 0: try memberAction()
        case 1: try await sync(dice.pick(Array(devices.indices)))
        case 2: try await till()
        case 3: try await operate()
        case 4: advanceClock()
        default: try await fault()
        }
    }

    /// The member does something on one of their devices, offline or not.
    func memberAction() throws {
        let device = devices[dice.pick(Array(devices.indices))]
        guard let store = device.store, let view = store.view else { return }
        let mutation: Mutation
        switch dice.weighted([25, 15, 15, 10, 5, 15, 15]) {
        case 0:
            let rewards = view.rewards.keys.sorted()
            guard !rewards.isEmpty else { return }
            mutation = .redeemReward(dice.pick(rewards))
        case 1:
            // A receipt: one nobody claimed, one already claimed (by anyone), or a code that does not exist.
            let code: String
            switch dice.int(0...3) {
            case 0, 1: code = openReceipts.isEmpty ? "R-NONE-\(step)" : dice.pick(openReceipts)
            case 2: code = claimedReceipts.isEmpty ? "R-NONE-\(step)" : dice.pick(claimedReceipts)
            default: code = "R-NONE-\(step)"
            }
            mutation = .claimReceipt(code: code)
        case 2: mutation = .activateOffer(dice.pick(offers))
        case 3: mutation = .redeemOffer(dice.pick(offers))
        case 4:
            mutation = .answerSurvey(
                "store-visit", answers: ["rating": "\(dice.int(1...5))", "store": dice.pick(["Hamburg", "München"])])
        case 5:
            let field = dice.pick([ProfileField.phone, .address, .name])
            let value =
                switch field {
                case .phone: "+49 30 \(dice.int(1_000_000...9_999_999))"
                case .address: "Hauptstraße \(dice.int(1...99)), Berlin"
                default: dice.pick(["Anna Schmidt", "Anna Weber", "Anna Schmidt-Weber"])
                }
            mutation = .setProfileField(field, value: value, basedOn: nil)
        default:
            mutation = .setConsent(
                dice.pick([ConsentKind.marketingEmail, .marketingSMS, .profiling]), granted: dice.chance(0.5))
        }
        let deviceTime = now.adding(device.skew)
        do {
            let (envelope, outcome) = try store.record(mutation, at: deviceTime)
            device.recorded.append(envelope.sequence)
            if outcome.isGuaranteed, let hold = view.allowances[envelope.deviceID]?.holdUntil {
                device.guaranteed[envelope.sequence] = (
                    hold: hold, knownAt: device.lastSyncedAt ?? Timestamp(millisecondsSince1970: 0)
                )
                count("guaranteed redemptions")
            }
            count("mutations recorded")
            trace(
                "\(device.name) \(mutation.kind) #\(envelope.sequence)\(outcome.isGuaranteed ? " guaranteed" : "")"
            )
        } catch let error as DeviceStoreError {
            count("refused on the device")
            trace(
                "\(device.name) \(mutation.kind) refused on the device: \(error.rejection?.code.rawValue ?? error.code.rawValue)"
            )
        }
    }

    /// One device syncs; a crash during it discards the device's memory (its file stays).
    func sync(_ index: Int) async throws {
        let device = devices[index]
        if device.store == nil { try device.open(clock: clock) }
        if let until = device.partitionedUntil, now >= until {
            device.partitionedUntil = nil
            device.network.isOnline = true
            trace("\(device.name) partition healed")
        }
        let report = await device.engine!.sync()
        if report.outcome == .synced { device.lastSyncedAt = now }
        count("syncs")
        trace(
            "\(device.name) sync: \(report.outcome) pushed \(report.pushed) applied \(report.applied) "
                + "rejected \(report.rejected) pulled \(report.pulled)")
        try checkGuarantees(device)
        if device.network.takeCrash() {
            device.close()
            count("device crashes")
            trace("\(device.name) crashed; it will reopen from its file")
        }
    }

    /// The till credits a purchase (printing a receipt), records a return, or takes points.
    func till() async throws {
        let member = dice.pick(Array(members.indices))
        guard let id = members[member].id else { return }
        switch dice.weighted([60, 20, 20]) {
        case 0:
            // One purchase in eight is under a euro: it earns nothing, and can still be returned.
            let cents =
                dice.chance(0.125) ? Int64(dice.int(1...99)) : Int64(dice.int(5...400)) * 100 + Int64(dice.int(0...99))
            let code = "R-\(seed % 10_000)-\(step)"
            do {
                let credited = try await service.recordPurchase(
                    amount: Money(minorUnits: cents).description, card: nil, member: id.rawValue, receiptCode: nil,
                    transaction: "T-\(step)")
                purchases.append((member, "T-\(step)", cents, 0, now))
                trace("till: purchase for m\(member), \(credited.points ?? 0) points")
                // A printed receipt for another purchase the member may claim in the app.
                _ = try await service.issueReceipt(
                    amount: Money(minorUnits: cents / 2).description, code: code, shop: "sim", purchasedAt: now)
                openReceipts.append(code)
                count("purchases")
            } catch let failure as APIFailure {
                trace("till: purchase for m\(member) refused: \(failure.kind.code)")
            }
        case 1:
            let candidates = purchases.indices.filter {
                purchases[$0].member == member && purchases[$0].cents > purchases[$0].returned
            }
            // Half the time the member's oldest purchase with something left: often one whose lot has expired.
            guard let index = candidates.isEmpty ? nil : dice.chance(0.5) ? candidates[0] : dice.pick(candidates)
            else { return }
            let left = purchases[index].cents - purchases[index].returned
            guard left > 0 else { return }
            let amount = max(1, left / Int64(dice.int(1...3)))
            do {
                let receipt = try await service.recordReturn(
                    amount: Money(minorUnits: amount).description, receiptCode: nil,
                    transaction: purchases[index].transaction, returnID: nil)
                purchases[index].returned += amount
                members[member].lastReturnAt = now
                trace("till: return for m\(member), \(receipt.points ?? 0) points")
                count("returns")
                if purchases[index].at.adding(.days(61)) < now { count("returns of purchases over two months old") }
            } catch let failure as APIFailure {
                trace("till: return refused: \(failure.kind.code)")
            }
        default:
            do {
                let receipt = try await service.redeemAtTill(
                    points: dice.int(50...600), card: nil, member: id.rawValue, transaction: nil)
                trace("till: m\(member) pays \(-(receipt.points ?? 0)) points")
                count("till redemptions")
            } catch let failure as APIFailure {
                trace("till: redemption refused: \(failure.kind.code)")
            }
        }
    }

    /// The operator: offers, cards, jobs, compaction.
    func operate() async throws {
        switch dice.weighted([20, 15, 10, 25, 25, 5]) {
        case 0:
            let id = OfferID("sim-\(step)")
            _ = try await service.createOffer(
                Offer(
                    id: id, title: "Offer \(step)", validFrom: now,
                    validUntil: now.adding(.days(Int64(dice.int(1...20)))),
                    activationRequired: dice.chance(0.5), usesPerMember: dice.int(1...2)))
            offers.append(id)
            trace("operator: offer \(id) published")
        case 1:
            let id = dice.pick(offers)
            try? await service.withdrawOffer(id)
            trace("operator: offer \(id) withdrawn")
        case 2:
            let member = dice.pick(Array(members.indices))
            guard let id = members[member].id else { return }
            _ = try await service.replaceCard(member: id)
            trace("operator: card of m\(member) replaced")
        case 3:
            let report = try await service.run(.unlock)
            trace("job unlock: \(report.movements) movements")
        case 4:
            let report = try await service.run(.expire)
            trace("job expire: \(report.movements) movements")
        default:
            try await service.compactFeed()
            trace("operator: feed compacted")
        }
    }

    func advanceClock() {
        let span: TimeSpan = dice.chance(0.75) ? .hours(Int64(dice.int(1...48))) : .days(Int64(dice.int(2...12)))
        try? clock.advance(by: span)
        trace("clock +\(span) → \(now)")
    }

    func fault() async throws {
        let device = devices[dice.pick(Array(devices.indices))]
        switch dice.weighted([20, 25, 10, 20, 25]) {
        case 0:
            // Mostly hours; sometimes days; now and then longer than the feed keeps changes (a reset follows).
            let span: TimeSpan =
                switch dice.weighted([70, 20, 10]) {
                case 0: .hours(Int64(dice.int(2...48)))
                case 1: .days(Int64(dice.int(2...6)))
                default: .days(Int64(dice.int(31...45)))
                }
            device.partitionedUntil = now.adding(span)
            device.network.isOnline = false
            trace("\(device.name) partitioned for \(span)")
            count("partitions")
        case 1:
            device.close()
            trace("\(device.name) crashed (between steps); it will reopen from its file")
            count("device crashes")
        case 2:
            slot.replace(with: try await startServer())
            trace("server restarted from its file")
            count("server restarts")
        case 3:
            device.skew = .minutes(Int64(dice.int(-26 * 60...26 * 60)))
            trace("\(device.name) clock skew \(device.skew)")
        default:
            await device.network.deliverHeldBack()
            trace("\(device.name): held-back pushes delivered late")
        }
    }

    // MARK: Invariants

    /// Every redemption a device made as guaranteed was accepted, if it reached the server within its hold and
    /// no return took reserved points back since the device last learned its allowance (a return may cut
    /// allowances: docs/allowances.md).
    func checkGuarantees(_ device: SimDevice) throws {
        guard let store = device.store, !device.guaranteed.isEmpty else { return }
        let refused = try store.notices().filter { $0.kind == .rejected && $0.sequence != nil }
        for notice in refused {
            guard let sequence = notice.sequence, let promise = device.guaranteed.removeValue(forKey: sequence) else {
                continue
            }
            let returned = members[device.member].lastReturnAt.map { $0 >= promise.knownAt } ?? false
            if now <= promise.hold && !returned {
                fail("\(device.name): guaranteed redemption #\(sequence) was refused: \(notice.message)")
            }
        }
    }

    /// After every step: each member's server ledger equals the sum of its movements, no member action took the
    /// balance below zero, single-use offers are used at most their uses, and the allowances are covered. The
    /// server's state is read from its change feed, incrementally (a mirror per member, as a device keeps one), so a
    /// step costs what changed, not the whole history.
    func checkStepInvariants() async throws {
        for index in members.indices {
            guard let id = members[index].id else { continue }
            var mirror = members[index].mirror
            let page = try await service.storage.feed(member: id, after: mirror.cursor, limit: 1_000_000)
            for stored in page.changes {
                let change = try stored.decoded()
                mirror.cursor = Cursor(version: change.version)
                if case .upsert(.ledgerEntry(let entry)) = change.operation {
                    // A movement written again under its id replaces itself: it must not count twice.
                    mirror.entries[entry.id] = entry
                }
                guard mirror.state == nil else {
                    mirror.state?.apply(change)
                    continue
                }
                // Until the member record arrives (the catalogue comes first), changes wait.
                mirror.waiting.append(change)
                var program: Program?
                var record: MemberRecord?
                for waiting in mirror.waiting {
                    if case .upsert(.program(let value)) = waiting.operation { program = value }
                    if case .upsert(.member(let value)) = waiting.operation { record = value }
                }
                if let program, let record {
                    var state = MemberState(program: program, member: record)
                    for waiting in mirror.waiting { state.apply(waiting) }
                    mirror.state = state
                    mirror.waiting = []
                }
            }
            members[index].mirror = mirror
            guard let state = mirror.state else { continue }
            let movements = mirror.entries.values
            let available = movements.reduce(0) { $0 + $1.available }
            let pending = movements.reduce(0) { $0 + $1.pending }
            let owed = movements.reduce(0) { $0 + $1.owed }
            if available != state.ledger.available || pending != state.ledger.pendingPoints || owed != state.ledger.owed
            {
                fail(
                    "m\(index): the ledger (\(state.ledger.available) available, \(state.ledger.pendingPoints) pending, "
                        + "\(state.ledger.owed) owed) is not the sum of its movements (\(available), \(pending), \(owed))"
                )
            }
            // Every point a return revoked was taken exactly once: from a lot or as owed (the reversal movements),
            // or out of what its lot had lost to expiry (that lot's expired points went down by as much).
            let revoked = state.ledger.lots.values.reduce(0) { $0 + $1.revoked }
            var expiredAtExpiry: [LotID: Int] = [:]
            var taken = 0
            for movement in movements {
                if movement.kind == .reversal { taken -= movement.available + movement.pending }
                if movement.kind == .expire {
                    for draw in movement.draws { expiredAtExpiry[draw.lot, default: 0] += draw.points }
                }
            }
            let forgiven = state.ledger.lots.values.reduce(0) { sum, lot in
                lot.state == .expired ? sum + (expiredAtExpiry[lot.id] ?? 0) - lot.expiredPoints : sum
            }
            if revoked != taken + forgiven {
                fail(
                    "m\(index): returns revoked \(revoked) points but took \(taken) and forgave \(forgiven) expired ones"
                )
            }
            if state.ledger.available < 0 && state.ledger.owed == 0 {
                fail("m\(index): the balance is \(state.ledger.available) with nothing owed")
            }
            for (offer, record) in state.memberOffers
            where record.redemptions.count > state.offers[offer]?.usesPerMember ?? 0 {
                fail("m\(index): offer \(offer) used \(record.redemptions.count) times")
            }
            if !state.allowancesAreCovered(at: now) || state.reservedPoints(at: now) > max(state.ledger.available, 0) {
                fail("m\(index): allowances \(state.reservedPoints(at: now)) exceed what covers them")
            }
        }
    }

    /// Heals every partition, reopens every crashed device, turns faults off, delivers what was held back, and
    /// syncs every device in rounds until a round brings nothing new.
    func quiesce() async throws {
        trace("quiescence")
        for device in devices {
            device.partitionedUntil = nil
            device.network.isOnline = true
            device.network.rates = .none
            await device.network.deliverHeldBack()
            if device.store == nil { try device.open(clock: clock) }
        }
        for round in 1...6 {
            var quiet = true
            for index in devices.indices {
                let report = await devices[index].engine!.sync()
                try checkGuarantees(devices[index])
                trace("\(devices[index].name) final sync \(round): \(report.outcome) pulled \(report.pulled)")
                if report.outcome != .synced { fail("\(devices[index].name): the final sync ended \(report.outcome)") }
                if report.pushed > 0 || report.pulled > 0 { quiet = false }
            }
            if quiet && round >= 2 { return }
        }
        fail("the devices did not settle in six rounds")
    }

    /// At quiescence: every device equals the server, every outbox drained, no acknowledged mutation lost, every
    /// refused one has a notice, and no receipt earned twice.
    func checkQuiescentInvariants() async throws {
        var receiptLots: [String: Int] = [:]
        for member in members {
            guard let id = member.id else { continue }
            let state = try await service.overview(of: id).state
            for lot in state.ledger.lots.keys where lot.rawValue.hasPrefix("receipt:") {
                receiptLots[lot.rawValue, default: 0] += 1
            }
            for index in member.devices {
                let device = devices[index]
                guard let store = device.store, let identity = try store.identity() else {
                    fail("\(device.name) is signed out at quiescence")
                    continue
                }
                if let confirmed = store.confirmed, confirmed != state {
                    fail(
                        "\(device.name): its confirmed state differs from the server's: \(Self.difference(confirmed, state))"
                    )
                } else if store.confirmed == nil {
                    fail("\(device.name): it has no confirmed state")
                }
                if try store.status().pending != 0 { fail("\(device.name): its outbox did not drain") }
                let record = try await service.storage.device(identity.deviceID)
                let last = device.recorded.max() ?? 0
                if (record?.lastSequence ?? 0) < last {
                    fail(
                        "\(device.name): mutation #\(last) was acknowledged but the server processed only \(record?.lastSequence ?? 0)"
                    )
                }
                let results = try await service.storage.withMember(
                    MemberWorkRequest(memberID: id, now: now, deviceID: identity.deviceID, sequences: device.recorded)
                ) { $0.storedResults }
                let noticed = Set(try store.notices().filter { $0.kind == .rejected }.compactMap(\.sequence))
                for (sequence, result) in results {
                    if case .rejected = result.status, !noticed.contains(sequence) {
                        fail("\(device.name): mutation #\(sequence) was refused without a notice")
                    }
                }
            }
        }
        for (lot, times) in receiptLots where times > 1 { fail("\(lot) earned \(times) times") }
        trace("quiescent: every invariant checked")
    }
}

extension World {
    /// The entities that differ between two states (device first, server second), for a failure report.
    static func difference(_ device: MemberState, _ server: MemberState) -> String {
        let mine = Dictionary(device.entities.map { ($0.key, $0) }, uniquingKeysWith: { first, _ in first })
        let theirs = Dictionary(server.entities.map { ($0.key, $0) }, uniquingKeysWith: { first, _ in first })
        let keys = Set(mine.keys).union(theirs.keys).filter { mine[$0] != theirs[$0] }.sorted().prefix(3)
        return keys.map { key in
            "\(key): device \(mine[key].map { "\($0)" } ?? "none") / server \(theirs[key].map { "\($0)" } ?? "none")"
        }.joined(separator: "; ")
    }
}

struct SimMember {
    let index: Int
    let email: String
    var id: MemberID?
    var devices: [Int] = []
    var lastReturnAt: Timestamp?
    /// The server's state of the member, kept from its change feed.
    var mirror = Mirror()

    struct Mirror {
        var cursor = Cursor.start
        var waiting: [Change] = []
        var state: MemberState?
        var entries: [EntryID: LedgerEntry] = [:]
    }

    init(index: Int, email: String) {
        self.index = index
        self.email = email
    }
}

/// A device: its file, and (unless crashed) its store and engine in memory.
final class SimDevice: @unchecked Sendable {
    let name: String
    let member: Int
    let path: String
    let network: SimNetwork
    var store: DeviceStore?
    var engine: SyncEngine?
    var skew: TimeSpan = .zero
    var partitionedUntil: Timestamp?
    /// Sequence numbers the store acknowledged.
    var recorded: [UInt64] = []
    /// Redemptions made as guaranteed: their allowance's hold, and when the device last learned its allowance.
    var guaranteed: [UInt64: (hold: Timestamp, knownAt: Timestamp)] = [:]
    /// When the device last completed a sync.
    var lastSyncedAt: Timestamp?

    init(name: String, member: Int, path: String, network: SimNetwork) {
        self.name = name
        self.member = member
        self.path = path
        self.network = network
    }

    func open(clock: TestClock) throws {
        let store = try DeviceStore(path: path, now: clock.now())
        let skew: @Sendable () -> TimeSpan = { [unowned self] in self.skew }
        self.store = store
        self.engine = SyncEngine(
            store: store, transport: network, policy: SyncPolicy(pageSize: 100, prefetch: false, retries: 0),
            wallClock: { clock.now().adding(skew()) }, jitter: { 1 }, sleep: { _ in })
    }

    /// A crash: the memory is gone; the file is what the next start finds.
    func close() {
        store = nil
        engine = nil
    }
}
