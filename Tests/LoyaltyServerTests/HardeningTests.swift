import Foundation
import HTTPTypes
import HummingbirdTesting
import Logging
import LoyaltyCore
import LoyaltyTesting
import Synchronization
import Testing

@testable import LoyaltyServer

/// The server's files are its owner's alone, and the operator's inputs cannot crash it.
@Suite struct HardeningTests {
    static func mode(_ path: String) throws -> Int {
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        return try #require(attributes[.posixPermissions] as? Int) & 0o777
    }

    @Test func theDataDirectoryIsTheOwnersAloneAndSoAreTheDatabaseAndTheKey() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "loyalty-perms-\(UUID().uuidString)/server")
        defer { try? FileManager.default.removeItem(at: directory.deletingLastPathComponent()) }
        let settings = try ServerSettings(
            port: 0, dataDirectory: directory, testClock: true,
            configuration: ServerConfiguration(adminToken: TestServer.adminToken), schedulesJobs: false)
        let service = try await LoyaltyServerApp.makeService(settings: settings, logger: Logger(label: "test"))
        _ = try await service.enroll(
            Registration(name: "Anna", email: "perms@example.de"), password: "correct horse", deviceName: "phone")

        #expect(try Self.mode(directory.path) == 0o700)
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        #expect(files.contains("loyalty.sqlite-wal"), "the log exists while the server runs: \(files)")
        for file in files {
            #expect(try Self.mode(directory.appendingPathComponent(file).path) == 0o600, "\(file)")
        }
    }

    @Test func aSigningKeyOthersMayReadIsRefusedWithTheReason() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "loyalty-key-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        _ = try TokenAuthority.loadKey(in: directory)
        let key = directory.appendingPathComponent("signing.key").path
        #expect(try Self.mode(key) == 0o600)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: key)
        let error = #expect(throws: APIFailure.self) { try TokenAuthority.loadKey(in: directory) }
        #expect(error?.message.contains("chmod 600") == true, "\(String(describing: error?.message))")
    }

    @Test(arguments: [Int.min, Int.max, -1_000_001, 1_000_001, 0])
    func anAdjustmentOutOfRangeIsRefusedAndTheServerGoesOn(points: Int) async throws {
        let harness = try await Harness.make()
        let (session, _) = try await harness.enroll()
        let error = await #expect(throws: APIFailure.self) {
            try await harness.service.adjustPoints(member: session.memberID, points: points, reason: "attack")
        }
        #expect(error?.kind == .unprocessable)
        let fine = try await harness.service.adjustPoints(member: session.memberID, points: 10, reason: "goodwill")
        #expect(fine.points == 10)
    }

    @Test(arguments: [0, -1, 501, Int.max, Int.min])
    func anAbsurdListLimitIsRefused(limit: Int) async throws {
        let harness = try await Harness.make()
        let error = await #expect(throws: APIFailure.self) {
            try await harness.service.members(after: nil, limit: limit)
        }
        #expect(error?.kind == .unprocessable)
        #expect(try await harness.service.members(after: nil, limit: 500).isEmpty)
    }

    @Test func aClockAdvanceThatWouldOverflowIsRefused() async throws {
        let harness = try await Harness.make()
        for span in [TimeSpan.milliseconds(.max), .days(365 * 201)] {
            let error = #expect(throws: APIFailure.self) { try harness.service.setClock(to: nil, advanceBy: span) }
            #expect(error?.kind == .unprocessable)
        }
        #expect(try harness.service.setClock(to: nil, advanceBy: .days(1)) > Timestamp(Date()))
    }

    /// A consent stamped with the largest stamp would win over every later withdrawal: it is refused, the later
    /// withdrawal wins, and the stamp moves neither the server's clock nor another member's stamps.
    @Test func aStampFarAheadIsRefusedAndALaterWithdrawalWins() async throws {
        let harness = try await Harness.make()
        let (session, device) = try await harness.enroll()
        let now = harness.clock.now()
        let largest = HLCTimestamp(wallMilliseconds: (1 << 47) - 1, counter: 0)
        let twoDays = HLCTimestamp(wallMilliseconds: now.adding(.days(2)).millisecondsSince1970, counter: 0)
        let mutations = [
            MutationEnvelope(
                deviceID: device.id, sequence: 1, stamp: largest, deviceTime: now,
                mutation: .setConsent(.marketingEmail, granted: true)),
            MutationEnvelope(
                deviceID: device.id, sequence: 2, stamp: twoDays, deviceTime: now,
                mutation: .setProfileField(.phone, value: "+49 30 1234567", basedOn: nil)),
        ]
        let attack = try await harness.service.push(
            PushRequest(deviceID: device.id, mutations: mutations), from: device)
        #expect(attack.codes == ["clock_ahead", "clock_ahead"])
        #expect(attack.lastProcessedSequence == 2, "refused, not left waiting")
        #expect(attack.serverStamp.wallMilliseconds <= now.adding(.hours(1)).millisecondsSince1970)

        let withdrawal = try await harness.service.push(
            PushRequest(
                deviceID: device.id,
                mutations: [harness.envelope(device, 3, .setConsent(.marketingEmail, granted: false))]),
            from: device)
        #expect(withdrawal.codes == ["applied"])
        let state = try await harness.state(of: session.memberID)
        #expect(!state.consents.isGranted(.marketingEmail))
        #expect(state.profile[.phone] == nil)

        // Within the bound a stamp ahead is fine (a clock a few minutes fast).
        let slightly = HLCTimestamp(wallMilliseconds: now.adding(.minutes(10)).millisecondsSince1970, counter: 0)
        let fine = try await harness.service.push(
            PushRequest(
                deviceID: device.id,
                mutations: [
                    MutationEnvelope(
                        deviceID: device.id, sequence: 4, stamp: slightly, deviceTime: now,
                        mutation: .setConsent(.marketingSMS, granted: true))
                ]),
            from: device)
        #expect(fine.codes == ["applied"])
    }

    /// One letter and 39,999 combining marks is one grapheme but 40,000 characters as limits count them: refused,
    /// and the refusal quotes at most a short prefix of it.
    @Test func lengthLimitsCountUnicodeScalarsAndRefusalsQuoteAShortPrefix() async throws {
        let harness = try await Harness.make()
        let (session, device) = try await harness.enroll()
        let address = "a" + String(repeating: "\u{0301}", count: 39_999)
        #expect(address.count == 1, "one grapheme")
        let email = String(repeating: "x", count: 280) + "@example"
        let push = try await harness.service.push(
            PushRequest(
                deviceID: device.id,
                mutations: [
                    harness.envelope(device, 1, .setProfileField(.address, value: address, basedOn: nil)),
                    harness.envelope(device, 2, .setProfileField(.email, value: email, basedOn: nil)),
                    harness.envelope(device, 3, .claimReceipt(code: String(repeating: "Z", count: 10_000))),
                ]),
            from: device)
        #expect(push.codes == ["invalid_input", "invalid_field_value", "invalid_input"])
        for result in push.results {
            guard case .rejected(let rejection) = result.status else { continue }
            #expect(rejection.message.unicodeScalars.count < 200, "\(rejection.message.prefix(300))")
        }
        #expect(try await harness.state(of: session.memberID).profile[.address] == nil)
    }

    /// A refresh token replayed after its successor was used revokes the device's whole family: the thief's new
    /// tokens and the member's stop working, and the member is told why.
    @Test func aReplayedRefreshTokenRevokesTheWholeFamily() async throws {
        let harness = try await Harness.make()
        let (session, device) = try await harness.enroll()
        let stolen = session.refreshToken
        let second = try await harness.service.refresh(token: stolen)  // the member's app
        let third = try await harness.service.refresh(token: second.refreshToken)  // the successor is used
        let error = await #expect(throws: APIFailure.self) { try await harness.service.refresh(token: stolen) }
        #expect(error?.kind == .deviceRevoked)
        #expect(error?.message.contains("used from somewhere else") == true)
        let victim = await #expect(throws: APIFailure.self) {
            try await harness.service.refresh(token: third.refreshToken)
        }
        #expect(victim?.kind == .deviceRevoked)
        await #expect(throws: APIFailure.self) {
            try await harness.service.authenticate(accessToken: third.accessToken)
        }
        #expect(try await harness.service.storage.device(device.id)?.revokedReason == .refreshTokenReused)
    }

    /// A device whose refresh answer was lost retries with the same token, a few times; a thief replaying a
    /// token while the member's app holds its successor is caught when the app comes back.
    @Test func aLostRefreshAnswerMayBeRetriedAndAReplayIsCaughtWhenTheAppReturns() async throws {
        let harness = try await Harness.make()
        let (session, _) = try await harness.enroll()
        let held = try await harness.service.refresh(token: session.refreshToken)  // the app holds this one
        var thief: Session?
        let allowance = RefreshPolicy().retries
        #expect(allowance == 8)
        for _ in 0..<allowance { thief = try await harness.service.refresh(token: session.refreshToken) }
        #expect(thief != nil, "\(allowance) retries of a lost answer are answered")
        await #expect(throws: APIFailure.self, "one more is taken for a replay") {
            try await harness.service.refresh(token: session.refreshToken)
        }
        await #expect(throws: APIFailure.self) { try await harness.service.refresh(token: held.refreshToken) }

        // Another member: the app's answer is lost once, the retry works, and the app goes on refreshing.
        let (other, _) = try await harness.enroll()
        _ = try await harness.service.refresh(token: other.refreshToken)  // lost
        let retried = try await harness.service.refresh(token: other.refreshToken)
        let next = try await harness.service.refresh(token: retried.refreshToken)
        _ = try await harness.service.refresh(token: next.refreshToken)
    }

    @Test func aRefreshTokenUnusedPastItsIdleLifetimeSignsTheDeviceOut() async throws {
        let harness = try await Harness.make()
        let (session, _) = try await harness.enroll()
        try harness.clock.advance(by: .days(181))
        let error = await #expect(throws: APIFailure.self) {
            try await harness.service.refresh(token: session.refreshToken)
        }
        #expect(error?.kind == .unauthorized)
    }

    @Test func aRefreshTokenOfARevokedDeviceIsRefused() async throws {
        let harness = try await Harness.make()
        let (session, device) = try await harness.enroll()
        try await harness.service.revoke(device.id, by: session.memberID)
        let error = await #expect(throws: APIFailure.self) {
            try await harness.service.refresh(token: session.refreshToken)
        }
        #expect(error?.kind == .deviceRevoked)
    }

    /// An unknown e-mail costs a hash, as a wrong password does: the time taken does not tell whether an account
    /// exists. (Counted, not timed: the hash is what takes the time.)
    @Test func anUnknownEmailCostsAHashAsAWrongPasswordDoes() async throws {
        let harness = try await Harness.make()
        _ = try await harness.service.enroll(
            Registration(name: "Anna", email: "known@example.de"), password: "correct horse", deviceName: nil)
        let before = harness.service.passwords.completed
        await #expect(throws: APIFailure.self) {
            try await harness.service.login(email: "known@example.de", password: "wrong horse", deviceName: nil)
        }
        let wrong = harness.service.passwords.completed - before
        await #expect(throws: APIFailure.self) {
            try await harness.service.login(email: "unknown@example.de", password: "wrong horse", deviceName: nil)
        }
        let unknown = harness.service.passwords.completed - before - wrong
        #expect(wrong == 1)
        #expect(unknown == 1)
        // Enrolling an e-mail that is taken costs a hash too, and says only that it cannot be enrolled again.
        let taken = await #expect(throws: APIFailure.self) {
            try await harness.service.enroll(
                Registration(name: "Eve", email: "known@example.de"), password: "another horse", deviceName: nil)
        }
        #expect(taken?.kind == .conflict)
        #expect(harness.service.passwords.completed - before == 3)
    }

    /// A hash made at an older cost verifies with its own parameters and is redone at the current cost at the next
    /// successful sign-in.
    @Test func anOlderHashIsRenewedAtTheNextSignIn() async throws {
        let harness = try await Harness.make()
        let session = try await harness.service.enroll(
            Registration(name: "Anna", email: "renew@example.de"), password: "correct horse", deviceName: nil)
        let salt = PasswordHasher.salt()
        let old = ScryptParameters(logN: 4)
        try await harness.service.storage.updatePassword(
            member: session.memberID, hash: try PasswordHasher.hash("correct horse", salt: salt, parameters: old),
            salt: salt, parameters: old)
        _ = try await harness.service.login(email: "renew@example.de", password: "correct horse", deviceName: nil)
        let account = try #require(try await harness.service.storage.account(member: session.memberID))
        #expect(account.passwordParameters == harness.settings.configuration.passwordHashing)
        #expect(account.passwordParameters != old)
        _ = try await harness.service.login(email: "renew@example.de", password: "correct horse", deviceName: nil)
    }
}

extension HardeningTests {
    /// When the hashing queue is full, a sign-in is answered 503 with Retry-After at once instead of waiting.
    @Test func aFullHashingQueueIsAnswered503WithRetryAfter() async throws {
        let harness = try await Harness.make(configure: {
            $0.passwordHashing = ScryptParameters(logN: 14)
            $0.passwordThreads = 1
            $0.passwordQueue = 1
            $0.signInLimits.enabled = false
        })
        let failures = try await withThrowingTaskGroup(of: APIFailure?.self) { group in
            for client in 0..<4 {
                group.addTask {
                    do {
                        _ = try await harness.service.login(
                            email: "queue\(client)@example.de", password: "not the password", deviceName: nil)
                        return nil
                    } catch let failure as APIFailure {
                        return failure
                    }
                }
            }
            return try await group.reduce(into: [APIFailure]()) { if let failure = $1 { $0.append(failure) } }
        }
        let busy = failures.filter { $0.kind == .unavailable }
        #expect(!busy.isEmpty, "\(failures.map(\.kind.code))")
        #expect(busy.allSatisfy { $0.retryAfterSeconds == 1 })
        #expect(failures.count == 4, "the others are wrong passwords")
    }
}

extension HardeningTests {
    /// An internal error during a sign-in is logged by its type and operation: neither the password, nor the
    /// e-mail, nor the description of the error (which here holds both) reaches the log.
    @Test func anInternalErrorDuringASignInLogsNoSecret() async throws {
        struct Leaky: Error, CustomStringConvertible {
            let description = "lookup of anna.secret@example.de with password hunter2-secret failed"
        }
        let lines = Shared<[String]>([])
        let logger = Logger(label: "capture") { _ in CapturingLogHandler(lines: lines) }
        let throttle = Throttle()
        let harness = try await Harness.make(
            storage: { ThrottledStorage(base: $0, throttle: throttle) }, logger: logger)
        throttle.accountLookupFailure.withLock { $0 = Leaky() }
        try await harness.application().test(.router) { client in
            let call = try await Call.make(
                client, .post, "/v1/auth/login",
                body: #"{"email": "anna.secret@example.de", "password": "hunter2-secret"}"#)
            #expect(call.status == 500)
            #expect(!call.errorMessage.contains("hunter2"))
        }
        let logged = lines.withLock { $0 }.joined(separator: "\n")
        #expect(logged.contains("request failed"), "the failure is logged: \(logged)")
        #expect(!logged.contains("hunter2-secret"))
        #expect(!logged.contains("anna.secret"))
    }
}

/// Keeps every line logged through it, as `LEVEL message key=value ...` (with its metadata provider's, as
/// StreamLogHandler adds them).
struct CapturingLogHandler: LogHandler {
    let lines: Shared<[String]>
    var metadataProvider: Logger.MetadataProvider?
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let all = metadata.merging(metadataProvider?.get() ?? [:]) { $1 }.merging(event.metadata ?? [:]) { $1 }
        let fields = all.map { "\($0)=\($1)" }.sorted()
        lines.withLock { $0.append("\(event.level) \(event.message) \(fields.joined(separator: " "))") }
    }
}

extension HardeningTests {
    /// A member has at most so many devices signed in; a sign-in beyond is refused until one is signed out.
    @Test func signInsBeyondTheDeviceCapAreRefusedUntilOneIsSignedOut() async throws {
        let harness = try await Harness.make(configure: { $0.maxDevicesPerMember = 2 })
        let email = "cap@example.de"
        let (session, device) = try await harness.enroll(email)
        _ = try await harness.login(session, email: email)
        let refused = await #expect(throws: APIFailure.self) { try await harness.login(session, email: email) }
        #expect(refused?.kind == .conflict)
        try await harness.service.revoke(device.id, by: session.memberID)
        _ = try await harness.login(session, email: email)
    }
}

extension HardeningTests {
    /// After a rotation, tokens signed with the previous key verify until they expire; after the next, they do not.
    @Test func aRotatedKeyStillVerifiesItsTokensUntilTheNextRotation() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("rotate-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let now = Timestamp(Date())
        let who = Credentials(memberID: "m-1", deviceID: "d-1")
        let old = try TokenAuthority.load(in: directory).accessToken(for: who, now: now).token
        try TokenAuthority.rotateKey(in: directory)
        let rotated = try TokenAuthority.load(in: directory)
        #expect(try rotated.verify(accessToken: old, now: now) == who, "the previous key still verifies")
        let new = rotated.accessToken(for: who, now: now).token
        #expect(try rotated.verify(accessToken: new, now: now) == who)
        #expect(try Self.mode(directory.appendingPathComponent("signing.key.previous").path) == 0o600)
        try TokenAuthority.rotateKey(in: directory)
        let again = try TokenAuthority.load(in: directory)
        #expect(throws: APIFailure.self) { try again.verify(accessToken: old, now: now) }
        #expect(try again.verify(accessToken: new, now: now) == who)
        // A token whose key id names a key it was not signed with is refused.
        let forged = new.replacingOccurrences(of: ".", with: "-")
        #expect(throws: APIFailure.self) { try again.verify(accessToken: forged, now: now) }
    }
}

extension HardeningTests {
    /// The BOLA matrix: every route that takes an id, called by another member's device, and every operator route
    /// called with a member's token: all refused, and the victim's data unchanged.
    @Test func anotherMembersIDsAndTheOperatorsRoutesAreRefused() async throws {
        let harness = try await Harness.make()
        let (anna, annaDevice) = try await harness.enroll()
        try await harness.give(500, to: anna.memberID)  // moves the clock: Eve signs in afterwards
        let (eve, _) = try await harness.enroll()
        let before = try await harness.state(of: anna.memberID)
        let push =
            #"{"deviceID": "\#(annaDevice.id)", "mutations": [{"sequence": 1, "stamp": "1", "#
            + #""deviceTime": "2026-12-01T10:00:00.000Z", "mutation": {"kind": "redeemReward", "rewardID": "voucher-5"}}]}"#
        let deviceRoutes: [(HTTPRequest.Method, String, String?, Set<Int>)] = [
            (.post, "/v1/sync/push", push, [403]),
            (.post, "/v1/sync/pull", #"{"deviceID": "\#(annaDevice.id)", "cursor": 0}"#, [403]),
            (.post, "/v1/devices/\(annaDevice.id)/revoke", nil, [404]),
        ]
        let member = "/v1/admin/members/\(anna.memberID)"
        let adminRoutes: [(HTTPRequest.Method, String, String?)] = [
            (.get, "/v1/admin/members", nil), (.get, member, nil),
            (.put, "\(member)/sign-in", #"{"blocked": true}"#), (.post, "\(member)/card/replace", nil),
            (.post, "\(member)/adjust", #"{"points": 100, "reason": "x"}"#),
            (.put, "\(member)/segments", #"{"segments": ["gold"]}"#),
            (.post, "/v1/admin/offers", #"{"title": "x"}"#), (.post, "/v1/admin/offers/welcome-10/withdraw", nil),
            (.post, "/v1/admin/rewards", #"{"title": "x", "cost": 1}"#),
            (.post, "/v1/admin/surveys", #"{"title": "x", "points": 1, "questions": []}"#),
            (.post, "/v1/admin/receipts", #"{"amount": "1.00"}"#),
            (.post, "/v1/admin/purchases", #"{"memberID": "\#(anna.memberID)", "amount": "100.00"}"#),
            (.post, "/v1/admin/redemptions", #"{"memberID": "\#(anna.memberID)", "points": 100}"#),
            (.post, "/v1/admin/returns", #"{"transactionID": "T-1", "amount": "1.00"}"#),
            (.post, "/v1/admin/devices/\(annaDevice.id)/revoke", nil), (.post, "/v1/admin/jobs/expire", nil),
            (.post, "/v1/admin/clock", #"{"advance": "1d"}"#), (.get, "/metrics", nil),
        ]
        try await harness.application().test(.router) { client in
            for (method, path, body, refused) in deviceRoutes {
                let call = try await Call.make(client, method, path, body: body, token: eve.accessToken)
                #expect(
                    refused.contains(call.status),
                    "\(method) \(path) answered \(call.status) to another member: \(call.errorMessage)")
            }
            for (method, path, body) in adminRoutes {
                let call = try await Call.make(client, method, path, body: body, token: eve.accessToken)
                #expect(call.status == 401, "\(method) \(path) answered \(call.status) to a member's token")
            }
        }
        #expect(try await harness.state(of: anna.memberID) == before, "nothing of the victim's changed")
        #expect(try await harness.service.storage.device(annaDevice.id)?.revokedAt == nil)
    }
}

/// What a sign-in storm saw: the answers to the logins by status, and the slowest pull.
final class StormTally: Sendable {
    let statuses = Shared<[Int: Int]>([:])
    let slowestPull = Shared(Duration.zero)
}

/// A value behind a lock, shared by reference between tasks.
final class Shared<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    func withLock<T: Sendable>(_ body: (inout sending Value) -> T) -> T { mutex.withLock { body(&$0) } }
}
