import Foundation
import Logging
import LoyaltyCore
import LoyaltyTesting
import Synchronization
import Testing

@testable import LoyaltyServer

#if canImport(Glibc)
import Glibc
#endif

/// Attacks on a real `loyalty-server` process on loopback (docs/security.md): each checks its defence, that the
/// server still answers `/healthz` afterwards, and that what it logged holds no secret.
@Suite struct AttackTests {
    static let operatorToken = "attack-suite-operator-token-0123456789"

    /// A `loyalty-server serve` process of its own, ended by its pid when the test is done.
    final class ServerProcess: @unchecked Sendable {
        let process = Process()
        let port: Int
        let directory: URL
        let log: URL

        init(_ extra: [String] = []) throws {
            let binary = try #require(LiveTests.builtExecutable("loyalty-server"), "build the package first")
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("attack-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            log = directory.appendingPathComponent("server.log")
            #expect(FileManager.default.createFile(atPath: log.path, contents: nil))
            process.executableURL = binary
            process.arguments =
                [
                    "serve", "--port", "0", "--data", directory.appendingPathComponent("data").path, "--test-clock",
                    "--password-cost", "12", "--idle-timeout", "2s", "--log-level", "debug",
                ] + extra
            process.environment = ["LOYALTY_ADMIN_TOKEN": AttackTests.operatorToken]
            let output = Pipe()
            process.standardOutput = output
            process.standardError = try FileHandle(forWritingTo: log)
            try process.run()
            let line = try #require(LiveTests.readLine(from: output.fileHandleForReading))
            port = try #require(Int(line.split(separator: ":").last ?? ""))
        }

        /// Everything the server logged so far.
        var logged: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

        deinit {
            if process.isRunning {
                kill(process.processIdentifier, SIGTERM)
                process.waitUntilExit()
            }
            try? FileManager.default.removeItem(at: directory)
        }
    }

    /// One HTTP exchange on a connection of its own: what the server answered (status 0: no answer).
    struct Answer {
        var status: Int
        var headers: [String: String]
        var body: String
    }

    static func request(
        port: Int, _ method: String, _ path: String, body: String? = nil, headers: [String: String] = [:]
    ) async throws -> Answer {
        var text = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        var all = ["Loyalty-Protocol": "1", "Content-Type": "application/json"]
        for (key, value) in headers { all[key] = value }
        for (key, value) in all.sorted(by: { $0.key < $1.key }) { text += "\(key): \(value)\r\n" }
        let payload = Array((body ?? "").utf8)
        text += "Content-Length: \(payload.count)\r\n\r\n"
        let connection = try RawConnection(port: port)
        try connection.send(Array(text.utf8) + payload)
        return Self.parse(try await connection.readAll(timeout: 10))
    }

    static func parse(_ bytes: [UInt8]) -> Answer {
        let text = String(decoding: bytes, as: UTF8.self)
        guard let split = text.range(of: "\r\n\r\n") else { return Answer(status: 0, headers: [:], body: text) }
        let lines = text[..<split.lowerBound].split(separator: "\r\n")
        let status = lines.first.flatMap { Int($0.split(separator: " ").dropFirst().first ?? "") } ?? 0
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(
                in: .whitespaces)
        }
        return Answer(status: status, headers: headers, body: String(text[split.upperBound...]))
    }

    static func enroll(port: Int, email: String, password: String) async throws -> [String: Any] {
        let answer = try await request(
            port: port, "POST", "/v1/auth/enroll",
            body: #"{"name": "Anna Schmidt", "email": "\#(email)", "password": "\#(password)"}"#)
        #expect(answer.status == 201, "\(answer.body)")
        return try #require(JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any])
    }

    static func healthy(_ server: ServerProcess) async throws {
        #expect(try await request(port: server.port, "GET", "/healthz").status == 200, "the server still answers")
    }

    @Test func bruteForceOnOneAccountIsAnswered429AndTheLogHoldsNoSecret() async throws {
        let server = try ServerProcess()
        let email = "brute-force-victim@example.de"
        let password = "the right password 42"
        let enrolled = try await Self.enroll(port: server.port, email: email, password: password)
        var statuses: [Int] = []
        for attempt in 0..<10 {
            statuses.append(
                try await Self.request(
                    port: server.port, "POST", "/v1/auth/login",
                    body: #"{"email": "\#(email)", "password": "guess number \#(attempt)"}"#
                ).status)
        }
        #expect(statuses == Array(repeating: 401, count: 10))
        let right = try await Self.request(
            port: server.port, "POST", "/v1/auth/login", body: #"{"email": "\#(email)", "password": "\#(password)"}"#)
        #expect(right.status == 429, "the account takes no sign-in for the rest of the window")
        #expect(Int(right.headers["retry-after"] ?? "") ?? 0 > 0)
        #expect(right.body.contains("too_many_requests"))
        // After the window the member signs in.
        let advanced = try await Self.request(
            port: server.port, "POST", "/v1/admin/clock", body: #"{"advance": "16m"}"#,
            headers: ["Authorization": "Bearer \(Self.operatorToken)"])
        #expect(advanced.status == 200, "\(advanced.body)")
        let later = try await Self.request(
            port: server.port, "POST", "/v1/auth/login", body: #"{"email": "\#(email)", "password": "\#(password)"}"#)
        #expect(later.status == 200, "\(later.body)")
        try await Self.healthy(server)

        let logged = server.logged
        #expect(logged.contains("security: failed sign-in"), "failed sign-ins leave a log line")
        let refresh = try #require(enrolled["refreshToken"] as? String)
        let access = try #require(enrolled["accessToken"] as? String)
        for secret in [password, "guess number 3", email, refresh, access, Self.operatorToken] {
            #expect(!logged.contains(secret), "the log holds a secret: \(secret.prefix(12))…")
        }
    }

    /// Sixteen clients hammering the sign-in do not hold up pulls: hashing runs on a thread of its own, never on the
    /// threads that answer pushes and pulls.
    @Test func aSignInStormLeavesPullsAnswering() async throws {
        let server = try ServerProcess(["--password-cost", "14", "--sign-in-limit", "100000"])
        let enrolled = try await Self.enroll(port: server.port, email: "storm@example.de", password: "correct horse")
        let device = try #require(enrolled["deviceID"] as? String)
        let access = try #require(enrolled["accessToken"] as? String)
        let port = server.port
        let deadline = ContinuousClock.now + .seconds(3)
        let tally = StormTally()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for client in 0..<16 {
                group.addTask {
                    while ContinuousClock.now < deadline {
                        let answer = try await AttackTests.request(
                            port: port, "POST", "/v1/auth/login",
                            body: #"{"email": "storm\#(client)@example.de", "password": "not the password"}"#)
                        tally.statuses.withLock { $0[answer.status, default: 0] += 1 }
                    }
                }
            }
            group.addTask {
                while ContinuousClock.now < deadline {
                    let start = ContinuousClock.now
                    let pull = try await AttackTests.request(
                        port: port, "POST", "/v1/sync/pull", body: #"{"deviceID": "\#(device)", "cursor": 0}"#,
                        headers: ["Authorization": "Bearer \(access)"])
                    #expect(pull.status == 200, "\(pull.body.prefix(200))")
                    let took = ContinuousClock.now - start
                    tally.slowestPull.withLock { $0 = max($0, took) }
                    try await Task.sleep(for: .milliseconds(50))
                }
            }
            try await group.waitForAll()
        }
        let seen = tally.statuses.withLock { $0 }
        #expect(seen[401, default: 0] > 0, "\(seen)")
        // A liveness bound, not a benchmark: before, a pull waited behind the hashes for most of a second.
        let slowest = tally.slowestPull.withLock { $0 }
        #expect(slowest < .seconds(1), "\(slowest)")
        try await Self.healthy(server)
    }

    /// `--tls-cert` and `--tls-key` serve HTTPS directly: curl trusting the certificate gets its answer, and plain
    /// HTTP to the same port gets none.
    @Test func theServerServesHTTPSWithItsOwnCertificate() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let (certificate, key) = (
            directory.appendingPathComponent("cert.pem"), directory.appendingPathComponent("key.pem")
        )
        #expect(
            try Self.runTool(
                "/usr/bin/openssl",
                [
                    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key.path, "-out", certificate.path,
                ]
            ).status == 0)
        let server = try ServerProcess(["--tls-cert", certificate.path, "--tls-key", key.path])
        let secure = try Self.runTool(
            "/usr/bin/curl",
            [
                "-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", certificate.path,
                "https://127.0.0.1:\(server.port)/healthz",
            ])
        #expect(secure.output == "200", "\(secure)")
        let plain = try await Self.request(port: server.port, "GET", "/healthz")
        #expect(plain.status == 0, "plain HTTP gets no HTTP answer from the TLS port")
    }

    static func runTool(_ path: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// `loyalty-server rotate-key` refuses while the server has the directory, and rotates once it is stopped.
    @Test func theKeyIsRotatedOnlyWithTheServerStopped() async throws {
        let server = try ServerProcess()
        let data = server.directory.appendingPathComponent("data")
        let binary = try #require(server.process.executableURL)
        let busy = try Self.runTool(binary.path, ["rotate-key", "--data", data.path])
        #expect(busy.status != 0, "the running server holds the directory")
        kill(server.process.processIdentifier, SIGTERM)
        server.process.waitUntilExit()
        let rotated = try Self.runTool(binary.path, ["rotate-key", "--data", data.path])
        #expect(rotated.status == 0)
        #expect(FileManager.default.fileExists(atPath: data.appendingPathComponent("signing.key.previous").path))
    }

    @Test func oneAddressIsLimitedAcrossAccounts() async throws {
        let server = try ServerProcess(["--sign-in-limit", "12"])
        var statuses: [Int] = []
        for attempt in 0..<14 {
            statuses.append(
                try await Self.request(
                    port: server.port, "POST", "/v1/auth/login",
                    body: #"{"email": "nobody\#(attempt)@example.de", "password": "whatever it is"}"#
                ).status)
        }
        #expect(statuses.prefix(12).allSatisfy { $0 == 401 }, "\(statuses)")
        #expect(statuses.suffix(2) == [429, 429], "\(statuses)")
        try await Self.healthy(server)
    }

    @Test func slowClientsAreDroppedByTheIdleTimeoutWhileOthersAreServed() async throws {
        let server = try ServerProcess()
        var slow: [RawConnection] = []
        for index in 0..<20 {
            let connection = try RawConnection(port: server.port)
            if index.isMultiple(of: 2) {
                try connection.send(Array("POST /v1/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nLoyal".utf8))
            } else {
                try connection.send(
                    Array(
                        ("POST /v1/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                            + "Loyalty-Protocol: 1\r\nContent-Length: 1000\r\n\r\n{\"email\": \"half").utf8))
            }
            slow.append(connection)
        }
        // Others are served meanwhile.
        try await Self.healthy(server)
        // The server closes every one of them after its idle timeout (2 s here): reading ends.
        for connection in slow {
            let answer = try await connection.readAll(timeout: 10)
            #expect(!connection.timedOut, "a slow connection was left open")
            _ = answer
        }
        try await Self.healthy(server)
    }

    /// Sends a request with a body of `size` bytes and `Connection: close` whole before reading (as a simple client
    /// does), to a server whose idle timeout is far longer than the test's patience: the answer must not wait for it.
    static func sendWholeBodyFirst(
        _ path: String, size: Int, headers: String = ""
    ) async throws -> (answer: Answer, hung: Bool) {
        let server = try ServerProcess(["--idle-timeout", "60s"])
        let head =
            "POST \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nLoyalty-Protocol: 1\r\n"
            + headers + "Connection: close\r\nContent-Length: \(size)\r\n\r\n"
        let connection = try RawConnection(port: server.port)
        _ = connection.sendAll(Array(head.utf8), thenZeros: size)
        let answer = parse(try await connection.readAll(timeout: 10))
        try await healthy(server)
        return (answer, connection.timedOut)
    }

    @Test func a32MiBBodyWithConnectionCloseIsAnswered413WithoutHanging() async throws {
        let (answer, hung) = try await Self.sendWholeBodyFirst("/v1/auth/login", size: 32 << 20)
        #expect(!hung, "the client hung")
        #expect(answer.status == 413, "answered \(answer.status)")
    }

    /// An unauthorised push of 900 KiB, sent whole before reading, is answered 401 (the gate checks the token
    /// before it reads the body) and the connection closed, not left to the idle timeout.
    @Test func anUnauthorisedLargeBodyIsAnswered401WithoutHanging() async throws {
        let (answer, hung) = try await Self.sendWholeBodyFirst(
            "/v1/sync/push", size: 900 << 10, headers: "Authorization: Bearer forged.token\r\n")
        #expect(!hung, "the client hung")
        #expect(answer.status == 401, "answered \(answer.status)")
    }

    @Test func theDataDirectoryAndTheOperatorTokenLengthAreChecked() async throws {
        let server = try ServerProcess()
        let data = server.directory.appendingPathComponent("data")
        for path in [data.path, data.appendingPathComponent("loyalty.sqlite").path] {
            let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
            #expect(mode.map { $0 & 0o077 } == 0, "\(path) is readable by others")
        }
        let short = Process()
        short.executableURL = server.process.executableURL
        short.arguments = ["serve", "--port", "0", "--data", server.directory.appendingPathComponent("other").path]
        short.environment = ["LOYALTY_ADMIN_TOKEN": "too-short"]
        let error = Pipe()
        short.standardError = error
        short.standardOutput = FileHandle.nullDevice
        try short.run()
        let complaint = String(decoding: error.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        short.waitUntilExit()
        #expect(short.terminationStatus != 0)
        #expect(complaint.contains("at least 32 characters"), "\(complaint)")
        #expect(!complaint.contains("too-short"), "the refusal does not echo the token")
    }

    @Test func anAdjustmentOfIntMinAndAFarFutureStampLeaveTheServerStanding() async throws {
        let server = try ServerProcess()
        let enrolled = try await Self.enroll(port: server.port, email: "edge@example.de", password: "correct horse")
        let member = try #require(enrolled["memberID"] as? String)
        let adjust = try await Self.request(
            port: server.port, "POST", "/v1/admin/members/\(member)/adjust",
            body: #"{"points": -9223372036854775808, "reason": "attack"}"#,
            headers: ["Authorization": "Bearer \(Self.operatorToken)"])
        #expect((400..<500).contains(adjust.status), "\(adjust.status) \(adjust.body)")
        try await Self.healthy(server)
        let device = try #require(enrolled["deviceID"] as? String)
        let access = try #require(enrolled["accessToken"] as? String)
        let stamp = String((UInt64(1) << 63) - 1)
        let push = try await Self.request(
            port: server.port, "POST", "/v1/sync/push",
            body: """
                {"deviceID": "\(device)", "mutations": [{"sequence": 1, "stamp": "\(stamp)",
                "deviceTime": "2026-12-01T10:00:00.000Z",
                "mutation": {"kind": "setConsent", "consent": "marketing-email", "granted": true}}]}
                """,
            headers: ["Authorization": "Bearer \(access)"])
        #expect(push.status == 200, "\(push.body)")
        #expect(push.body.contains("clock_ahead"), "\(push.body)")
        try await Self.healthy(server)
    }
}

/// A blocking TCP connection to loopback, for requests that well-behaved clients never make.
final class RawConnection: @unchecked Sendable {
    let descriptor: Int32
    private(set) var timedOut = false

    init(port: Int) throws {
        descriptor = try LoopbackSocket.connect(port: port)
    }

    deinit { close(descriptor) }

    func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes {
                Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
            }
            guard sent > 0 else { throw LoyaltyError("socket", "send failed: \(String(cString: strerror(errno)))") }
            offset += sent
        }
    }

    /// Sends `head` and then `count` zero bytes; false if the server closed the connection before all were sent.
    func sendAll(_ head: [UInt8], thenZeros count: Int) -> Bool {
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        do { try send(head) } catch { return false }
        let chunk = [UInt8](repeating: UInt8(ascii: "0"), count: 1 << 16)
        var left = count
        while left > 0 {
            let part = min(left, chunk.count)
            let sent = chunk.withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress, part, Int32(MSG_NOSIGNAL)) }
            if sent <= 0 {
                if errno == EAGAIN || errno == EWOULDBLOCK { timedOut = true }
                return false
            }
            left -= sent
        }
        return true
    }

    /// Reads until the server closes the connection or `timeout` seconds pass (then ``timedOut``), on a thread of
    /// its own (Dispatch's global queues run as many blocking reads at once as there are cores, on Linux).
    func readAll(timeout seconds: Int) async throws -> [UInt8] {
        try await withCheckedThrowingContinuation { continuation in
            Thread {
                var limit = timeval(tv_sec: seconds, tv_usec: 0)
                setsockopt(self.descriptor, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
                var received: [UInt8] = []
                var buffer = [UInt8](repeating: 0, count: 1 << 16)
                while true {
                    let count = buffer.withUnsafeMutableBytes { recv(self.descriptor, $0.baseAddress, $0.count, 0) }
                    if count > 0 {
                        received += buffer[..<count]
                        continue
                    }
                    if count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { self.timedOut = true }
                    break
                }
                continuation.resume(returning: received)
            }.start()
        }
    }
}
