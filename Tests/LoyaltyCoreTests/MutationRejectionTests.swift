import LoyaltyCore
import Testing

/// `apply` changes the state in place, which is only right if every operation makes all of its checks before it
/// changes anything. Random member actions, many of them bound to be refused, on both sides: a refused one must
/// leave the state exactly as it was. The running figures the ledger and the consent history keep must equal
/// what walking their contents gives.
@Suite struct MutationRejectionTests {
    let world: World

    init() throws { world = try World() }

    @Test(arguments: 0..<30)
    func aRefusedMutationLeavesTheStateAsItWas(seed: Int) throws {
        var random = SeededRandom(seed: UInt64(seed) &* 104_729 &+ 3)
        var state = try world.member(withPoints: random.int(0...2_500))
        var devices = [DeviceScript("phone"), DeviceScript("tablet")]
        var now = Timestamp.test()
        var refused = 0

        for step in 0..<120 {
            let mutation = Self.randomMutation(using: &random)
            let device = random.int(0..<devices.count)
            let envelope = devices[device].envelope(mutation, at: now)
            let before = state
            let onServer = random.bool()
            let outcome =
                onServer
                ? state.applyOnServer(
                    envelope, now: now,
                    facts: ServerFacts(
                        receipt: random.bool()
                            ? Receipt(
                                code: "R-\(step % 7)", amount: Money(minorUnits: 4_200), shop: "Hamburg",
                                purchasedAt: now.adding(.days(-2)))
                            : nil,
                        stock: random.bool() ? 0 : nil))
                : state.applyOnDevice(envelope, now: now)
            if let rejection = outcome.rejection {
                refused += 1
                #expect(
                    state == before,
                    "seed \(seed) step \(step): refused \(mutation) (\(rejection.code)) changed the state")
                #expect(outcome.changes.isEmpty)
            }
            Self.expectFiguresMatchTheirContents(state, at: now, "seed \(seed) step \(step)")
            if random.int(0..<10) == 0 {
                now = now.adding(.days(random.int64(1...40)))
                _ = state.runJobs(at: now)
                Self.expectFiguresMatchTheirContents(state, at: now, "seed \(seed) after jobs at step \(step)")
            }
        }
        #expect(refused > 10, "the walk refused too little to test anything")
    }

    static func randomMutation(using random: inout SeededRandom) -> Mutation {
        let offers: [OfferID] = ["welcome-10", "coffee-double", "gold-lounge", "nope"]
        let rewards: [RewardID] = ["tote-bag", "voucher-5", "voucher-20", "nope"]
        switch random.int(0..<7) {
        case 0: return .activateOffer(random.pick(offers))
        case 1: return .redeemOffer(random.pick(offers))
        case 2: return .redeemReward(random.pick(rewards))
        case 3: return .claimReceipt(code: "R-\(random.int(0..<7))")
        case 4:
            let rating = random.pick(["1", "5", "9", "x"])
            let survey: SurveyID = random.bool() ? "store-visit" : "nope"
            return .answerSurvey(survey, answers: ["rating": rating, "store": "Hamburg"])
        case 5:
            let value = random.pick(["Ada", "", String(repeating: "x", count: 500), nil])
            return .setProfileField(.name, value: value, basedOn: nil)
        default:
            return .setConsent(
                random.pick(ConsentKind.allCases), granted: random.bool())
        }
    }

    /// The ledger's running totals and the consents' winners against a walk over what they summarise.
    static func expectFiguresMatchTheirContents(_ state: MemberState, at now: Timestamp, _ label: String) {
        let lots = Array(state.ledger.lots.values)
        let active = lots.filter { $0.state == .active }.reduce(0) { $0 + $1.remaining }
        #expect(state.ledger.available == active - state.ledger.owed, "\(label): available")
        #expect(
            state.ledger.pendingPoints == lots.filter { $0.state == .pending }.reduce(0) { $0 + $1.remaining },
            "\(label): pending")
        #expect(state.ledger.lifetimeEarned == lots.reduce(0) { $0 + $1.amount - $1.revoked }, "\(label): lifetime")
        var byDate: [Timestamp: Int] = [:]
        for lot in lots where lot.state == .active && lot.remaining > 0 {
            if let date = lot.expiresAt, date <= now.adding(.days(400)) { byDate[date, default: 0] += lot.remaining }
        }
        let expected = byDate.sorted { $0.key < $1.key }.map { ExpiringPoints(amount: $0.value, expiresAt: $0.key) }
        #expect(state.ledger.expiring(within: .days(400), at: now) == expected, "\(label): expiring")
        for kind in ConsentKind.allCases {
            let walked = state.consents.changes.filter { $0.kind == kind }.max { $1.wins(over: $0) }
            #expect(state.consents.current(kind) == walked, "\(label): consent \(kind)")
        }
    }
}
