import Foundation
import HTTPTypes
import HummingbirdTesting
import Logging
import LoyaltyAPI
import LoyaltyCore
import LoyaltyTesting
import OpenAPIRuntime
import OpenAPIURLSession
import ServiceLifecycle
import Testing

@testable import LoyaltyServer

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Adds a bearer token to every request of the generated client.
struct BearerToken: ClientMiddleware {
    let token: String
    func intercept(
        _ request: HTTPRequest, body: HTTPBody?, baseURL: URL, operationID: String,
        next: @Sendable (HTTPRequest, HTTPBody?, URL) async throws -> (HTTPResponse, HTTPBody?)
    ) async throws -> (HTTPResponse, HTTPBody?) {
        var request = request
        request.headerFields[.authorization] = "Bearer \(token)"
        return try await next(request, body, baseURL)
    }
}

func apiClient(port: Int, token: String? = nil) -> Client {
    Client(
        serverURL: URL(string: "http://127.0.0.1:\(port)")!, configuration: .loyalty, transport: URLSessionTransport(),
        middlewares: token.map { [BearerToken(token: $0)] } ?? [])
}

/// Real HTTP over loopback, through the generated client on the URLSession transport.
@Suite struct LiveTests {
    @Test func twoDevicesEnrolPushAndPullOverRealHTTP() async throws {
        let harness = try await Harness.make()
        try await harness.application().test(.live) { client in
            let port = try #require(client.port)
            let anonymous = apiClient(port: port)
            let enrolled = try await anonymous.enroll(
                headers: .init(loyaltyProtocol: "1"),
                body: .json(.init(name: "Anna Schmidt", email: "anna@example.de", password: "correct horse")))
            let phone = try enrolled.created.body.json
            let signedIn = try await anonymous.login(
                headers: .init(loyaltyProtocol: "1"),
                body: .json(.init(email: "anna@example.de", password: "correct horse", deviceName: "tablet")))
            let tablet = try signedIn.ok.body.json
            #expect(tablet.memberID == phone.memberID)
            #expect(tablet.deviceID != phone.deviceID)

            let phoneAPI = apiClient(port: port, token: phone.accessToken)
            let envelope = MutationEnvelope(
                deviceID: DeviceID(phone.deviceID), sequence: 1,
                stamp: HLCTimestamp(wallMilliseconds: harness.clock.now().millisecondsSince1970, counter: 0),
                deviceTime: harness.clock.now(),
                mutation: .setProfileField(.phone, value: "+49 30 1234567", basedOn: nil))
            let push = try await phoneAPI.push(
                headers: .init(loyaltyProtocol: "1"),
                body: .json(PushRequest(deviceID: envelope.deviceID, mutations: [envelope]).wire))
            let pushed = try PushResponse(wire: try push.ok.body.json)
            #expect(pushed.results == [MutationResult(sequence: 1, status: .applied)])

            let tabletAPI = apiClient(port: port, token: tablet.accessToken)
            var state = MemberState(
                program: harness.settings.program,
                member: MemberRecord(id: MemberID(tablet.memberID), createdAt: .init(millisecondsSince1970: 0)))
            var cursor = Cursor.start
            repeat {
                let pull = try await tabletAPI.pull(
                    headers: .init(loyaltyProtocol: "1"),
                    body: .json(PullRequest(deviceID: DeviceID(tablet.deviceID), cursor: cursor, limit: 5).wire))
                let page = try PullResponse(wire: try pull.ok.body.json)
                for change in page.changes { state.apply(change) }
                cursor = page.cursor
                if !page.hasMore { break }
            } while true
            #expect(state.profileValue(.phone) == "+49 30 1234567", "the tablet sees the phone's edit")
            #expect(state == (try await harness.state(of: MemberID(tablet.memberID))))
        }
    }

    @Test func aPushWhoseAnswerWasLostIsAppliedOnceWhenRetried() async throws {
        let harness = try await Harness.make()
        let (session, device) = try await harness.enroll()
        try await harness.give(1000, to: session.memberID)
        let token = harness.service.tokens.accessToken(
            for: .init(memberID: session.memberID, deviceID: device.id), now: harness.clock.now()
        ).token
        try await harness.application().test(.live) { client in
            let api = apiClient(port: try #require(client.port), token: token)
            let body = PushRequest(
                deviceID: device.id, mutations: [harness.envelope(device, 1, .redeemReward("voucher-5"))]
            ).wire
            // The first answer is "lost": the client never looks at it. The retry gets the stored result.
            _ = try await api.push(headers: .init(loyaltyProtocol: "1"), body: .json(body))
            let retry = try PushResponse(
                wire: try await api.push(headers: .init(loyaltyProtocol: "1"), body: .json(body)).ok.body.json)
            #expect(retry.results.map(\.status) == [.applied])
        }
        #expect(try await harness.state(of: session.memberID).ledger.available == 500)
    }

    @Test func gracefulShutdownLetsAPushInFlightFinishAndKeepsItsEffects() async throws {
        let throttle = Throttle(push: .milliseconds(600))
        let harness = try await Harness.make(storage: { ThrottledStorage(base: $0, throttle: throttle) })
        let (session, device) = try await harness.enroll()
        let (ports, portSink) = AsyncStream.makeStream(of: Int.self)
        let app = try harness.application { port in portSink.yield(port) }
        let group = ServiceGroup(configuration: .init(services: [app], logger: Logger(label: "test")))
        async let running: Void = group.run()
        var iterator = ports.makeAsyncIterator()
        let port = try #require(await iterator.next())

        let token = harness.service.tokens.accessToken(
            for: .init(memberID: session.memberID, deviceID: device.id), now: harness.clock.now()
        ).token
        let body = PushRequest(
            deviceID: device.id, mutations: [harness.envelope(device, 1, .setConsent(.marketingEmail, granted: true))]
        ).wire
        let inFlight = Task {
            try await apiClient(port: port, token: token).push(headers: .init(loyaltyProtocol: "1"), body: .json(body))
        }
        var signals = throttle.entered.makeAsyncIterator()
        _ = await signals.next()  // the push is now inside the (slow) store
        await group.triggerGracefulShutdown()
        let answer = try PushResponse(wire: try await inFlight.value.ok.body.json)
        try await running
        #expect(answer.results.map(\.status) == [.applied])

        // Reopen the store from its file: the effect is there, whole.
        let reopened = try SQLiteStorage(
            path: harness.settings.dataDirectory.appendingPathComponent("loyalty.sqlite").path)
        let state = try await reopened.withMember(
            MemberWorkRequest(memberID: session.memberID, now: harness.clock.now())
        ) { $0.state }
        #expect(state.consents.isGranted(.marketingEmail))
        #expect(try await reopened.device(device.id)?.lastSequence == 1)
    }

    @Test func theBuiltServerPrintsItsPortAnswersAndStopsCleanlyOnSIGTERM() async throws {
        let binary = try #require(Self.builtExecutable("loyalty-server"), "build the package first (swift build)")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "loyalty-bin-\(UUID().uuidString)")
        let process = Process()
        process.executableURL = binary
        process.arguments = [
            "serve", "--port", "0", "--data", directory.path, "--admin-token", "operator-secret-0123456789abcdefghij",
        ]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { process.terminate() } }
        let line = try #require(Self.readLine(from: output.fileHandleForReading))
        #expect(line.hasPrefix("listening on http://127.0.0.1:"))
        let port = try #require(Int(line.split(separator: ":").last ?? ""))
        let health = try await apiClient(port: port).health()
        #expect(try health.ok.body.json.status == "ok")

        // One process at a time has the store: a second server on the same directory stops with the reason, and
        // this one goes on.
        let second = Process()
        second.executableURL = binary
        second.arguments = ["serve", "--port", "0", "--data", directory.path]
        let secondError = Pipe()
        second.standardOutput = FileHandle.nullDevice
        second.standardError = secondError
        try second.run()
        let complaint = String(decoding: secondError.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        second.waitUntilExit()
        #expect(second.terminationStatus != 0)
        #expect(complaint.contains("another process"), "\(complaint)")
        #expect(throws: LoyaltyError.self) {
            try SQLiteStorage(path: directory.appendingPathComponent("loyalty.sqlite").path)
        }
        #expect(try await apiClient(port: port).health().ok.body.json.status == "ok")
        process.terminate()  // SIGTERM
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        #expect(FileManager.default.fileExists(atPath: directory.appendingPathComponent("loyalty.sqlite").path))
        #expect(FileManager.default.fileExists(atPath: directory.appendingPathComponent("signing.key").path))
    }

    static func builtExecutable(_ name: String) -> URL? { BuiltExecutable.locate(name) }

    static func readLine(from handle: FileHandle) -> String? {
        var bytes: [UInt8] = []
        while let byte = try? handle.read(upToCount: 1), let first = byte.first {
            if first == UInt8(ascii: "\n") { return String(decoding: bytes, as: UTF8.self) }
            bytes.append(first)
        }
        return bytes.isEmpty ? nil : String(decoding: bytes, as: UTF8.self)
    }
}
