import Foundation
import LoyaltyCore
import Testing

@Suite struct AllowanceTests {
    let world = try! World()
    let phone: DeviceID = "d-phone"
    let tablet: DeviceID = "d-tablet"

    /// A member with `points` spendable points, the policy given, and a 400-point reward.
    func member(points: Int, policy: AllowancePolicy) throws -> MemberState {
        var state = try world.member(withPoints: points)
        state.program.allowances = policy
        state.merge(.reward(Reward(id: "r400", title: "Headphones", cost: 400)))
        return state
    }

    @Test func theStandardPolicySplitsHalfTheBalanceAcrossTheDevices() throws {
        var state = try member(points: 1000, policy: .standard)
        _ = state.grantAllowance(to: phone, devices: 2, at: .test())
        _ = state.grantAllowance(to: tablet, devices: 2, at: .test())
        #expect(state.allowances[phone]?.points == 250)
        #expect(state.allowances[tablet]?.points == 250)
        #expect(state.allowances[phone]?.leaseUntil == Timestamp.test(.days(7)))
        #expect(state.allowances[phone]?.holdUntil == Timestamp.test(.days(7)).adding(.hours(72)))
        // A device that holds one is not granted another.
        #expect(state.grantAllowance(to: phone, devices: 2, at: .test(.hours(1))).isEmpty)
    }

    @Test func theCapLimitsEachDevice() throws {
        var state = try member(points: 10_000, policy: AllowancePolicy(share: 100, cap: 800, lease: .days(7)))
        _ = state.grantAllowance(to: phone, devices: 1, at: .test())
        #expect(state.allowances[phone]?.points == 800)
    }

    @Test func allowancesOffGrantNothing() throws {
        var state = try member(points: 1000, policy: .off)
        #expect(state.grantAllowance(to: phone, devices: 1, at: .test()).isEmpty)
    }

    /// C3 in the core: both devices offline spend 400 of their 500 at once; the server accepts both.
    @Test func guaranteedRedemptionsOfTwoOfflineDevicesAreBothAccepted() throws {
        var server = try member(points: 1000, policy: AllowancePolicy(share: 100, cap: 1000, lease: .days(7)))
        _ = server.grantAllowance(to: phone, devices: 2, at: .test())
        _ = server.grantAllowance(to: tablet, devices: 2, at: .test())
        var phoneView = server
        var tabletView = server
        var phoneScript = DeviceScript(phone)
        var tabletScript = DeviceScript(tablet)
        let fromPhone = phoneScript.envelope(.redeemReward("r400"), at: .test(.hours(1)))
        let fromTablet = tabletScript.envelope(.redeemReward("r400"), at: .test(.hours(1)))
        #expect(phoneView.applyOnDevice(fromPhone, now: .test(.hours(1))).status == .applied)
        #expect(tabletView.applyOnDevice(fromTablet, now: .test(.hours(1))).status == .applied)
        #expect(phoneView.vouchers[VoucherID(fromPhone.mutationID)]?.status == .guaranteed)
        #expect(tabletView.vouchers[VoucherID(fromTablet.mutationID)]?.status == .guaranteed)
        #expect(server.applyOnServer(fromTablet, now: .test(.hours(5))).status == .applied)
        #expect(server.applyOnServer(fromPhone, now: .test(.hours(6))).status == .applied)
        #expect(server.ledger.available == 200)
        #expect(server.allowances[phone]?.unused == 100)
        #expect(server.allowances[tablet]?.unused == 100)
        #expect(server.allowancesAreCovered(at: .test(.hours(6))))
    }

    @Test func aRedemptionBeyondTheAllowanceIsProvisionalAndMayBeRefused() throws {
        var server = try member(points: 1000, policy: AllowancePolicy(share: 60, cap: 1000, lease: .days(7)))
        _ = server.grantAllowance(to: phone, devices: 2, at: .test())
        _ = server.grantAllowance(to: tablet, devices: 2, at: .test())
        #expect(server.allowances[phone]?.points == 300)
        var tabletView = server
        var script = DeviceScript(tablet)
        let envelope = script.envelope(.redeemReward("voucher-20"), at: .test(.hours(1)))
        server.merge(.reward(Reward(id: "r700", title: "Bike light", cost: 700)))
        tabletView.merge(.reward(Reward(id: "r700", title: "Bike light", cost: 700)))
        let big = script.envelope(.redeemReward("r700"), at: .test(.hours(1)))
        #expect(tabletView.applyOnDevice(big, now: .test(.hours(1))).status == .applied)
        #expect(tabletView.vouchers[VoucherID(big.mutationID)]?.status == .provisional)
        // On the server, the phone's 300 are not the tablet's to spend: 700 of 1000 are.
        #expect(server.applyOnServer(big, now: .test(.hours(2))).status == .applied)
        #expect(server.applyOnServer(envelope, now: .test(.hours(2))).rejection?.code == .insufficientPoints)
        #expect(server.ledger.available == 300)
        #expect(server.allowances[phone]?.unused == 300)
    }

    @Test func theTillCannotSpendReservedPoints() throws {
        var state = try member(points: 1000, policy: AllowancePolicy(share: 100, cap: 1000, lease: .days(7)))
        _ = state.grantAllowance(to: phone, devices: 2, at: .test())
        #expect(state.allowances[phone]?.points == 500)
        #expect(throws: LoyaltyError.self) { _ = try state.redeemAtTill("till-1", points: 600, card: nil, at: .test()) }
        let changes = try state.redeemAtTill("till-2", points: 500, card: nil, at: .test())
        #expect(!changes.isEmpty)
        #expect(state.ledger.available == 500)
        #expect(state.allowancesAreCovered(at: .test()))
    }

    @Test func aNegativeAdjustmentCannotTakeReservedPoints() throws {
        var state = try member(points: 1000, policy: AllowancePolicy(share: 100, cap: 1000, lease: .days(7)))
        _ = state.grantAllowance(to: phone, devices: 1, at: .test())
        #expect(throws: LoyaltyError.self) { _ = try state.adjustPoints(by: -10, reason: "x", id: "a1", at: .test()) }
    }

    /// Expiry: allowances draw only on lots that outlive their hold, so the expiry job never takes reserved points.
    @Test func lotsExpiringWithinTheHoldAreNotReserved() throws {
        var state = try member(points: 0, policy: AllowancePolicy(share: 100, cap: 10_000, lease: .days(7)))
        let soon = Timestamp.test(.days(3))
        state.ledger.store(
            EarnLot(
                id: "short", cause: .adjustment, amount: 600, earnedAt: .test(.days(-700)), pendingUntil: nil,
                expiresAt: soon))
        state.ledger.store(
            EarnLot(
                id: "long", cause: .adjustment, amount: 400, earnedAt: .test(), pendingUntil: nil,
                expiresAt: .test(.days(700))))
        _ = state.grantAllowance(to: phone, devices: 1, at: .test())
        #expect(state.allowances[phone]?.points == 400)
        var view = state
        var script = DeviceScript(phone)
        let spend = script.envelope(.redeemReward("r400"), at: .test(.days(1)))
        #expect(view.applyOnDevice(spend, now: .test(.days(1))).status == .applied)
        #expect(view.vouchers[VoucherID(spend.mutationID)]?.status == .guaranteed)
        // The expiry job runs before the phone syncs: the short lot goes, the reserved points stay.
        _ = state.expireLots(at: soon.adding(.minutes(1)))
        #expect(state.ledger.available == 400)
        #expect(state.allowancesAreCovered(at: soon.adding(.minutes(1))))
        #expect(state.applyOnServer(spend, now: .test(.days(4))).status == .applied)
        #expect(state.ledger.available == 0)
    }

    @Test func aReturnCutsTheAllowancesToWhatIsLeft() throws {
        var state = try member(points: 1000, policy: AllowancePolicy(share: 100, cap: 1000, lease: .days(7)))
        _ = state.grantAllowance(to: phone, devices: 2, at: .test())
        _ = state.grantAllowance(to: tablet, devices: 2, at: .test())
        let changes = try state.recordReturn(
            "ret-1", of: "purchase:tx-start", amount: Money(minorUnits: 40_000), at: .test())
        #expect(state.ledger.available == 600)
        #expect(state.reservedPoints(at: .test()) == 600)
        #expect(state.allowancesAreCovered(at: .test()))
        #expect(changes.contains { if case .allowance(let a) = $0 { a.cut > 0 } else { false } })
    }

    @Test func releasedLapsedAndRevokedAllowancesReserveNothing() throws {
        var state = try member(points: 1000, policy: .standard)
        _ = state.grantAllowance(to: phone, devices: 2, at: .test())
        _ = state.grantAllowance(to: tablet, devices: 2, at: .test())
        #expect(state.releaseAllowance(of: phone, grant: 2).isEmpty)  // not the grant it holds
        #expect(state.releaseAllowance(of: phone, grant: 1).count == 1)
        #expect(state.allowances[phone]?.status == .released)
        #expect(state.revokeAllowance(of: tablet).count == 1)
        #expect(state.reservedPoints(at: .test()) == 0)
        _ = state.grantAllowance(to: phone, devices: 1, at: .test(.days(1)))
        #expect(state.allowances[phone]?.grant == 2)
        let hold = try #require(state.allowances[phone]?.holdUntil)
        #expect(state.reservedPoints(at: hold) == 500)
        #expect(state.reservedPoints(at: hold.adding(.milliseconds(1))) == 0)
        #expect(state.lapseAllowances(at: hold.adding(.milliseconds(1))).count == 1)
        #expect(state.allowances[phone]?.status == .lapsed)
    }

    @Test func aProgrammeWithoutAllowanceRulesGetsTheStandardPolicy() throws {
        var json = try JSONSerialization.jsonObject(with: Fixtures.data("program.json")) as! [String: Any]
        #expect(json.removeValue(forKey: "allowances") != nil)
        let withoutRules = try Program.decode(json: try JSONSerialization.data(withJSONObject: json))
        #expect(withoutRules.allowances == .standard)
        var program = try Fixtures.program()
        program.allowances = AllowancePolicy(share: 101, cap: 10, lease: .days(1))
        #expect(throws: LoyaltyError.self) { try program.validate() }
    }

    /// The escrow rule under random operations: devices spend offline (within and beyond their allowances), sync
    /// at random, give allowances back and get new ones; the till spends; the expiry and unlock jobs run; time
    /// passes. After every step the reserved points are covered, and every redemption a device made as guaranteed
    /// is accepted when it reaches the server within its hold.
    @Test func theRuleHoldsUnderRandomOperations() throws {
        var checked = 0
        for seed in UInt64(0)..<200 { checked += try randomRun(seed: seed) }
        // The runs must have tested the promise, not only the bookkeeping.
        #expect(checked > 500)
    }

    /// One random run; returns how many guaranteed redemptions it checked.
    func randomRun(seed: UInt64) throws -> Int {
        var random = SeededRandom(seed: seed)
        var server = try member(points: 0, policy: AllowancePolicy(share: 80, cap: 900, lease: .days(7)))
        server.program.expiry = .monthsAfterEarning(2)
        server.program.pendingDays = 3
        server.merge(.reward(Reward(id: "r150", title: "Mug", cost: 150)))
        let devices: [DeviceID] = ["d-1", "d-2", "d-3"]
        var views = Dictionary(uniqueKeysWithValues: devices.map { ($0, server) })
        var scripts = Dictionary(uniqueKeysWithValues: devices.map { ($0, DeviceScript($0)) })
        var queues: [DeviceID: [(MutationEnvelope, guaranteed: Bool, holdUntil: Timestamp?)]] = [:]
        var now = Timestamp.test()
        var purchases = 0
        var guaranteedChecked = 0
        for step in 0..<120 {
            now = now.adding(.hours(random.int64(0...30)))
            let device = random.pick(devices)
            switch random.int(0..<10) {
            case 0, 1:
                purchases += 1
                let amount = Money(minorUnits: random.int64(50...900) * 100)
                _ = try server.recordPurchase(TransactionID("tx-\(purchases)"), amount: amount, card: nil, at: now)
            case 2:
                _ = server.runJobs(at: now)
            case 3:
                _ = try? server.redeemAtTill(
                    TransactionID("till-\(step)"), points: random.int(1...400), card: nil, at: now)
            case 4, 5, 6:
                let reward: RewardID = random.pick(["r150", "r400", "voucher-5"])
                let envelope = scripts[device]!.envelope(.redeemReward(reward), at: now)
                let outcome = views[device]!.applyOnDevice(envelope, now: now)
                if outcome.status == .applied {
                    let guaranteed = views[device]!.vouchers[VoucherID(envelope.mutationID)]?.status == .guaranteed
                    queues[device, default: []].append(
                        (envelope, guaranteed, views[device]!.allowances[device]?.holdUntil))
                }
            default:
                for (envelope, guaranteed, holdUntil) in queues[device] ?? [] {
                    let outcome = server.applyOnServer(envelope, now: now)
                    if guaranteed, let holdUntil, now <= holdUntil {
                        #expect(outcome.status == .applied, "seed \(seed) step \(step): \(outcome.status)")
                        guaranteedChecked += 1
                    }
                }
                queues[device] = []
                if let held = server.allowances[device], held.isHeld(at: now), random.bool() {
                    _ = server.releaseAllowance(of: device, grant: held.grant)
                }
                _ = server.lapseAllowances(at: now)
                _ = server.grantAllowance(to: device, devices: devices.count, at: now)
                views[device] = server
            }
            #expect(server.allowancesAreCovered(at: now), "seed \(seed) step \(step)")
            #expect(server.ledger.available >= 0, "seed \(seed) step \(step)")
            #expect(server.reservedPoints(at: now) <= max(server.ledger.available, 0), "seed \(seed) step \(step)")
        }
        return guaranteedChecked
    }
}
