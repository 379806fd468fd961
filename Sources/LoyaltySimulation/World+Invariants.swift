internal import Foundation
internal import LoyaltyCore
internal import LoyaltyServer
internal import LoyaltyStore
internal import LoyaltySync

// What must hold after every step and once the world is quiet.
extension World {

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
