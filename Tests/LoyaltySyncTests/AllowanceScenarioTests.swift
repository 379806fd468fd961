import Foundation
import LoyaltyCore
import LoyaltyStore
import LoyaltySync
import LoyaltyTesting
import Testing

@testable import LoyaltyServer

/// Allowances (escrow) end to end: a real server on loopback, real device stores, the real engine. C3 of
/// CONFLICTS.md and its variants.
@Suite struct AllowanceScenarioTests {
    /// Every reservable point split across the devices, at most 1,000 each.
    static let everything = AllowancePolicy(share: 100, cap: 1000, lease: .days(7))

    /// Enrols a member on `count` devices, credits `points`, and syncs until every device holds its allowance.
    func member(
        _ harness: DeviceHarness, server: URL, devices count: Int, points: Int
    ) async throws -> [SyncEngine] {
        let email = "escrow-\(UUID().uuidString.prefix(6))@example.de"
        let (phone, tablet) = try await harness.pair(server: server, email: email)
        var devices = [phone, tablet]
        for index in 2..<max(count, 2) {
            let device = try harness.device("device-\(index)", server: server)
            _ = try await device.login(
                email: email, password: "correct horse", deviceName: "device \(index)",
                serverURL: server.absoluteString)
            devices.append(device)
        }
        try await harness.give(points, to: phone)
        await harness.settle(devices)
        return devices
    }

    func allowance(of device: SyncEngine) throws -> Allowance? {
        let id = try #require(try device.store.identity()).deviceID
        return device.store.view?.allowances[id]
    }

    func guaranteed(_ device: SyncEngine) throws -> [Bool] {
        try device.store.pendingMutations().map(\.guaranteed)
    }

    /// C3: balance 1,000; each device holds 500 and redeems 400 offline; both are accepted, whoever syncs first.
    @Test(arguments: StorageBackend.all, [true, false])
    func c3EachDeviceRedeemsWithinItsAllowanceOfflineAndBothAreAccepted(
        backend: StorageBackend, phoneFirst: Bool
    ) async throws {
        let harness = try await DeviceHarness.make(backend, program: { $0.allowances = Self.everything })
        try await harness.live { server in
            let devices = try await member(harness, server: server, devices: 2, points: 1000)
            _ = try await harness.service.createReward(Reward(id: "r400", title: "Headphones", cost: 400))
            await harness.settle(devices)
            for device in devices {
                #expect(try allowance(of: device)?.spendable(at: harness.clock.now()) == 500)
                try device.act(.redeemReward("r400"), at: harness.clock.now())
                #expect(try guaranteed(device) == [true])
                #expect(device.store.view?.vouchers.values.first?.status == .guaranteed)
            }
            let order = phoneFirst ? devices : devices.reversed()
            var reports: [SyncReport] = []
            for device in order { reports.append(await device.sync()) }
            #expect(reports.map(\.applied) == [1, 1], "both accepted")
            #expect(reports.map(\.rejected) == [0, 0])
            let server = try await harness.serverState(of: devices[0])
            #expect(server.ledger.available == 200)
            #expect(server.allowances.values.map(\.used).sorted() == [400, 400], "allowances reduced accordingly")
            try await ConflictScenarioTests.checkInvariants(harness, devices, reports: reports)
            for device in devices {
                #expect(device.store.view?.ledger.available == 200)
                #expect(device.store.view?.vouchers.values.allSatisfy { $0.status == .confirmed } == true)
            }
        }
    }

    /// Three devices, all offline at once, each spending its whole allowance: every redemption is accepted and
    /// the balance ends at exactly zero.
    @Test(arguments: StorageBackend.all)
    func allDevicesOfflineSpendTheirWholeAllowancesAtOnce(backend: StorageBackend) async throws {
        let harness = try await DeviceHarness.make(backend, program: { $0.allowances = Self.everything })
        try await harness.live { server in
            let devices = try await member(harness, server: server, devices: 3, points: 1500)
            for device in devices {
                #expect(try allowance(of: device)?.unused == 500)
                try device.act(.redeemReward("voucher-5"), at: harness.clock.now())
                #expect(try guaranteed(device) == [true])
            }
            var reports: [SyncReport] = []
            for device in devices.reversed() { reports.append(await device.sync()) }
            #expect(reports.reduce(0) { $0 + $1.applied } == 3)
            let server = try await harness.serverState(of: devices[0])
            #expect(server.ledger.available == 0)
            #expect(server.vouchers.count == 3)
            try await ConflictScenarioTests.checkInvariants(harness, devices, reports: reports)
        }
    }

    /// A redemption beyond the allowance is provisional, and is refused when another device's reserved points
    /// would be needed for it.
    @Test(arguments: StorageBackend.all)
    func aRedemptionBeyondTheAllowanceIsProvisionalAndReservedPointsAreNotItsToSpend(
        backend: StorageBackend
    ) async throws {
        let harness = try await DeviceHarness.make(backend, program: { $0.allowances = Self.everything })
        try await harness.live { server in
            let devices = try await member(harness, server: server, devices: 2, points: 1000)
            _ = try await harness.service.createReward(Reward(id: "r600", title: "Kettle", cost: 600))
            await harness.settle(devices)
            // The phone's view: 1000 available, but 500 are the tablet's, so 600 cannot even be tried offline.
            #expect(throws: LoyaltyError.self) {
                try devices[0].act(.redeemReward("r600"), at: harness.clock.now())
            }
            // The tablet's allowance is returned when it is signed out: now the phone can redeem it, provisionally.
            let tabletID = try #require(try devices[1].store.identity()).deviceID
            try await devices[0].revoke(tabletID)
            _ = await devices[0].sync()
            try devices[0].act(.redeemReward("r600"), at: harness.clock.now())
            #expect(try guaranteed(devices[0]) == [false])
            #expect(devices[0].store.view?.vouchers.values.first?.status == .provisional)
            let report = await devices[0].sync()
            #expect(report.applied == 1)
            let server = try await harness.serverState(of: devices[0])
            #expect(server.allowances[tabletID]?.status == .revoked, "a revoked device's allowance returns")
            #expect(server.ledger.available == 400)
            try await ConflictScenarioTests.checkInvariants(harness, [devices[0]], reports: [report])
        }
    }

    /// The till cannot spend points reserved for the devices, and the devices' guaranteed redemptions still go
    /// through after it spent everything else.
    @Test(arguments: StorageBackend.all, [true, false])
    func aTillRedemptionWhileAllowancesAreHeld(backend: StorageBackend, tillFirst: Bool) async throws {
        let harness = try await DeviceHarness.make(
            backend,
            program: { $0.allowances = AllowancePolicy(share: 50, cap: 1000, lease: .days(7)) })
        try await harness.live { server in
            let devices = try await member(harness, server: server, devices: 2, points: 1000)
            _ = try await harness.service.createReward(Reward(id: "r250", title: "Umbrella", cost: 250))
            await harness.settle(devices)
            let member = try #require(try devices[0].store.identity()).memberID.rawValue
            for device in devices {
                #expect(try allowance(of: device)?.unused == 250)
                try device.act(.redeemReward("r250"), at: harness.clock.now())
                #expect(try guaranteed(device) == [true])
            }
            var reports: [SyncReport] = []
            if !tillFirst { for device in devices { reports.append(await device.sync()) } }
            await #expect(throws: APIFailure.self, "500 of the 1000 points are reserved") {
                _ = try await harness.service.redeemAtTill(points: 600, card: nil, member: member, transaction: nil)
            }
            let till = try await harness.service.redeemAtTill(points: 500, card: nil, member: member, transaction: nil)
            #expect(till.points == -500)
            if tillFirst { for device in devices { reports.append(await device.sync()) } }
            #expect(reports.reduce(0) { $0 + $1.applied } == 2, "both guaranteed redemptions accepted")
            #expect(try await harness.serverState(of: devices[0]).ledger.available == 0)
            try await ConflictScenarioTests.checkInvariants(harness, devices, reports: reports)
        }
    }

    /// The expiry job runs while allowances are held: allowances draw only on lots that outlive their hold, so
    /// the points that expire were never reserved and the guaranteed redemption is accepted.
    @Test(arguments: StorageBackend.all)
    func theExpiryJobRunsWhileAllowancesAreHeld(backend: StorageBackend) async throws {
        let harness = try await DeviceHarness.make(
            backend,
            program: {
                $0.allowances = Self.everything
                $0.expiry = .monthsAfterEarning(1)
            })
        try await harness.live { server in
            let (phone, tablet) = try await harness.pair(server: server)
            try await harness.give(300, to: phone)  // lot A: expires a month after it was earned
            try await harness.give(500, to: phone)  // lot B, earned 15 days later
            await harness.settle([phone, tablet])
            let view = try #require(phone.store.view)
            let lotA = try #require(view.ledger.lots.values.min { $0.earnedAt < $1.earnedAt })
            let expiresA = try #require(lotA.expiresAt)
            let hold = try #require(try allowance(of: phone)?.holdUntil)
            #expect(expiresA < hold, "lot A expires while the allowance is held")
            #expect(try allowance(of: phone)?.points == 250, "half of lot B: lot A does not outlive the hold")
            _ = try await harness.service.createReward(Reward(id: "r250", title: "Umbrella", cost: 250))
            _ = await phone.sync()
            try phone.act(.redeemReward("r250"), at: harness.clock.now())
            #expect(try guaranteed(phone) == [true])
            try harness.clock.set(expiresA.adding(.hours(1)))
            let expired = try await harness.service.run(.expire)
            #expect(expired.movements >= 1)
            let report = await phone.sync()
            #expect(report.applied == 1)
            let server = try await harness.serverState(of: phone)
            #expect(server.ledger.available == 250)
            try await ConflictScenarioTests.checkInvariants(harness, [phone, tablet], reports: [report])
        }
    }

    /// A device gives its allowance back when it is half used and gets a fresh one; a redemption it records while
    /// giving it back is not counted on it. A lapsed allowance reserves nothing.
    @Test(arguments: StorageBackend.all)
    func anAllowanceIsReturnedAndRenewedWhenItSyncsAndLapsesWhenItDoesNot(backend: StorageBackend) async throws {
        let harness = try await DeviceHarness.make(backend, program: { $0.allowances = Self.everything })
        try await harness.live { server in
            let devices = try await member(harness, server: server, devices: 2, points: 2000)
            let phone = devices[0]
            #expect(try allowance(of: phone)?.grant == 1)
            try phone.act(.redeemReward("voucher-5"), at: harness.clock.now())
            #expect(try guaranteed(phone) == [true])
            _ = await phone.sync()  // the spend is confirmed: 500 of 1000 used
            #expect(try allowance(of: phone)?.unused == 500)
            // The next sync gives grant 1 back (half used) and brings grant 2.
            let request = try #require(try phone.store.allowanceRequest(at: harness.clock.now()))
            #expect(request.release == 1)
            #expect(try allowance(of: phone)?.status == .released, "not counted on while it is given back")
            try phone.act(.redeemReward("tote-bag"), at: harness.clock.now())
            #expect(try guaranteed(phone) == [false], "recorded while giving the allowance back: provisional")
            _ = await phone.sync()
            _ = await phone.sync()
            let renewed = try #require(try allowance(of: phone))
            #expect(renewed.grant == 2)
            #expect(renewed.status == .held)
            let server = try await harness.serverState(of: phone)
            #expect(server.ledger.available == 1200)
            // Nobody syncs for longer than the hold: the expiry job lets every allowance lapse.
            try harness.clock.set(renewed.holdUntil.adding(.hours(1)))
            _ = try await harness.service.run(.expire)
            let lapsed = try await harness.serverState(of: phone)
            #expect(lapsed.allowances.values.allSatisfy { $0.status == .lapsed })
            #expect(lapsed.reservedPoints(at: harness.clock.now()) == 0)
            try await ConflictScenarioTests.checkInvariants(harness, devices, reports: [])
        }
    }
}
