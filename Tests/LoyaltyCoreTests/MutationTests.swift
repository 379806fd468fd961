import LoyaltyCore
import Testing

@Suite struct OfferMutationTests {
    let world: World
    init() throws { world = try World() }

    @Test func anOfferMovesFromAvailableToActivatedToRedeemed() throws {
        var state = try world.member()
        var device = DeviceScript("phone")
        #expect(state.offerStates(at: .test())["welcome-10"] == .available)

        let activation = state.applyOnServer(device.envelope(.activateOffer("welcome-10")))
        #expect(activation.status == .applied)
        #expect(state.offerStates(at: .test())["welcome-10"] == .activated)

        let redemption = state.applyOnServer(device.envelope(.redeemOffer("welcome-10")))
        #expect(redemption.status == .applied)
        #expect(state.offerStates(at: .test())["welcome-10"] == .redeemed)
        #expect(state.offerStates(at: .test(.days(1000)))["welcome-10"] == .redeemed, "what was used stays used")
    }

    @Test func offerStatesFollowExpiryAndWithdrawal() throws {
        var state = try world.member()
        #expect(state.offerStates(at: .test(.days(800)))["welcome-10"] == .expired)
        var offer = try #require(state.offers["welcome-10"])
        offer.withdrawnAt = .test(.days(1))
        state.merge(.offer(offer))
        #expect(state.offerStates(at: .test())["welcome-10"] == .available)
        #expect(state.offerStates(at: .test(.days(2)))["welcome-10"] == .withdrawn)
    }

    @Test func activatingTwiceIsOneActivation() throws {
        var state = try world.member()
        var phone = DeviceScript("phone")
        var tablet = DeviceScript("tablet")
        #expect(state.applyOnServer(phone.envelope(.activateOffer("welcome-10"))).changes.count == 1)
        let second = state.applyOnServer(tablet.envelope(.activateOffer("welcome-10")))
        #expect(second.status == .applied)
        #expect(second.changes.isEmpty)
    }

    @Test func aSingleUseOfferIsRedeemedOnceAndAMultiUseOfferUpToItsLimit() throws {
        var state = try world.member(segments: ["coffee-lovers"])
        var device = DeviceScript("phone")
        _ = state.applyOnServer(device.envelope(.activateOffer("welcome-10")))
        #expect(state.applyOnServer(device.envelope(.redeemOffer("welcome-10"))).status == .applied)
        let again = state.applyOnServer(device.envelope(.redeemOffer("welcome-10")))
        #expect(again.rejection?.code == .offerAlreadyRedeemed)

        for _ in 0..<3 {
            #expect(state.applyOnServer(device.envelope(.redeemOffer("coffee-double"))).status == .applied)
        }
        #expect(
            state.applyOnServer(device.envelope(.redeemOffer("coffee-double"))).rejection?.code == .offerAlreadyRedeemed
        )
    }

    @Test(arguments: [
        ("nope", Mutation.activateOffer("nope"), MutationRejection.Code.offerNotFound),
        ("untargeted", .activateOffer("gold-lounge"), .offerNotTargeted),
        ("not activated", .redeemOffer("welcome-10"), .offerNotActivated),
    ])
    func offerMutationsAreRefusedWithTheirReason(label: String, mutation: Mutation, code: MutationRejection.Code) throws
    {
        var state = try world.member()
        let before = state
        var device = DeviceScript("phone")
        let outcome = state.applyOnServer(device.envelope(mutation))
        #expect(outcome.rejection?.code == code, "\(label)")
        #expect(outcome.changes.isEmpty)
        #expect(state == before, "a rejected mutation changed the state")
    }

    @Test func validityIsJudgedAtTheTimeTheMemberActedWithinTheGraceWindow() throws {
        var state = try world.member()
        let validUntil = try #require(state.offers["welcome-10"]?.validUntil)
        var device = DeviceScript("phone")
        // Acted an hour before expiry, synced a day after: within the 72h grace, so judged at the time it acted.
        let inGrace = device.envelope(.activateOffer("welcome-10"), at: validUntil.adding(.hours(-1)))
        #expect(state.applyOnServer(inGrace, now: validUntil.adding(.days(1))).status == .applied)

        var late = try world.member()
        var other = DeviceScript("tablet")
        // Acted before expiry but synced four days later: the claim is older than the grace allows.
        let afterGrace = other.envelope(.activateOffer("welcome-10"), at: validUntil.adding(.hours(-1)))
        #expect(late.applyOnServer(afterGrace, now: validUntil.adding(.days(4))).rejection?.code == .offerExpired)
    }

    @Test func theServerNeverBelievesAnActionTimeInTheFutureOrBeforeWhatItSawFromTheDevice() {
        let now = Timestamp.test()
        let future = ApplyContext.server(
            now: now, claimedActedAt: now.adding(.days(2)), grace: .hours(72), notBefore: nil, facts: ServerFacts())
        #expect(future.actedAt == now)
        let floored = ApplyContext.server(
            now: now, claimedActedAt: now.adding(.hours(-10)), grace: .hours(72), notBefore: now.adding(.hours(-2)),
            facts: ServerFacts())
        #expect(floored.actedAt == now.adding(.hours(-2)))
        let old = ApplyContext.server(
            now: now, claimedActedAt: now.adding(.days(-10)), grace: .hours(72), notBefore: nil, facts: ServerFacts())
        #expect(old.actedAt == now.adding(.hours(-72)))
    }

    @Test func anOfferIsRefusedBeforeItsValidityStarts() throws {
        var state = try world.member()
        state.merge(
            .offer(Offer(id: "summer", title: "Summer", validFrom: .test(.days(10)), validUntil: .test(.days(40)))))
        var device = DeviceScript("phone")
        let early = state.applyOnServer(device.envelope(.activateOffer("summer")))
        #expect(early.rejection?.code == .offerNotYetValid)
        #expect(state.offerStates(at: .test())["summer"] == .available)
        #expect(
            state.applyOnServer(device.envelope(.activateOffer("summer"), at: .test(.days(11))), now: .test(.days(11)))
                .status == .applied)
    }

    @Test func aWithdrawnOfferIsRefusedIfTheMemberActedAfterTheWithdrawal() throws {
        var state = try world.member()
        var offer = try #require(state.offers["welcome-10"])
        offer.withdrawnAt = .test()
        state.merge(.offer(offer))
        var device = DeviceScript("phone")
        let before = device.envelope(.activateOffer("welcome-10"), at: .test(.minutes(-5)))
        let after = device.envelope(.activateOffer("welcome-10"), at: .test(.minutes(5)))
        var copy = state
        #expect(copy.applyOnServer(after, now: .test(.hours(1))).rejection?.code == .offerWithdrawn)
        #expect(state.applyOnServer(before, now: .test(.hours(1))).status == .applied)
    }
}

@Suite struct RewardMutationTests {
    let world: World
    init() throws { world = try World() }

    @Test func redeemingARewardSpendsPointsAndIssuesAVoucher() throws {
        var state = try world.member(withPoints: 1000)
        var device = DeviceScript("phone")
        let envelope = device.envelope(.redeemReward("voucher-5"))
        let outcome = state.applyOnServer(envelope, facts: ServerFacts(voucherCode: "V-ABC"))
        #expect(outcome.status == .applied)
        #expect(state.ledger.available == 500)
        let voucher = try #require(state.vouchers[VoucherID(envelope.mutationID)])
        #expect(voucher.status == .confirmed)
        #expect(voucher.code == "V-ABC")
        #expect(
            outcome.changes.contains { if case .ledgerEntry(let entry) = $0 { entry.kind == .spend } else { false } })
    }

    @Test func onADeviceTheVoucherIsProvisionalWithoutACode() throws {
        var state = try world.member(withPoints: 1000)
        var device = DeviceScript("phone")
        let envelope = device.envelope(.redeemReward("voucher-5"))
        #expect(state.applyOnDevice(envelope).status == .applied)
        let voucher = try #require(state.vouchers[VoucherID(envelope.mutationID)])
        #expect(voucher.status == .provisional)
        #expect(voucher.code == nil)
    }

    @Test func aRedemptionBeyondTheBalanceIsRefusedAndNothingChanges() throws {
        var state = try world.member(withPoints: 1000)
        let before = state
        var device = DeviceScript("phone")
        let outcome = state.applyOnServer(device.envelope(.redeemReward("voucher-20")))
        #expect(outcome.rejection?.code == .insufficientPoints)
        #expect(state == before)
    }

    @Test func pointsReservedForOtherDevicesCannotBeSpent() throws {
        var state = try world.member(withPoints: 1000)
        state.merge(
            .allowance(
                Allowance(
                    deviceID: "tablet", grant: 1, points: 600, grantedAt: .test(), leaseUntil: .test(.days(7)),
                    holdUntil: .test(.days(10)))))
        var device = DeviceScript("phone")
        let outcome = state.applyOnServer(device.envelope(.redeemReward("voucher-5")))
        #expect(outcome.rejection?.code == .insufficientPoints)
    }

    @Test func aRedemptionThatExpiredPointsWouldHaveCoveredSaysSo() throws {
        var state = try world.member(withPoints: 600)
        let expiry = try #require(state.ledger.lots["purchase:tx-start"]?.expiresAt)
        var device = DeviceScript("phone")
        let envelope = device.envelope(.redeemReward("voucher-5"), at: expiry.adding(.hours(-1)))
        _ = state.runJobs(at: expiry.adding(.minutes(1)))
        let outcome = state.applyOnServer(envelope, now: expiry.adding(.hours(2)))
        #expect(outcome.rejection?.code == .pointsExpired)
    }

    @Test func belowTheMinimumNothingCanBeRedeemed() throws {
        var state = try world.member(withPoints: 99)
        state.merge(.reward(Reward(id: "sticker", title: "Sticker", cost: 10)))
        var device = DeviceScript("phone")
        #expect(
            state.applyOnServer(device.envelope(.redeemReward("sticker"))).rejection?.code == .belowMinimumRedemption)
    }

    @Test func stockRunsOutOnTheServersFigure() throws {
        var state = try world.member(withPoints: 1000)
        var device = DeviceScript("phone")
        let outcome = state.applyOnServer(device.envelope(.redeemReward("tote-bag")), facts: ServerFacts(stock: 0))
        #expect(outcome.rejection?.code == .rewardOutOfStock)
        let taken = state.applyOnServer(device.envelope(.redeemReward("tote-bag")), facts: ServerFacts(stock: 7))
        #expect(taken.stockTaken == "tote-bag")
        #expect(state.rewards["tote-bag"]?.stock == 6)
    }

    @Test func unknownAndRetiredRewardsAreRefused() throws {
        var state = try world.member(withPoints: 1000)
        state.merge(.reward(Reward(id: "old", title: "Old", cost: 100, isActive: false)))
        var device = DeviceScript("phone")
        #expect(state.applyOnServer(device.envelope(.redeemReward("nope"))).rejection?.code == .rewardNotFound)
        #expect(state.applyOnServer(device.envelope(.redeemReward("old"))).rejection?.code == .rewardUnavailable)
    }

    @Test func aBlockedCardOrMemberSpendsNothing() throws {
        var state = try world.member(withPoints: 1000)
        _ = try state.blockCard(world.card)
        var device = DeviceScript("phone")
        #expect(state.applyOnServer(device.envelope(.redeemReward("voucher-5"))).rejection?.code == .noActiveCard)
        var blocked = try world.member(withPoints: 1000)
        _ = blocked.setStatus(.blocked)
        #expect(blocked.applyOnServer(device.envelope(.redeemReward("voucher-5"))).rejection?.code == .memberNotActive)
    }
}

@Suite struct ReceiptAndSurveyMutationTests {
    let world: World
    init() throws { world = try World() }

    func receipt(_ code: String = "R-1001", amount: Int64 = 4250, claimedBy: MemberID? = nil) -> Receipt {
        Receipt(
            code: code, amount: Money(minorUnits: amount), shop: "Berlin Mitte", purchasedAt: .test(.days(-2)),
            claimedBy: claimedBy)
    }

    @Test func aReceiptClaimEarnsPendingPointsOnTheServer() throws {
        var state = try world.member()
        var device = DeviceScript("phone")
        let outcome = state.applyOnServer(
            device.envelope(.claimReceipt(code: "R-1001")), facts: ServerFacts(receipt: receipt()))
        #expect(outcome.status == .applied)
        #expect(outcome.claimedReceipt == "R-1001")
        #expect(state.ledger.pendingPoints == 42)
        #expect(
            state.ledger.lots["receipt:R-1001"]?.pendingUntil == Timestamp.test(.days(12)), "14 days from the purchase")
        #expect(state.receiptClaims["R-1001"]?.status == .credited)
    }

    @Test func onADeviceAClaimIsSubmittedWithoutPoints() throws {
        var state = try world.member()
        var device = DeviceScript("phone")
        #expect(state.applyOnDevice(device.envelope(.claimReceipt(code: "R-1001"))).status == .applied)
        #expect(state.receiptClaims["R-1001"]?.status == .submitted)
        #expect(state.ledger.pendingPoints == 0)
        #expect(
            state.applyOnDevice(device.envelope(.claimReceipt(code: "R-1001"))).rejection?.code
                == .receiptAlreadyClaimed)
    }

    @Test(arguments: [
        ("unknown", nil as Receipt?, MutationRejection.Code.receiptNotFound),
        (
            "claimed",
            Receipt(code: "R-1001", amount: Money(minorUnits: 100), shop: "x", purchasedAt: .test(), claimedBy: "m-2"),
            .receiptAlreadyClaimed
        ),
        (
            "old", Receipt(code: "R-1001", amount: Money(minorUnits: 100), shop: "x", purchasedAt: .test(.days(-31))),
            .receiptTooOld
        ),
    ])
    func receiptClaimsAreRefusedWithTheirReason(label: String, receipt: Receipt?, code: MutationRejection.Code) throws {
        var state = try world.member()
        var device = DeviceScript("phone")
        let outcome = state.applyOnServer(
            device.envelope(.claimReceipt(code: "R-1001")), facts: ServerFacts(receipt: receipt))
        #expect(outcome.rejection?.code == code, "\(label)")
        #expect(outcome.claimedReceipt == nil)
    }

    @Test func aSurveyPaysOnceAndIsAnsweredOnce() throws {
        var state = try world.member()
        var device = DeviceScript("phone")
        let answers = ["rating": "5", "store": "Hamburg"]
        #expect(state.applyOnServer(device.envelope(.answerSurvey("store-visit", answers: answers))).status == .applied)
        #expect(state.ledger.available == 50)
        let again = state.applyOnServer(device.envelope(.answerSurvey("store-visit", answers: answers)))
        #expect(again.rejection?.code == .surveyAlreadyAnswered)
        #expect(state.ledger.available == 50)
        #expect(
            state.ledger.qualifyingPoints(from: .test(.days(-1)), through: .test(.days(1))) == 0,
            "survey points do not qualify")
    }

    @Test(arguments: [
        (["rating": "6", "store": "Hamburg"], "rating"),
        (["rating": "4", "store": "Paris"], "store"),
        (["rating": "4"], "store"),
        (["rating": "4", "store": "Hamburg", "colour": "blue"], "colour"),
    ])
    func badAnswersAreRefusedNamingTheQuestion(answers: [String: String], question: String) throws {
        var state = try world.member()
        var device = DeviceScript("phone")
        let outcome = state.applyOnServer(device.envelope(.answerSurvey("store-visit", answers: answers)))
        #expect(outcome.rejection?.code == .invalidAnswer)
        #expect(outcome.rejection?.message.contains(question) == true, "\(outcome.rejection?.message ?? "")")
    }

    @Test func closedAndUnknownSurveysAreRefused() throws {
        var state = try world.member()
        state.merge(
            .survey(
                Survey(
                    id: "old", title: "Old", questions: [.init(id: "q", text: "?", kind: .text)], points: 5,
                    closesAt: .test(.days(-1)))))
        var device = DeviceScript("phone")
        #expect(
            state.applyOnServer(device.envelope(.answerSurvey("old", answers: ["q": "x"]))).rejection?.code
                == .surveyClosed)
        #expect(
            state.applyOnServer(device.envelope(.answerSurvey("nope", answers: ["q": "x"]))).rejection?.code
                == .surveyNotFound)
    }
}

@Suite struct ProfileAndConsentMutationTests {
    let world: World
    init() throws { world = try World() }

    @Test func aLaterWriteWinsWhicheverArrivesFirstAndTheLoserIsLogged() throws {
        for laterFirst in [true, false] {
            var state = try world.member()
            var phone = DeviceScript("phone")
            var tablet = DeviceScript("tablet")
            let earlier = phone.envelope(.setProfileField(.phone, value: "+49 30 1111111", basedOn: nil), at: .test())
            let later = tablet.envelope(
                .setProfileField(.phone, value: "+49 30 2222222", basedOn: nil), at: .test(.minutes(5)))
            let order = laterFirst ? [later, earlier] : [earlier, later]
            let outcomes = order.map { state.applyOnServer($0, now: .test(.hours(1))) }
            #expect(state.profileValue(.phone) == "+49 30 2222222", "later first: \(laterFirst)")
            #expect(state.conflicts.values.map(\.losingValue) == ["+49 30 1111111"])
            #expect(state.conflicts.values.first?.losingSource == .device("phone"))
            if laterFirst {
                guard case .adjusted = outcomes[1].status else {
                    Issue.record("the losing write was not adjusted")
                    continue
                }
            }
        }
    }

    @Test func anEditOfTheValueTheDeviceHadSeenIsNoConflict() throws {
        var state = try world.member()
        var phone = DeviceScript("phone")
        var tablet = DeviceScript("tablet")
        _ = state.applyOnServer(phone.envelope(.setProfileField(.address, value: "Torstraße 1", basedOn: nil)))
        let seen = state.profile[.address]?.stamp
        _ = try tablet.clock.receive(try #require(seen), wall: .test())
        let edit = tablet.envelope(
            .setProfileField(.address, value: "Torstraße 2", basedOn: seen), at: .test(.minutes(1)))
        #expect(state.applyOnServer(edit).changes.count == 1)
        #expect(state.conflicts.isEmpty)
    }

    @Test func differentFieldsEditedConcurrentlyAreBothKept() throws {
        var state = try world.member()
        var phone = DeviceScript("phone")
        var tablet = DeviceScript("tablet")
        _ = state.applyOnServer(phone.envelope(.setProfileField(.phone, value: "+49 30 1111111", basedOn: nil)))
        _ = state.applyOnServer(tablet.envelope(.setProfileField(.address, value: "Hauptstraße 5", basedOn: nil)))
        #expect(state.profileValue(.phone) == "+49 30 1111111")
        #expect(state.profileValue(.address) == "Hauptstraße 5")
        #expect(state.conflicts.isEmpty)
    }

    @Test(arguments: [
        (ProfileField.email, "not-an-address" as String?),
        (.phone, "030 123"),
        (.birthdate, "2099-01-01"),
        (.birthdate, "1990-02-30"),
        (.name, nil),
        (.name, ""),
    ])
    func badProfileValuesAreRefusedNamingTheField(field: ProfileField, value: String?) throws {
        var state = try world.member()
        var device = DeviceScript("phone")
        let outcome = state.applyOnServer(device.envelope(.setProfileField(field, value: value, basedOn: nil)))
        #expect(outcome.rejection?.code == .invalidFieldValue)
        #expect(outcome.rejection?.message.hasPrefix(field.rawValue) == true)
    }

    @Test func onAnExactTieTheWithdrawalWinsInEitherOrderAndBothAreKept() throws {
        let stamp = HLCTimestamp(wallMilliseconds: Timestamp.test().millisecondsSince1970, counter: 3)
        let grant = MutationEnvelope(
            deviceID: "phone", sequence: 1, stamp: stamp, deviceTime: .test(),
            mutation: .setConsent(.marketingEmail, granted: true))
        let withdraw = MutationEnvelope(
            deviceID: "tablet", sequence: 1, stamp: stamp, deviceTime: .test(),
            mutation: .setConsent(.marketingEmail, granted: false))
        for order in [[grant, withdraw], [withdraw, grant]] {
            var state = try world.member()
            for envelope in order { _ = state.applyOnServer(envelope) }
            #expect(state.consents.isGranted(.marketingEmail) == false)
            #expect(state.consents.changes.count == 2, "both changes are kept as proof")
        }
    }

    @Test func aLaterConsentChangeWinsAndAnEarlierOneIsKeptButAdjusted() throws {
        var state = try world.member()
        var phone = DeviceScript("phone")
        var tablet = DeviceScript("tablet")
        let later = tablet.envelope(.setConsent(.profiling, granted: true), at: .test(.minutes(10)))
        let earlier = phone.envelope(.setConsent(.profiling, granted: false), at: .test())
        #expect(state.applyOnServer(later).status == .applied)
        let outcome = state.applyOnServer(earlier)
        guard case .adjusted = outcome.status else {
            Issue.record("expected adjusted, got \(outcome.status)")
            return
        }
        #expect(state.consents.isGranted(.profiling))
        #expect(state.consents.changes.count == 2)
    }

    @Test func aBlockedMemberCanWithdrawConsentButNotGrantIt() throws {
        var state = try world.member()
        _ = state.setStatus(.blocked)
        var device = DeviceScript("phone")
        #expect(state.applyOnServer(device.envelope(.setConsent(.marketingSMS, granted: false))).status == .applied)
        #expect(
            state.applyOnServer(device.envelope(.setConsent(.marketingSMS, granted: true))).rejection?.code
                == .memberNotActive)
    }
}

@Suite struct MutationInputTests {
    @Test(arguments: [
        Mutation.activateOffer(""),
        .redeemReward("has space"),
        .claimReceipt(code: "r1"),
        .answerSurvey("store-visit", answers: [:]),
        .setProfileField(.address, value: String(repeating: "x", count: 301), basedOn: nil),
    ])
    func malformedMutationsAreRefusedBeforeTouchingState(mutation: Mutation) throws {
        var state = try World().member()
        let before = state
        var device = DeviceScript("phone")
        let outcome = state.applyOnServer(device.envelope(mutation))
        #expect(outcome.rejection?.code == .invalidInput)
        #expect(state == before)
    }
}
