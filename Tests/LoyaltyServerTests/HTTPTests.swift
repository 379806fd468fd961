import Foundation
import HTTPTypes
import HummingbirdTesting
import LoyaltyCore
import LoyaltyTesting
import Testing

@testable import LoyaltyServer

/// The HTTP edge through the router: status codes, error bodies, limits, auth.
@Suite struct HTTPTests {
    func enrollBody(_ email: String = "anna-\(UUID().uuidString.prefix(6))@example.de") -> String {
        #"{"name": "Anna Schmidt", "email": "\#(email)", "password": "correct horse", "deviceName": "phone"}"#
    }

    func pushBody(device: String, mutations: String) -> String {
        #"{"deviceID": "\#(device)", "mutations": [\#(mutations)]}"#
    }

    func mutation(_ sequence: Int, _ body: String) -> String {
        #"{"sequence": \#(sequence), "stamp": "\#(112_000_000_000_000_000 + sequence)", "deviceTime": "2026-11-23T10:00:00.000Z", "mutation": \#(body)}"#
    }

    @Test func enrolmentAnswersASessionAndAHealthyServerSaysSo() async throws {
        let harness = try await Harness.make()
        try await harness.application().test(.router) { client in
            let health = try await Call.make(client, .get, "/healthz", protocolVersion: nil)
            #expect(health.status == 200)
            let enrolled = try await Call.make(client, .post, "/v1/auth/enroll", body: enrollBody())
            #expect(enrolled.status == 201)
            #expect((enrolled.json["cardNumber"] as? String)?.count == 13)
            #expect(enrolled.json["accessToken"] is String)
        }
    }

    @Test func aMissingProtocolHeaderIsAMalformedRequest() async throws {
        let harness = try await Harness.make()
        try await harness.application().test(.router) { client in
            let call = try await Call.make(client, .post, "/v1/auth/enroll", body: enrollBody(), protocolVersion: nil)
            #expect(call.status == 400)
            #expect(call.errorCode == "bad_request")
            #expect(call.errorMessage.contains("Loyalty-Protocol header is missing"))
        }
    }

    @Test(arguments: ["0", "2", ""] as [String])
    func anUnsupportedProtocolVersionIsAnsweredUpgradeRequired(version: String) async throws {
        let harness = try await Harness.make()
        try await harness.application().test(.router) { client in
            let call = try await Call.make(
                client, .post, "/v1/auth/enroll", body: enrollBody(), protocolVersion: version)
            #expect(call.status == 426)
            #expect(call.errorCode == "upgrade_required")
            #expect(call.errorMessage.contains("update the app"))
        }
    }

    @Test(arguments: [
        ("{not json", "not valid JSON"),
        (#"{"name": "A", "email": "a@b.de"}"#, "password"),
        (#"{"name": 5, "email": "a@b.de", "password": "correct horse"}"#, "name"),
        (#"{"name": "A", "email": "a@b.de", "password": "correct horse", "colour": "red"}"#, "colour"),
    ])
    func malformedRequestsAre400sThatNameTheProblem(body: String, named: String) async throws {
        let harness = try await Harness.make()
        try await harness.application().test(.router) { client in
            let call = try await Call.make(client, .post, "/v1/auth/enroll", body: body)
            #expect(call.status == 400, "\(call.json)")
            #expect(call.errorCode == "bad_request")
            #expect(call.errorMessage.contains(named), "\(call.errorMessage)")
        }
        #expect(try await harness.service.storage.memberIDs(after: nil, limit: 10).isEmpty, "nothing stored")
    }

    @Test(arguments: [
        (#"{"name": "A", "email": "not-an-email", "password": "correct horse"}"#, "email"),
        (#"{"name": "A", "email": "a@b.de", "password": "short"}"#, "password"),
        (#"{"name": "A", "email": "a@b.de", "password": "correct horse", "birthdate": "2090-01-01"}"#, "birthdate"),
    ])
    func unacceptableEnrolmentsAre422sAndStoreNothing(body: String, named: String) async throws {
        let harness = try await Harness.make()
        try await harness.application().test(.router) { client in
            let call = try await Call.make(client, .post, "/v1/auth/enroll", body: body)
            #expect(call.status == 422)
            #expect(call.errorMessage.contains(named), "\(call.errorMessage)")
        }
        #expect(try await harness.service.storage.memberIDs(after: nil, limit: 10).isEmpty)
    }

    @Test func aSecondEnrolmentWithTheSameEmailIsAConflict() async throws {
        let harness = try await Harness.make()
        try await harness.application().test(.router) { client in
            let body = enrollBody("same@example.de")
            #expect(try await Call.make(client, .post, "/v1/auth/enroll", body: body).status == 201)
            let again = try await Call.make(
                client, .post, "/v1/auth/enroll", body: body.replacingOccurrences(of: "same@", with: "SAME@"))
            #expect(again.status == 409)
        }
    }

    @Test func syncNeedsAValidUnexpiredTokenOfALiveDeviceOfTheSameMember() async throws {
        let harness = try await Harness.make()
        let (anna, annaDevice) = try await harness.enroll()
        let (_, jonasDevice) = try await harness.enroll()
        try await harness.application().test(.router) { client in
            let pull = #"{"deviceID": "\#(annaDevice.id)", "cursor": 0}"#
            #expect(try await Call.make(client, .post, "/v1/sync/pull", body: pull).status == 401, "no token")
            #expect(
                try await Call.make(client, .post, "/v1/sync/pull", body: pull, token: "forged.token").errorCode
                    == "unauthorized")
            #expect(
                try await Call.make(client, .post, "/v1/sync/pull", body: pull, token: anna.accessToken).status == 200)

            let foreign = #"{"deviceID": "\#(jonasDevice.id)", "cursor": 0}"#
            let wrongDevice = try await Call.make(
                client, .post, "/v1/sync/pull", body: foreign, token: anna.accessToken)
            #expect(wrongDevice.status == 403, "another member's device id")

            try harness.clock.advance(by: .minutes(16))
            let expired = try await Call.make(client, .post, "/v1/sync/pull", body: pull, token: anna.accessToken)
            #expect(expired.status == 401)
            #expect(expired.errorCode == "token_expired")
        }
    }

    @Test func aRevokedDeviceIsRefusedAndNothingItPushesIsApplied() async throws {
        let harness = try await Harness.make()
        let email = "lost-\(UUID().uuidString.prefix(6))@example.de"
        let (phone, phoneDevice) = try await harness.enroll(email)
        let (tablet, _) = try await harness.login(phone, email: email)
        try await harness.application().test(.router) { client in
            let revoke = try await Call.make(
                client, .post, "/v1/devices/\(phoneDevice.id)/revoke", token: tablet.accessToken)
            #expect(revoke.status == 204)
            let push = pushBody(
                device: phoneDevice.id.rawValue,
                mutations: mutation(1, #"{"kind": "setConsent", "consent": "profiling", "granted": true}"#))
            let refused = try await Call.make(client, .post, "/v1/sync/push", body: push, token: phone.accessToken)
            #expect(refused.status == 401)
            #expect(refused.errorCode == "device_revoked")
            let refresh = try await Call.make(
                client, .post, "/v1/auth/refresh", body: #"{"refreshToken": "\#(phone.refreshToken)"}"#)
            #expect(refresh.errorCode == "device_revoked")
        }
        #expect(try await harness.state(of: phone.memberID).consents.changes.isEmpty)
    }

    /// A push's or a pull's gate checks only the token's signature and expiry; the work reads the device's row: a
    /// token (validly signed) for a device that does not exist, or naming another member's device, applies and reads
    /// nothing.
    @Test func aSyncWhoseTokenNamesNoDeviceOfItsMemberAppliesAndReadsNothing() async throws {
        let harness = try await Harness.make()
        let (anna, _) = try await harness.enroll()
        let (_, jonasDevice) = try await harness.enroll()
        let now = harness.clock.now()
        let ghost = DeviceID("d-ghost")
        let tokens = [
            (ghost, harness.service.tokens.accessToken(for: .init(memberID: anna.memberID, deviceID: ghost), now: now)),
            (
                jonasDevice.id,
                harness.service.tokens.accessToken(
                    for: .init(memberID: anna.memberID, deviceID: jonasDevice.id), now: now)
            ),
        ]
        try await harness.application().test(.router) { client in
            for (device, token) in tokens {
                let push = pushBody(
                    device: device.rawValue,
                    mutations: mutation(1, #"{"kind": "setConsent", "consent": "profiling", "granted": true}"#))
                let refused = try await Call.make(client, .post, "/v1/sync/push", body: push, token: token.token)
                #expect(refused.status == 401, "\(device)")
                #expect(refused.errorMessage.contains("device is unknown"), "\(refused.errorMessage)")
                let pull = #"{"deviceID": "\#(device)", "cursor": 0}"#
                let unread = try await Call.make(client, .post, "/v1/sync/pull", body: pull, token: token.token)
                #expect(unread.status == 401, "\(device)")
                #expect(unread.errorMessage.contains("device is unknown"), "\(unread.errorMessage)")
            }
        }
        #expect(try await harness.state(of: anna.memberID).consents.changes.isEmpty)
        #expect(try await harness.service.storage.device(jonasDevice.id)?.lastSequence == 0)
    }

    @Test func aMemberCannotRevokeAnotherMembersDevice() async throws {
        let harness = try await Harness.make()
        let (anna, _) = try await harness.enroll()
        let (_, jonasDevice) = try await harness.enroll()
        try await harness.application().test(.router) { client in
            let call = try await Call.make(
                client, .post, "/v1/devices/\(jonasDevice.id)/revoke", token: anna.accessToken)
            #expect(call.status == 404)
        }
        #expect(try await harness.service.storage.device(jonasDevice.id)?.revokedAt == nil)
    }

    /// Found by the simulator (seed 8): a device whose refresh answer was lost, and which came back hours later,
    /// was signed out. The replaced token now stays good until the device uses its successor.
    @Test func refreshTokensRotateAndTheReplacedOneWorksUntilItsSuccessorIsUsed() async throws {
        let harness = try await Harness.make()
        let (session, _) = try await harness.enroll()
        try await harness.application().test(.router) { client in
            let body = #"{"refreshToken": "\#(session.refreshToken)"}"#
            let first = try await Call.make(client, .post, "/v1/auth/refresh", body: body)
            #expect(first.status == 200)
            try harness.clock.advance(by: .hours(6))
            let retry = try await Call.make(client, .post, "/v1/auth/refresh", body: body)
            #expect(retry.status == 200, "the answer was lost: the same token works again, hours later")
            let newest = try #require(retry.json["refreshToken"] as? String)
            let used = try await Call.make(client, .post, "/v1/auth/refresh", body: #"{"refreshToken": "\#(newest)"}"#)
            #expect(used.status == 200)
            let late = try await Call.make(client, .post, "/v1/auth/refresh", body: body)
            #expect(late.status == 401, "once its successor was used, the old token is retired")
            let unused = try #require(first.json["refreshToken"] as? String)
            #expect(
                try await Call.make(client, .post, "/v1/auth/refresh", body: #"{"refreshToken": "\#(unused)"}"#).status
                    == 401, "a token that was replaced before it was ever used is retired too")
        }
    }

    @Test func pushesOverTheLimitAreRefusedWhole() async throws {
        let harness = try await Harness.make { $0.maxMutationsPerPush = 3 }
        let (session, device) = try await harness.enroll()
        try await harness.application().test(.router) { client in
            let four = (1...4).map { mutation($0, #"{"kind": "setConsent", "consent": "profiling", "granted": true}"#) }
            let call = try await Call.make(
                client, .post, "/v1/sync/push",
                body: pushBody(device: device.id.rawValue, mutations: four.joined(separator: ",")),
                token: session.accessToken)
            #expect(call.status == 413)
            #expect(call.errorMessage.contains("at most 3"))
        }
        #expect(try await harness.state(of: session.memberID).consents.changes.isEmpty)
    }

    @Test func anOversizedBodyIsRefused() async throws {
        let harness = try await Harness.make { $0.maxBodyBytes = 2000 }
        try await harness.application().test(.router) { client in
            let big =
                #"{"name": "\#(String(repeating: "x", count: 5000))", "email": "a@b.de", "password": "correct horse"}"#
            let call = try await Call.make(client, .post, "/v1/auth/enroll", body: big)
            #expect(call.status == 413)
        }
    }

    @Test(arguments: [
        (#"{"kind": "stealPoints", "points": 1000}"#, "stealPoints"),
        (#"{"kind": "redeemReward", "rewardID": "voucher-5", "points": 1}"#, "points"),
        (#"{"kind": "setConsent", "consent": "profiling", "granted": "yes"}"#, "granted"),
        (#"{"kind": "setConsent", "consent": "marketing-fax", "granted": true}"#, "marketing-fax"),
    ])
    func badMutationsFailThePushWithA400NamingThemAndApplyNothing(mutationJSON: String, named: String) async throws {
        try await expectPushRefused(mutation(2, mutationJSON), naming: named)
    }

    @Test(arguments: ["2026-02-30T10:00:00.000Z", "yesterday", "2026-11-23 10:00:00Z"])
    func aPushWithABadDeviceTimeIsA400NamingTheDateAndAppliesNothing(deviceTime: String) async throws {
        let bad = mutation(2, #"{"kind": "redeemReward", "rewardID": "voucher-5"}"#).replacingOccurrences(
            of: "2026-11-23T10:00:00.000Z", with: deviceTime)
        try await expectPushRefused(bad, naming: deviceTime)
    }

    /// Pushes a valid redemption, then `bad` (a whole envelope): the push is a 400 whose message names `named`, and
    /// neither mutation is applied.
    func expectPushRefused(_ bad: String, naming named: String) async throws {
        let harness = try await Harness.make()
        let (session, device) = try await harness.enroll()
        try await harness.give(1000, to: session.memberID)
        let fresh = harness.service.tokens.accessToken(
            for: .init(memberID: session.memberID, deviceID: device.id), now: harness.clock.now())
        try await harness.application().test(.router) { client in
            let body = pushBody(
                device: device.id.rawValue,
                mutations: mutation(1, #"{"kind": "redeemReward", "rewardID": "voucher-5"}"#) + "," + bad)
            let call = try await Call.make(client, .post, "/v1/sync/push", body: body, token: fresh.token)
            #expect(call.status == 400, "\(call.json)")
            #expect(call.errorMessage.contains(named), "\(call.errorMessage)")
        }
        let state = try await harness.state(of: session.memberID)
        #expect(state.ledger.available == 1000, "the valid mutation before the bad one was not applied either")
        #expect(try await harness.service.storage.device(device.id)?.lastSequence == 0)
    }

    @Test func livenessAnswersWithoutTouchingTheStore() async throws {
        let harness = try await Harness.make()
        try await harness.application().test(.router) { client in
            let call = try await Call.make(client, .get, "/livez")
            #expect(call.status == 200)
        }
    }

    @Test func adminCallsNeedTheOperatorToken() async throws {
        let harness = try await Harness.make()
        try await harness.application().test(.router) { client in
            #expect(try await Call.make(client, .get, "/v1/admin/members").status == 401)
            #expect(try await Call.make(client, .get, "/v1/admin/members", token: "wrong-token-123").status == 401)
            #expect(try await Call.make(client, .get, "/v1/admin/members", token: Harness.adminToken).status == 200)
            let (session, _) = try await harness.enroll()
            #expect(
                try await Call.make(client, .get, "/v1/admin/members", token: session.accessToken).status == 401,
                "a device token is not an operator token")
        }
        let off = try await Harness.make { $0.adminToken = nil }
        try await off.application().test(.router) { client in
            let call = try await Call.make(client, .get, "/v1/admin/members", token: Harness.adminToken)
            #expect(call.status == 401)
            #expect(call.errorMessage.contains("--admin-token"))
        }
    }

    @Test(arguments: [("-5.00", 422), ("12.345", 422), ("1000000.01", 422), ("abc", 422)])
    func tillAmountsThatAreNegativeOrAbsurdAreRefusedAndNothingIsCredited(amount: String, status: Int) async throws {
        let harness = try await Harness.make()
        let (session, _) = try await harness.enroll()
        try await harness.application().test(.router) { client in
            let call = try await Call.make(
                client, .post, "/v1/admin/purchases",
                body: #"{"memberID": "\#(session.memberID)", "amount": "\#(amount)"}"#,
                token: Harness.adminToken)
            #expect(call.status == status)
            #expect(call.errorMessage.contains("amount"), "\(call.errorMessage)")
        }
        #expect(try await harness.state(of: session.memberID).ledger.lots.isEmpty)
    }

    @Test(arguments: [
        (#""points": 0"#, "points", 422), (#""points": -5"#, "points", 422), (#""points": 2000000"#, "points", 422),
        (#""points": "ten""#, "points", 400), (#""points": 100, "coupon": "X""#, "coupon", 400),
    ])
    func tillRedemptionsWithBadPointsAreRefusedAndNothingIsSpent(
        field: String, named: String, status: Int
    )
        async throws
    {
        let harness = try await Harness.make()
        let (session, _) = try await harness.enroll()
        try await harness.give(1000, to: session.memberID)
        try await harness.application().test(.router) { client in
            let call = try await Call.make(
                client, .post, "/v1/admin/redemptions", body: #"{"memberID": "\#(session.memberID)", \#(field)}"#,
                token: Harness.adminToken)
            #expect(call.status == status, "\(call.json)")
            #expect(call.errorMessage.contains(named), "\(call.errorMessage)")
        }
        #expect(try await harness.state(of: session.memberID).ledger.available == 1000)
    }

    @Test func theTillPaysWithPointsOnceAndNeverWithReservedOnes() async throws {
        let harness = try await Harness.make()
        let (session, device) = try await harness.enroll()
        try await harness.give(1000, to: session.memberID)
        // The device asks for its allowance: half of 1000 (the standard policy, one device).
        let pulled = try await harness.service.pull(
            PullRequest(
                deviceID: device.id, cursor: .start, limit: 500, allowance: AllowanceRequest(release: nil, through: 0)),
            from: try #require(try await harness.service.storage.device(device.id)))
        #expect(pulled.changes.contains { $0.key == EntityKey(.allowance, device.id.rawValue) })
        try await harness.application().test(.router) { client in
            let admin = Harness.adminToken
            let card = session.cardNumber.digits
            let tooMuch = try await Call.make(
                client, .post, "/v1/admin/redemptions", body: #"{"cardNumber": "\#(card)", "points": 501}"#,
                token: admin)
            #expect(tooMuch.status == 422)
            #expect(tooMuch.errorMessage.contains("500"), "\(tooMuch.errorMessage)")
            let spent = try await Call.make(
                client, .post, "/v1/admin/redemptions",
                body: #"{"cardNumber": "\#(card)", "points": 500, "transactionID": "T-TILL-1"}"#, token: admin)
            #expect(spent.status == 201)
            #expect(spent.json["points"] as? Int == -500)
            let again = try await Call.make(
                client, .post, "/v1/admin/redemptions",
                body: #"{"cardNumber": "\#(card)", "points": 1, "transactionID": "T-TILL-1"}"#, token: admin)
            #expect(again.status == 409, "a till transaction is recorded once")
        }
        let state = try await harness.state(of: session.memberID)
        #expect(state.ledger.available == 500)
        #expect(state.reservedPoints(at: harness.clock.now()) == 500)
    }

    @Test func aPullAsksForAnAllowanceAndBadAllowanceRequestsAreRefused() async throws {
        let harness = try await Harness.make()
        let (session, device) = try await harness.enroll()
        let fresh = harness.service.tokens.accessToken(
            for: .init(memberID: session.memberID, deviceID: device.id), now: harness.clock.now())
        try await harness.application().test(.router) { client in
            for bad in [#"{"through": -1}"#, #"{"release": 0, "through": 1}"#, #"{"through": 1, "points": 9}"#] {
                let call = try await Call.make(
                    client, .post, "/v1/sync/pull",
                    body: #"{"deviceID": "\#(device.id)", "cursor": 0, "allowance": \#(bad)}"#, token: fresh.token)
                #expect(call.status == 400, "\(bad): \(call.json)")
                #expect(call.errorMessage.contains("allowance") || call.errorMessage.contains("points"))
            }
        }
    }

    @Test func theOperatorConsoleRunsTheTillTheCatalogueTheJobsAndTheClock() async throws {
        let harness = try await Harness.make()
        let (session, _) = try await harness.enroll()
        try await harness.application().test(.router) { client in
            let admin = Harness.adminToken
            let purchase = try await Call.make(
                client, .post, "/v1/admin/purchases",
                body: #"{"cardNumber": "\#(session.cardNumber.digits)", "amount": "250.00"}"#, token: admin)
            #expect(purchase.status == 201)
            #expect(purchase.json["points"] as? Int == 250)
            let offer = try await Call.make(
                client, .post, "/v1/admin/offers",
                body: #"{"title": "Spring", "usesPerMember": 1, "activationRequired": true}"#, token: admin)
            #expect(offer.status == 201)
            let offerID = try #require(offer.json["id"] as? String)
            #expect(
                try await Call.make(client, .post, "/v1/admin/offers/\(offerID)/withdraw", token: admin).status == 204)
            #expect(try await Call.make(client, .post, "/v1/admin/offers/nope/withdraw", token: admin).status == 404)
            let reward = try await Call.make(
                client, .post, "/v1/admin/rewards", body: #"{"title": "Mug", "cost": 150, "stock": 3}"#, token: admin)
            #expect(reward.status == 201)
            let receipt = try await Call.make(
                client, .post, "/v1/admin/receipts", body: #"{"amount": "19.99"}"#, token: admin)
            #expect((receipt.json["code"] as? String)?.hasPrefix("R-") == true)
            let survey = try await Call.make(
                client, .post, "/v1/admin/surveys",
                body:
                    #"{"title": "Quick", "points": 10, "questions": [{"id": "q", "text": "Good?", "type": "choice", "options": ["yes", "no"]}]}"#,
                token: admin)
            #expect(survey.status == 201)
            // The contract's bound on a question's maximum holds whatever the question's type.
            for type in ["text", "rating"] {
                let tooMany = try await Call.make(
                    client, .post, "/v1/admin/surveys",
                    body:
                        #"{"title": "Q", "points": 1, "questions": [{"id": "q", "text": "?", "type": "\#(type)", "maximum": 11}]}"#,
                    token: admin)
                #expect(tooMany.status == 422, "\(type)")
                #expect(tooMany.errorMessage.contains("maximum must be 2 to 10"))
            }
            let clock = try await Call.make(
                client, .post, "/v1/admin/clock", body: #"{"advance": "15d"}"#, token: admin)
            #expect(clock.status == 200)
            let unlock = try await Call.make(client, .post, "/v1/admin/jobs/unlock", token: admin)
            #expect(unlock.json["movements"] as? Int == 1)
            let detail = try await Call.make(client, .get, "/v1/admin/members/\(session.memberID)", token: admin)
            #expect(detail.json["available"] as? Int == 250)
            let replaced = try await Call.make(
                client, .post, "/v1/admin/members/\(session.memberID)/card/replace", token: admin)
            #expect(replaced.status == 201)
            let oldCard = try await Call.make(
                client, .post, "/v1/admin/purchases",
                body: #"{"cardNumber": "\#(session.cardNumber.digits)", "amount": "10.00"}"#, token: admin)
            #expect(oldCard.status == 422, "the replaced card earns nothing")
            let bad = try await Call.make(client, .post, "/v1/admin/clock", body: #"{"advance": "soon"}"#, token: admin)
            #expect(bad.status == 422)
        }
    }

    @Test func theClockCannotBeMovedWithoutTestClock() async throws {
        let harness = try await Harness.make()
        let service = SyncService(
            storage: harness.service.storage, clock: SystemClock(), configuration: harness.service.configuration,
            tokens: harness.service.tokens, logger: harness.service.logger)
        #expect(throws: APIFailure.self) { try service.setClock(to: nil, advanceBy: .days(1)) }
    }

    @Test func metricsAreExposedInPrometheusText() async throws {
        let harness = try await Harness.make()
        let (session, device) = try await harness.enroll()
        _ = try await harness.service.push(
            PushRequest(
                deviceID: device.id, mutations: [harness.envelope(device, 1, .setConsent(.profiling, granted: true))]),
            from: device)
        try await harness.application().test(.router) { client in
            let call = try await Call.make(
                client, .get, "/metrics", token: TestServer.adminToken, protocolVersion: nil)
            let text = call.json["raw"] as? String ?? ""
            let instance = harness.service.metrics.instanceName
            #expect(
                text.contains(#"loyalty_mutations_total{status="applied",instance_name="\#(instance)"} 1"#), "\(text)")
            #expect(text.contains(#"loyalty_enrolments_total{instance_name="\#(instance)"} 1"#))
            let anonymous = try await Call.make(client, .get, "/metrics", protocolVersion: nil)
            #expect(anonymous.status == 401, "behind the operator token")
            let member = try await Call.make(client, .get, "/metrics", token: session.accessToken, protocolVersion: nil)
            #expect(member.status == 401, "a member's token is not the operator's")
        }
        let open = try await Harness.make(configure: { $0.publicMetrics = true })
        try await open.application().test(.router) { client in
            let call = try await Call.make(client, .get, "/metrics", protocolVersion: nil)
            #expect(call.status == 200)
        }
    }
}
