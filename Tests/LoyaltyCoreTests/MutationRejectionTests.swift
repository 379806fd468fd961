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
        var random = SeededGenerator(seed: UInt64(seed) &* 104_729 &+ 3)
        var state = try world.member(withPoints: Int.random(in: 0...2_500, using: &random))
        var devices = [DeviceScript("phone"), DeviceScript("tablet")]
        var now = Timestamp.test()
        var refused = 0

        for step in 0..<120 {
            let mutation = Self.randomMutation(using: &random)
            let device = Int.random(in: 0..<devices.count, using: &random)
            let envelope = devices[device].envelope(mutation, at: now)
            let before = state
            let onServer = Bool.random(using: &random)
            let outcome =
                onServer
                ? state.applyOnServer(
                    envelope, now: now,
                    facts: ServerFacts(
                        receipt: Bool.random(using: &random)
                            ? Receipt(
                                code: "R-\(step % 7)", amount: Money(minorUnits: 4_200), shop: "Hamburg",
                                purchasedAt: now.adding(.days(-2)))
                            : nil,
                        stock: Bool.random(using: &random) ? 0 : nil))
                : state.applyOnDevice(envelope, now: now)
            if let rejection = outcome.rejection {
                refused += 1
                #expect(
                    state == before,
                    "seed \(seed) step \(step): refused \(mutation) (\(rejection.code)) changed the state")
                #expect(outcome.changes.isEmpty)
            }
            Self.expectFiguresMatchTheirContents(state, at: now, "seed \(seed) step \(step)")
            if Int.random(in: 0..<10, using: &random) == 0 {
                now = now.adding(.days(Int64.random(in: 1...40, using: &random)))
                _ = state.runJobs(at: now)
                Self.expectFiguresMatchTheirContents(state, at: now, "seed \(seed) after jobs at step \(step)")
            }
        }
        #expect(refused > 10, "the walk refused too little to test anything")
    }

    static func randomMutation(using random: inout SeededGenerator) -> Mutation {
        let offers: [OfferID] = ["welcome-10", "coffee-double", "gold-lounge", "nope"]
        let rewards: [RewardID] = ["tote-bag", "voucher-5", "voucher-20", "nope"]
        switch Int.random(in: 0..<7, using: &random) {
        case 0: return .activateOffer(offers.randomElement(using: &random)!)
        case 1: return .redeemOffer(offers.randomElement(using: &random)!)
        case 2: return .redeemReward(rewards.randomElement(using: &random)!)
        case 3: return .claimReceipt(code: "R-\(Int.random(in: 0..<7, using: &random))")
        case 4:
            let rating = ["1", "5", "9", "x"].randomElement(using: &random)!
            let survey: SurveyID = Bool.random(using: &random) ? "store-visit" : "nope"
            return .answerSurvey(survey, answers: ["rating": rating, "store": "Hamburg"])
        case 5:
            let value = ["Ada", "", String(repeating: "x", count: 500), nil].randomElement(using: &random)!
            return .setProfileField(.name, value: value, basedOn: nil)
        default:
            return .setConsent(
                ConsentKind.allCases.randomElement(using: &random)!, granted: Bool.random(using: &random))
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
