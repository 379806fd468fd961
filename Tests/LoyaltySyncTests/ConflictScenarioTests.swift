import Foundation
import LoyaltyCore
import LoyaltyStore
import LoyaltySync
import LoyaltyTesting
import Synchronization
import Testing

@testable import LoyaltyServer

/// Scenarios of ../shared/design/CONFLICTS.md against a real server on loopback with real device stores. Each ends
/// with every device synced and the invariants checked. C3 and its variants are in `AllowanceScenarioTests`, C14 in
/// `CLIDurabilityTests` (it kills the real `loyalty` process).
@Suite struct ConflictScenarioTests {
    /// The invariants that must hold after every scenario, once every device has synced. A sync can change what
    /// other devices must pull (a device's new allowance), so the devices first sync in rounds until a round
    /// brings nothing new.
    static func checkInvariants(_ harness: DeviceHarness, _ devices: [SyncEngine], reports: [SyncReport]) async throws {
        let reports = reports + (await harness.settle(devices))
        let server = try await harness.serverState(of: devices[0])
        let now = harness.clock.now()
        #expect(server.allowancesAreCovered(at: now), "reserved points are covered by points that outlive the holds")
        #expect(
            server.reservedPoints(at: now) <= max(server.ledger.available, 0),
            "the live allowances never exceed the available balance")
        for device in devices {
            #expect(device.store.confirmed == server, "a device's confirmed state equals the server's")
            #expect(try device.store.status().pending == 0, "the outbox drained")
            let history = try device.store.history(limit: 1_000_000)
            #expect(
                history.reduce(0) { $0 + $1.available } == server.ledger.available,
                "the balance is the sum of the ledger")
            #expect(history.reduce(0) { $0 + $1.pending } == server.ledger.pendingPoints)
            #expect(Set(history.map(\.id)).count == history.count, "no movement twice")
        }
        #expect(server.ledger.owed > 0 || server.ledger.available >= 0, "no member action took the balance below zero")
        for (id, record) in server.memberOffers {
            #expect(
                record.redemptions.count <= server.offers[id]?.usesPerMember ?? 0, "an offer is used at most its uses")
        }
        let rejected = reports.reduce(0) { $0 + $1.rejected }
        let rejectionNotices = try devices.reduce(0) {
            $0 + (try $1.store.notices().filter { $0.kind == .rejected }.count)
        }
        #expect(rejectionNotices == rejected, "every rejected mutation has a notice")
    }

    @Test(arguments: StorageBackend.all, [true, false])
    func c1BothDevicesRedeemTheSameSingleUseOfferOffline(backend: StorageBackend, phoneFirst: Bool) async throws {
        let harness = try await DeviceHarness.make(backend)
        try await harness.live { server in
            let (phone, tablet) = try await harness.pair(server: server)
            for device in [phone, tablet] {
                try device.act(.activateOffer("welcome-10"), at: harness.clock.now())
                try device.act(.redeemOffer("welcome-10"), at: harness.clock.now())
            }
            let (first, second) = phoneFirst ? (phone, tablet) : (tablet, phone)
            var reports = [await first.sync(), await second.sync()]
            reports.append(await first.sync())
            #expect(reports[0].rejected == 0)
            #expect(reports[1].rejected == 1, "the second push of the redemption is rejected")
            #expect(try second.store.notices().first?.message.contains("already redeemed") == true)
            for device in [phone, tablet] {
                #expect(
                    device.store.offers(at: harness.clock.now()).first { $0.offer.id == "welcome-10" }?.state
                        == .redeemed)
            }
            #expect(try await harness.serverState(of: phone).memberOffers["welcome-10"]?.redemptions.count == 1)
            try await Self.checkInvariants(harness, [phone, tablet], reports: reports)
        }
    }

    @Test(arguments: StorageBackend.all, [2, 3])
    func c2DevicesSpendTheSamePointsOfflineWithoutAllowance(backend: StorageBackend, devices count: Int) async throws {
        let harness = try await DeviceHarness.make(backend, program: { $0.allowances = .off })
        try await harness.live { server in
            let (phone, tablet) = try await harness.pair(server: server, email: "c2-\(count)@example.de")
            var devices = [phone, tablet]
            if count == 3 {
                let third = try harness.device("watch", server: server)
                _ = try await third.login(
                    email: "c2-3@example.de", password: "correct horse", deviceName: "watch",
                    serverURL: server.absoluteString)
                devices.append(third)
            }
            try await harness.give(1000, to: phone)
            _ = try await harness.service.createReward(Reward(id: "spa", title: "Spa", cost: 700))
            for device in devices { _ = await device.sync() }
            for device in devices { try device.act(.redeemReward("spa"), at: harness.clock.now()) }
            var reports: [SyncReport] = []
            for device in devices { reports.append(await device.sync()) }
            for device in devices { reports.append(await device.sync()) }
            #expect(reports.reduce(0) { $0 + $1.applied } == 1)
            #expect(reports.reduce(0) { $0 + $1.rejected } == count - 1)
            for device in devices { #expect(device.store.view?.ledger.available == 300) }
            try await Self.checkInvariants(harness, devices, reports: reports)
        }
    }

    @Test(arguments: StorageBackend.all)
    func c4OfflineEditsOfDifferentFieldsAreBothKept(backend: StorageBackend) async throws {
        let harness = try await DeviceHarness.make(backend)
        try await harness.live { server in
            let (phone, tablet) = try await harness.pair(server: server)
            try phone.act(.setProfileField(.phone, value: "+49 30 1111111", basedOn: nil), at: harness.clock.now())
            try tablet.act(
                .setProfileField(.address, value: "Hauptstraße 5, Hamburg", basedOn: nil), at: harness.clock.now())
            let reports = [await phone.sync(), await tablet.sync(), await phone.sync()]
            for device in [phone, tablet] {
                #expect(device.store.view?.profileValue(.phone) == "+49 30 1111111")
                #expect(device.store.view?.profileValue(.address) == "Hauptstraße 5, Hamburg")
                #expect(try device.store.notices().isEmpty)
            }
            try await Self.checkInvariants(harness, [phone, tablet], reports: reports)
        }
    }

    @Test(arguments: StorageBackend.all, [true, false])
    func c5OfflineEditsOfTheSameFieldTheLaterStampWins(backend: StorageBackend, laterPushesFirst: Bool) async throws {
        let harness = try await DeviceHarness.make(backend)
        try await harness.live { server in
            let (phone, tablet) = try await harness.pair(server: server)
            try phone.act(.setProfileField(.phone, value: "+49 30 1111111", basedOn: nil), at: harness.clock.now())
            try harness.clock.advance(by: .minutes(1))
            try tablet.act(.setProfileField(.phone, value: "+49 30 2222222", basedOn: nil), at: harness.clock.now())
            let order = laterPushesFirst ? [tablet, phone, tablet, phone] : [phone, tablet, phone, tablet]
            var reports: [SyncReport] = []
            for device in order { reports.append(await device.sync()) }
            for device in [phone, tablet] { #expect(device.store.view?.profileValue(.phone) == "+49 30 2222222") }
            let server = try await harness.serverState(of: phone)
            #expect(
                server.conflicts.values.map(\.losingValue) == ["+49 30 1111111"],
                "the losing value is in the conflict log")
            let phoneNotices = try phone.store.notices()
            #expect(phoneNotices.count == 1, "the losing device is told once: \(phoneNotices.map(\.message))")
            #expect(
                phoneNotices.first?.message.contains("+49 30 2222222") == true || phoneNotices.first?.kind == .adjusted)
            #expect(try tablet.store.notices().isEmpty)
            try await Self.checkInvariants(harness, [phone, tablet], reports: reports)
        }
    }

    /// C6 through devices: both devices act at the same instant on clocks that agree, so their stamps are exactly
    /// equal; the withdrawal wins on every device, whichever pushes first, and both changes stay in the history.
    @Test(arguments: StorageBackend.all, [true, false])
    func c6ConsentWithdrawnAndGrantedWithEqualStampsTheWithdrawalWins(
        backend: StorageBackend, withdrawalFirst: Bool
    ) async throws {
        let harness = try await DeviceHarness.make(backend)
        try await harness.live { server in
            let (phone, tablet) = try await harness.pair(server: server)
            // Past every stamp either device has seen, and each device's clock read so that its corrected time is
            // exactly `now` (their measured offsets may differ by a millisecond): each stamps (now, 0).
            try harness.clock.advance(by: .minutes(1))
            let now = harness.clock.now()
            func deviceTime(_ device: SyncEngine) throws -> Timestamp {
                now.adding(.milliseconds(-(try device.store.status().clockOffset.offset.milliseconds)))
            }
            let withdrawal = try phone.act(.setConsent(.marketingEmail, granted: false), at: try deviceTime(phone))
            let grant = try tablet.act(.setConsent(.marketingEmail, granted: true), at: try deviceTime(tablet))
            #expect(withdrawal.stamp == grant.stamp, "the stamps are exactly equal")
            let order = withdrawalFirst ? [phone, tablet] : [tablet, phone]
            var reports: [SyncReport] = []
            for device in order { reports.append(await device.sync()) }
            try await Self.checkInvariants(harness, [phone, tablet], reports: reports)
            let server = try await harness.serverState(of: phone)
            #expect(server.consents.changes.count == 2, "both changes kept as proof")
            for device in [phone, tablet] {
                #expect(device.store.view?.consents.isGranted(.marketingEmail) == false, "the withdrawal wins")
            }
        }
    }

    @Test(arguments: StorageBackend.all)
    func c7AnOfferWithdrawnWhileADeviceWasOfflineIsRefusedAfterTheWithdrawal(backend: StorageBackend) async throws {
        let harness = try await DeviceHarness.make(backend)
        try await harness.live { server in
            let (phone, tablet) = try await harness.pair(server: server)
            try await harness.service.withdrawOffer("welcome-10")
            try harness.clock.advance(by: .minutes(5))
            try phone.act(.activateOffer("welcome-10"), at: harness.clock.now())
            let reports = [await phone.sync(), await tablet.sync()]
            #expect(reports[0].rejected == 1)
            #expect(try phone.store.notices().first?.message.contains("withdrawn") == true)
            #expect(
                phone.store.offers(at: harness.clock.now()).first { $0.offer.id == "welcome-10" }?.state == .withdrawn)
            try await Self.checkInvariants(harness, [phone, tablet], reports: reports)
        }
    }

    @Test(arguments: StorageBackend.all, [(TimeSpan.hours(24), true), (.hours(80), false)])
    func c8AnOfferActivatedBeforeExpirySyncedAfterIt(backend: StorageBackend, timing: (TimeSpan, Bool)) async throws {
        let (syncDelay, accepted) = timing
        let harness = try await DeviceHarness.make(backend)
        try await harness.live { server in
            let (phone, tablet) = try await harness.pair(server: server)
            _ = try await harness.service.createOffer(
                Offer(
                    id: "flash", title: "Flash sale", validFrom: harness.clock.now(),
                    validUntil: harness.clock.now().adding(.hours(1))))
            _ = await phone.sync()
            try phone.act(.activateOffer("flash"), at: harness.clock.now().adding(.minutes(30)))
            try harness.clock.advance(by: syncDelay)
            let reports = [await phone.sync(), await tablet.sync()]
            #expect(reports[0].applied == (accepted ? 1 : 0), "within the 72h grace: accepted; after it: rejected")
            #expect(reports[0].rejected == (accepted ? 0 : 1))
            if !accepted { #expect(try phone.store.notices().first?.message.contains("expired") == true) }
            try await Self.checkInvariants(harness, [phone, tablet], reports: reports)
        }
    }

    @Test(arguments: StorageBackend.all, [true, false])
    func c9TheTillCreditsWhileADeviceOfflineSpendsPointsOnlyThePurchaseCovers(
        backend: StorageBackend, purchaseUnlockedFirst: Bool
    ) async throws {
        let harness = try await DeviceHarness.make(backend)
        try await harness.live { server in
            let (phone, tablet) = try await harness.pair(server: server)
            try await harness.give(400, to: phone)
            _ = try await harness.service.createReward(Reward(id: "lamp", title: "Lamp", cost: 600))
            _ = await phone.sync()
            // Offline, the phone believes the purchase's points are already there (it saw them pending, then waited).
            let member = try #require(try phone.store.identity()?.memberID)
            _ = try await harness.service.recordPurchase(
                amount: "300.00", card: nil, member: member.rawValue, receiptCode: nil, transaction: "T-C9")
            _ = await phone.sync()
            try harness.clock.advance(by: .days(15))
            if purchaseUnlockedFirst { _ = try await harness.service.run(.unlock) }
            // The device's own view still shows the purchase pending, so it cannot spend offline: give it the
            // unlocked state the way a device that synced after the unlock would have it.
            if purchaseUnlockedFirst { _ = await phone.sync() }
            let canAct = (phone.store.view?.ledger.available ?? 0) >= 600
            if canAct { try phone.act(.redeemReward("lamp"), at: harness.clock.now()) }
            var reports = [await phone.sync(), await tablet.sync()]
            if !purchaseUnlockedFirst {
                #expect(!canAct, "pending points cannot be spent, even offline")
                _ = try await harness.service.run(.unlock)
                reports += [await phone.sync(), await tablet.sync()]
            } else {
                #expect(reports[0].applied == 1)
            }
            try await Self.checkInvariants(harness, [phone, tablet], reports: reports)
        }
    }

    @Test(arguments: StorageBackend.all)
    func c10TheExpiryJobExpiresALotWhileADeviceOfflineSpendsIt(backend: StorageBackend) async throws {
        // The phone is away for two years: longer than a refresh token lives by default (docs/security.md).
        let harness = try await DeviceHarness.make(
            backend,
            configure: {
                $0.refresh.idleLifetime = .days(1_000)
                $0.refresh.absoluteLifetime = .days(1_000)
            })
        try await harness.live { server in
            let (phone, tablet) = try await harness.pair(server: server)
            try await harness.give(600, to: phone)
            _ = await phone.sync()
            let expiry = try #require(phone.store.view?.ledger.lots.values.first?.expiresAt)
            try harness.clock.set(expiry.adding(.hours(-1)))
            try phone.act(.redeemReward("voucher-5"), at: harness.clock.now())
            try harness.clock.set(expiry.adding(.minutes(10)))
            _ = try await harness.service.run(.expire)
            let reports = [await phone.sync(), await tablet.sync()]
            #expect(reports[0].rejected == 1)
            // Two years passed, so the device was also reset; the rejection is among its notices.
            let notices = try phone.store.notices()
            #expect(
                notices.contains { $0.kind == .rejected && $0.message.contains("points expired") },
                "\(notices.map(\.message))")
            #expect(phone.store.view?.ledger.available == 0)
            try await Self.checkInvariants(harness, [phone, tablet], reports: reports)
        }
    }

    @Test(arguments: StorageBackend.all)
    func c11AReturnReversesPointsAlreadySpentAndShowsThemAsOwed(backend: StorageBackend) async throws {
        let harness = try await DeviceHarness.make(backend)
        try await harness.live { server in
            let (phone, tablet) = try await harness.pair(server: server)
            let member = try #require(try phone.store.identity()?.memberID)
            _ = try await harness.service.recordPurchase(
                amount: "600.00", card: nil, member: member.rawValue, receiptCode: "R-C11", transaction: nil)
            try harness.clock.advance(by: .days(15))
            _ = try await harness.service.run(.unlock)
            _ = await phone.sync()
            try phone.act(.redeemReward("voucher-5"), at: harness.clock.now())
            var reports = [await phone.sync()]
            _ = try await harness.service.recordReturn(
                amount: "600.00", receiptCode: "R-C11", transaction: nil, returnID: nil)
            reports += [await phone.sync(), await tablet.sync()]
            for device in [phone, tablet] {
                let balance = try #require(device.store.balance(at: harness.clock.now()))
                #expect(balance.owed == 500)
                #expect(balance.available == -500, "shown as owed, not as an error or a lost entry")
            }
            try await Self.checkInvariants(harness, [phone, tablet], reports: reports)
        }
    }

    @Test(arguments: StorageBackend.all)
    func c12TheCardIsReplacedWhileADeviceIsOffline(backend: StorageBackend) async throws {
        let harness = try await DeviceHarness.make(backend)
        try await harness.live { server in
            let (phone, tablet) = try await harness.pair(server: server)
            let member = try #require(try phone.store.identity()?.memberID)
            let old = try #require(phone.store.view?.activeCard?.number)
            let replacement = try await harness.service.replaceCard(member: member)
            try tablet.act(.setConsent(.marketingPush, granted: true), at: harness.clock.now())
            let reports = [await tablet.sync(), await phone.sync()]
            for device in [phone, tablet] {
                #expect(device.store.view?.cards[old]?.status == .replaced)
                #expect(device.store.view?.activeCard?.number.digits == replacement.number)
            }
            await #expect(throws: APIFailure.self) {
                try await harness.service.recordPurchase(
                    amount: "10.00", card: old.digits, member: nil, receiptCode: nil, transaction: nil)
            }
            try await Self.checkInvariants(harness, [phone, tablet], reports: reports)
        }
    }

    @Test(arguments: StorageBackend.all)
    func c15SkewedClocksTheEditMadeLaterInRealTimeWins(backend: StorageBackend) async throws {
        let harness = try await DeviceHarness.make(backend)
        try await harness.live { server in
            let email = "c15@example.de"
            let ahead = try harness.device("ahead", server: server, skew: .days(1))
            let behind = try harness.device("behind", server: server, skew: .days(-1))
            _ = try await ahead.enroll(
                Registration(name: "Anna", email: email), password: "correct horse", deviceName: "ahead",
                serverURL: server.absoluteString)
            _ = try await behind.login(
                email: email, password: "correct horse", deviceName: "behind", serverURL: server.absoluteString)
            // The device a day ahead edits first, the one a day behind a minute later in real time.
            try ahead.act(
                .setProfileField(.phone, value: "+49 30 1111111", basedOn: nil),
                at: harness.clock.now().adding(.days(1)))
            try harness.clock.advance(by: .minutes(1))
            try behind.act(
                .setProfileField(.phone, value: "+49 30 2222222", basedOn: nil),
                at: harness.clock.now().adding(.days(-1)))
            let reports = [await ahead.sync(), await behind.sync(), await ahead.sync()]
            for device in [ahead, behind] { #expect(device.store.view?.profileValue(.phone) == "+49 30 2222222") }
            try await Self.checkInvariants(harness, [ahead, behind], reports: reports)
        }
    }

    @Test(arguments: StorageBackend.all)
    func c17AReceiptEarnsOnceAcrossDevicesAndMembers(backend: StorageBackend) async throws {
        let harness = try await DeviceHarness.make(backend)
        try await harness.live { server in
            let (phone, tablet) = try await harness.pair(server: server)
            let stranger = try harness.device("stranger", server: server)
            _ = try await stranger.enroll(
                Registration(name: "Jonas", email: "jonas-c17@example.de"), password: "correct horse", deviceName: nil,
                serverURL: server.absoluteString)
            _ = try await harness.service.issueReceipt(amount: "42.50", code: "R-C17", shop: nil, purchasedAt: nil)
            for device in [phone, tablet, stranger] {
                try device.act(.claimReceipt(code: "R-C17"), at: harness.clock.now())
            }
            var reports: [SyncReport] = []
            for device in [phone, tablet, stranger, phone] { reports.append(await device.sync()) }
            #expect(reports.reduce(0) { $0 + $1.applied } == 1)
            #expect(reports.reduce(0) { $0 + $1.rejected } == 2)
            #expect(phone.store.view?.ledger.pendingPoints == 42)
            #expect(stranger.store.view?.ledger.pendingPoints == 0)
            try await Self.checkInvariants(harness, [phone, tablet], reports: Array(reports[0...1]) + [reports[3]])
            try await Self.checkInvariants(harness, [stranger], reports: [reports[2]])
        }
    }

    @Test(arguments: StorageBackend.all)
    func c13APushWhoseAnswerIsLostIsRetriedAndAppliedOnce(backend: StorageBackend) async throws {
        let harness = try await DeviceHarness.make(backend)
        try await harness.live { server in
            let lost = Mutex(false)
            let lossy = InterposedTransport(
                HTTPSyncTransport(serverURL: server),
                loseAnswer: { call in
                    call == .push
                        && lost.withLock { done in
                            defer { done = true }
                            return !done
                        }
                })
            let phone = try harness.device("phone", server: server, transport: lossy)
            _ = try await phone.enroll(
                Registration(name: "Anna", email: "c13@example.de"), password: "correct horse", deviceName: nil,
                serverURL: server.absoluteString)
            let tablet = try harness.device("tablet", server: server)
            _ = try await tablet.login(
                email: "c13@example.de", password: "correct horse", deviceName: nil, serverURL: server.absoluteString)
            try await harness.give(1000, to: phone)
            _ = await phone.sync()
            try phone.act(.redeemReward("voucher-5"), at: harness.clock.now())
            let lostAnswer = await phone.sync()
            guard case .offline = lostAnswer.outcome else {
                Issue.record("the lost answer should look like a network failure: \(lostAnswer.outcome)")
                return
            }
            #expect(try await harness.serverState(of: phone).ledger.available == 500, "the server did apply it")
            #expect(try phone.store.status().pending == 1, "the device does not know yet")
            let reports = [await phone.sync(), await tablet.sync()]
            #expect(reports[0].outcome == .synced)
            #expect(reports[0].applied == 1)
            #expect(try await harness.serverState(of: phone).vouchers.count == 1, "applied exactly once")
            #expect(try await harness.serverState(of: phone).ledger.available == 500, "spent once")
            #expect(phone.store.view?.ledger.available == 500)
            try await Self.checkInvariants(harness, [phone, tablet], reports: reports)
        }
    }

    @Test(arguments: StorageBackend.all)
    func c16ADeviceAwayLongerThanRetentionIsResetAndItsQueueGoesThrough(backend: StorageBackend) async throws {
        let harness = try await DeviceHarness.make(backend)
        try await harness.live { server in
            let (phone, tablet) = try await harness.pair(server: server)
            try tablet.act(.setConsent(.marketingSMS, granted: true), at: harness.clock.now())
            try tablet.act(.activateOffer("welcome-10"), at: harness.clock.now())
            try harness.clock.advance(by: .days(40))
            try await harness.give(250, to: phone)
            try await harness.service.compactFeed()
            let reports = [await tablet.sync(), await phone.sync()]
            #expect(reports[0].notices.contains { $0.kind == .reset })
            #expect(reports[0].applied == 2, "its pending mutations still go through")
            try await Self.checkInvariants(harness, [phone, tablet], reports: reports)
        }
    }

    @Test(arguments: StorageBackend.all)
    func c18ARevokedDevicesQueueIsRefusedAndItWipesItself(backend: StorageBackend) async throws {
        let harness = try await DeviceHarness.make(backend)
        try await harness.live { server in
            let (phone, tablet) = try await harness.pair(server: server)
            try await harness.give(1000, to: phone)
            _ = await phone.sync()
            try phone.act(.redeemReward("voucher-5"), at: harness.clock.now())
            try await tablet.revoke(try #require(try phone.store.identity()).deviceID)
            let revoked = await phone.sync()
            #expect(revoked.outcome == .revoked)
            #expect(try phone.store.identity() == nil && phone.store.view == nil)
            let reports = [await tablet.sync()]
            #expect(try await harness.serverState(of: tablet).vouchers.isEmpty, "nothing of its queue was applied")
            try await Self.checkInvariants(harness, [tablet], reports: reports)
        }
    }
}
