import Foundation
import Logging
import LoyaltyAPI
import LoyaltyCore
import LoyaltyServer
import LoyaltyStore
import LoyaltySync
import LoyaltyTesting
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A server data directory filled in this process (not timed), then served by a real `loyalty-server` process.
/// Where a row's server keeps its data: a data directory (SQLite, the default) or a new database on the cluster of
/// the PostgreSQL rows.
enum BenchBackend {
    case sqlite
    case postgres

    /// Fills the store in this process, then starts a `loyalty-server` process on it.
    func seededServer<T>(
        _ directory: URL, _ body: (SeededServer) async throws -> T
    ) async throws -> (T, ServerProcess) {
        switch self {
        case .sqlite:
            let value = try await SeededServer.seed(directory, body)
            return (value, try ServerProcess(data: directory))
        case .postgres:
            let database = try await StorageBackend.freshDatabase()
            var logger = Logger(label: "loyalty-bench")
            logger.logLevel = .warning
            let storage = PostgresStorage(url: database, connections: 8, logger: logger)
            storage.runInBackground()
            let value = try await SeededServer.seed(postgres: storage, directory: directory, body)
            return (value, try ServerProcess(data: directory, database: Benchmark.urlText(database)))
        }
    }
}

struct SeededServer {
    let directory: URL
    let service: SyncService
    let tokens: TokenAuthority
    let now: Timestamp

    /// Fills the data directory in this process, then lets go of it: the server process started next locks it.
    static func seed<T>(_ directory: URL, _ body: (SeededServer) async throws -> T) async throws -> T {
        try await body(open(directory))
    }

    /// Fills a PostgreSQL database in this process (the server processes started next share it).
    static func seed<T>(
        postgres storage: PostgresStorage, directory: URL, _ body: (SeededServer) async throws -> T
    ) async throws -> T {
        var settings = try ServerSettings(dataDirectory: directory, schedulesJobs: false)
        settings.configuration.passwordHashing = ScryptParameters(logN: 1)
        var logger = Logger(label: "loyalty-bench")
        logger.logLevel = .warning
        try await storage.migrate()
        let keys = try await storage.tokenAuthority()
        let service = try await LoyaltyServerApp.makeService(
            settings: settings, storage: storage, tokens: keys, logger: logger)
        let tokens = try await storage.tokenAuthority(accessLifetime: .hours(2))
        return try await body(
            SeededServer(directory: directory, service: service, tokens: tokens, now: Timestamp(Date())))
    }

    /// Opens (creating) the data directory with the default programme, as the server would on first start.
    private static func open(_ directory: URL) async throws -> SeededServer {
        var settings = try ServerSettings(dataDirectory: directory, schedulesJobs: false)
        // Members enrolled here never sign in with their password: their sessions are minted with the directory's
        // key. A cheap hash keeps thousands of enrolments quick.
        settings.configuration.passwordHashing = ScryptParameters(logN: 1)
        var logger = Logger(label: "loyalty-bench")
        logger.logLevel = .warning
        let service = try await LoyaltyServerApp.makeService(settings: settings, logger: logger)
        let tokens = TokenAuthority(key: try TokenAuthority.loadKey(in: directory), accessLifetime: .hours(2))
        return SeededServer(directory: directory, service: service, tokens: tokens, now: Timestamp(Date()))
    }

    /// Enrols a member and returns its first device's identity for a server at `url`.
    func enroll(_ index: Int, url: String = "http://127.0.0.1:1") async throws -> DeviceIdentity {
        let session = try await service.enroll(
            Registration(name: "Member \(index)", email: "member\(index)@bench.example"), password: "bench-password-1",
            deviceName: "bench")
        return identity(member: session.memberID, device: session.deviceID, card: session.cardNumber, url: url)
    }

    /// Adds a device to a member, with a session signed by the directory's key.
    func addDevice(member: MemberID, card: CardNumber, name: String) async throws -> DeviceIdentity {
        let id = DeviceID(SyncService.randomID(prefix: "d-"))
        try await service.storage.insertDevice(
            DeviceRecord(
                id: id, memberID: member, name: name, createdAt: now, lastSeenAt: now, lastPulledAt: now,
                refreshHash: TokenAuthority.refreshToken(for: id).hash))
        return identity(member: member, device: id, card: card, url: "http://127.0.0.1:1")
    }

    private func identity(member: MemberID, device: DeviceID, card: CardNumber, url: String) -> DeviceIdentity {
        let access = tokens.accessToken(for: Credentials(memberID: member, deviceID: device), now: now)
        return DeviceIdentity(
            serverURL: url, memberID: member, deviceID: device, cardNumber: card.digits, accessToken: access.token,
            accessTokenExpiresAt: access.expiresAt, refreshToken: TokenAuthority.refreshToken(for: device).token)
    }

    /// Gives a member `count` one-point purchases, each a lot and its earn movement, written in large units of
    /// work (the operator's till path would take minutes for 100,000; what a device pulls is the same).
    func addMovements(_ count: Int, to member: MemberID) async throws {
        var start = 0
        while start < count {
            let (first, end) = (start, min(start + 10_000, count))
            let now = self.now
            try await service.storage.withMember(MemberWorkRequest(memberID: member, now: now)) { work in
                var entities: [Entity] = []
                for index in first..<end {
                    let earned = now.adding(.minutes(Int64(index - count)))
                    var lot = EarnLot(
                        id: LotID("tx-\(index)"), cause: .purchase, amount: 1, earnedAt: earned, pendingUntil: nil,
                        expiresAt: now.adding(.days(700)), purchaseAmount: Money(minorUnits: 100))
                    lot.state = .active
                    work.state.merge(.lot(lot))
                    entities += [
                        .lot(lot),
                        .ledgerEntry(
                            LedgerEntry(
                                id: EntryID("earn:tx-\(index)"), kind: .earn, at: earned, available: 1,
                                draws: [LotDraw(lot: lot.id, points: 1)])),
                    ]
                }
                work.write(entities)
            }
            start = end
        }
    }

    /// Adds `count` offers to the catalogue in one unit of work.
    func addOffers(_ count: Int) async throws {
        let now = self.now
        try await service.storage.withCatalogue(now: now) { work in
            work.write(
                (0..<count).map { index in
                    .offer(
                        Offer(
                            id: OfferID("bench-\(index)"), title: "Offer \(index)", details: "Benchmark offer \(index)",
                            validFrom: now.adding(.days(-1)), validUntil: now.adding(.days(60))))
                })
        }
    }
}

/// A real `loyalty-server` process on loopback: the executable beside this one.
final class ServerProcess {
    let process = Process()
    let port: Int
    var url: String { "http://127.0.0.1:\(port)" }
    static let adminToken = "bench-admin-token-0123456789abcdef"

    init(data: URL, database: String? = nil) throws {
        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
            .deletingLastPathComponent().appendingPathComponent("loyalty-server")
        guard FileManager.default.isExecutableFile(atPath: executable.path) else {
            throw LoyaltyError(
                "bench",
                "the sync benchmarks run the real server, but \(executable.path) is missing: build it first "
                    + "(swift build -c release --product loyalty-server)")
        }
        process.executableURL = executable
        process.arguments =
            [
                "serve", "--data", data.path, "--port", "0", "--job-interval", "24h", "--log-level", "error",
                "--admin-token", Self.adminToken,
            ] + (database.map { ["--database", $0, "--database-connections", "40"] } ?? [])
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        var line = Data()
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = output.fileHandleForReading.availableData
            guard !chunk.isEmpty else { throw LoyaltyError("bench", "loyalty-server ended before it listened") }
            line += chunk
        }
        let text = String(decoding: line, as: UTF8.self)
        guard let portText = text.split(separator: ":").last?.prefix(while: \.isNumber), let port = Int(portText) else {
            throw LoyaltyError("bench", "loyalty-server said '\(text)', not where it listens")
        }
        self.port = port
    }

    /// The server process's peak resident memory so far, in MiB.
    var peakResidentMiB: Double { BenchmarkResult.peakResidentMiB(of: "\(process.processIdentifier)") }

    func stop() {
        process.terminate()
        process.waitUntilExit()
    }
}

/// A minimal HTTP/1.1 client over one keep-alive loopback connection, blocking: the load generator's, so that
/// generating load costs as little as possible of the machine the server shares.
final class LoadConnection {
    private let socket: Int32
    private var buffer: [UInt8] = []
    /// Where `recv` writes, allocated once (zeroing 64 KiB for every read showed in the generator's profile).
    private var chunk = [UInt8](repeating: 0, count: 65_536)

    init(port: Int) throws {
        socket = try LoopbackSocket.connect(port: port)
        var one: Int32 = 1
        setsockopt(socket, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    deinit { close(socket) }

    /// Sends one request and reads its answer: the status and the body.
    func request(_ method: String, _ path: String, token: String? = nil, body: [UInt8] = []) throws -> (Int, [UInt8]) {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nLoyalty-Protocol: 1\r\n"
        if let token { head += "Authorization: Bearer \(token)\r\n" }
        if !body.isEmpty { head += "Content-Type: application/json\r\n" }
        head += "Content-Length: \(body.count)\r\n\r\n"
        try send(Array(head.utf8) + body)
        // Headers, then exactly Content-Length bytes of body.
        var headerEnd: Int?
        while headerEnd == nil {
            if let index = Self.find([13, 10, 13, 10], in: buffer) { headerEnd = index } else { try receive() }
        }
        let header = String(decoding: buffer[..<headerEnd!], as: UTF8.self)
        let lines = header.split(separator: "\r\n")
        guard let statusText = lines.first?.split(separator: " ").dropFirst().first, let status = Int(statusText) else {
            throw LoyaltyError("bench", "not an HTTP answer: \(header.prefix(80))")
        }
        guard
            let lengthLine = lines.first(where: { $0.lowercased().hasPrefix("content-length:") }),
            let length = Int(lengthLine.split(separator: ":")[1].trimmingCharacters(in: .whitespaces))
        else { throw LoyaltyError("bench", "an answer without Content-Length: \(header.prefix(200))") }
        let bodyStart = headerEnd! + 4
        while buffer.count < bodyStart + length { try receive() }
        let answer = Array(buffer[bodyStart..<(bodyStart + length)])
        buffer.removeFirst(bodyStart + length)
        return (status, answer)
    }

    private func send(_ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let written = bytes[sent...].withUnsafeBytes { Glibc.send(socket, $0.baseAddress, $0.count, 0) }
            guard written > 0 else { throw LoyaltyError("bench", "the server closed the connection") }
            sent += written
        }
    }

    private func receive() throws {
        let read = chunk.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, 0) }
        guard read > 0 else { throw LoyaltyError("bench", "the server closed the connection") }
        buffer += chunk[..<read]
    }

    static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for start in 0...(haystack.count - needle.count) where haystack[start] == needle[0] {
            if haystack[start..<(start + needle.count)].elementsEqual(needle) { return start }
        }
        return nil
    }
}

/// Answers checked by their bytes in the load generator's loops: parsing each as JSON took about 40% of the
/// generator's time, taken from the server it shares the two cores with. The server writes compact JSON.
enum AnswerBytes {
    /// The integer written after `"key":`, if there is one.
    static func integer(_ key: String, in answer: [UInt8]) -> Int? {
        let needle = Array("\"\(key)\":".utf8)
        guard let start = LoadConnection.find(needle, in: answer) else { return nil }
        let digits = answer[(start + needle.count)...].prefix(while: { (48...57).contains($0) })
        return Int(String(decoding: digits, as: UTF8.self))
    }

    static func contains(_ text: String, in answer: [UInt8]) -> Bool {
        LoadConnection.find(Array(text.utf8), in: answer) != nil
    }
}

/// Runs `work` for each job on `connections` threads, each with its own connection; returns each job's latency
/// in µs and the wall time in seconds.
func drive<Job: Sendable>(
    _ jobs: [[Job]], port: Int, _ work: @escaping @Sendable (LoadConnection, Job) throws -> Void
) throws -> (latencies: [Double], seconds: Double) {
    try drive(jobs, ports: [port], work)
}

/// ``drive(_:port:_:)`` with the lanes spread over several servers (lane i on `ports[i % ports.count]`).
func drive<Job: Sendable>(
    _ jobs: [[Job]], ports: [Int], _ work: @escaping @Sendable (LoadConnection, Job) throws -> Void
) throws -> (latencies: [Double], seconds: Double) {
    let results = Mutex<([Double], [String])>(([], []))
    let group = DispatchGroup()
    let start = DispatchTime.now()
    for (index, lane) in jobs.enumerated() {
        let port = ports[index % ports.count]
        group.enter()
        let thread = Thread {
            defer { group.leave() }
            var latencies: [Double] = []
            latencies.reserveCapacity(lane.count)
            do {
                let connection = try LoadConnection(port: port)
                for job in lane {
                    let started = DispatchTime.now()
                    try work(connection, job)
                    latencies.append(Benchmark.microseconds(since: started))
                }
                results.withLock { $0.0 += latencies }
            } catch {
                results.withLock { $0.1.append("\(error)") }
            }
        }
        thread.stackSize = 1 << 20
        thread.start()
    }
    group.wait()
    let seconds = Benchmark.microseconds(since: start) / 1_000_000
    let (latencies, failures) = results.withLock { $0 }
    if let failure = failures.first { throw LoyaltyError("bench", "a load connection failed: \(failure)") }
    return (latencies, seconds)
}

/// Splits `items` into `lanes` round-robin lanes.
func lanes<Item>(_ items: [Item], _ lanes: Int) -> [[Item]] {
    var result = Array(repeating: [Item](), count: max(1, min(lanes, items.count)))
    for (index, item) in items.enumerated() { result[index % result.count].append(item) }
    return result
}

/// JSON bodies of the wire protocol, made with the contract's own types.
enum Wire {
    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        // The wire's own date form, as the real transport writes it.
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(try RFC3339DateTranscoder().encode(date))
        }
        return encoder
    }()

    static func push(_ request: PushRequest) throws -> [UInt8] { Array(try encoder.encode(request.wire)) }
    static func pull(_ request: PullRequest) throws -> [UInt8] { Array(try encoder.encode(request.wire)) }
}

/// A transport that adds up the time spent in calls to the server (request out, server's work, answer back and
/// decoded), so that a sync row can say how much of its time was the network's and the server's and how much the
/// device's own work.
final class TimedTransport: SyncTransport {
    private let base: any SyncTransport
    private let spent = Mutex<(all: Double, pushes: Double)>((0, 0))

    init(_ base: any SyncTransport) { self.base = base }

    /// Seconds spent in calls so far.
    var seconds: Double { spent.withLock { $0.all } }

    /// Seconds spent in push calls so far.
    var pushSeconds: Double { spent.withLock { $0.pushes } }

    private func timed<T: Sendable>(
        push: Bool = false, _ body: () async throws(TransportError) -> T
    ) async throws(TransportError) -> T {
        let started = DispatchTime.now()
        defer {
            let elapsed = Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e9
            spent.withLock {
                $0.all += elapsed
                if push { $0.pushes += elapsed }
            }
        }
        return try await body()
    }

    func enroll(
        _ registration: Registration, password: String, deviceName: String?
    ) async throws(TransportError)
        -> SessionGrant
    {
        try await timed { () async throws(TransportError) in
            try await base.enroll(registration, password: password, deviceName: deviceName)
        }
    }

    func login(email: String, password: String, deviceName: String?) async throws(TransportError) -> SessionGrant {
        try await timed { () async throws(TransportError) in
            try await base.login(email: email, password: password, deviceName: deviceName)
        }
    }

    func refresh(refreshToken: String) async throws(TransportError) -> SessionGrant {
        try await timed { () async throws(TransportError) in try await base.refresh(refreshToken: refreshToken) }
    }

    func push(_ request: PushRequest, accessToken: String) async throws(TransportError) -> PushResponse {
        try await timed(push: true) { () async throws(TransportError) in
            try await base.push(request, accessToken: accessToken)
        }
    }

    func pull(_ request: PullRequest, accessToken: String) async throws(TransportError) -> PullResponse {
        try await timed { () async throws(TransportError) in try await base.pull(request, accessToken: accessToken) }
    }

    func pull(
        _ request: PullRequest, accessToken: String, early: @escaping @Sendable (Cursor, _ hasMore: Bool) -> Void
    ) async throws(TransportError) -> PullResponse {
        try await timed { () async throws(TransportError) in
            try await base.pull(request, accessToken: accessToken, early: early)
        }
    }

    func devices(accessToken: String) async throws(TransportError) -> [DeviceSummary] {
        try await timed { () async throws(TransportError) in try await base.devices(accessToken: accessToken) }
    }

    func revoke(device: DeviceID, accessToken: String) async throws(TransportError) {
        try await timed { () async throws(TransportError) in
            try await base.revoke(device: device, accessToken: accessToken)
        }
    }
}

/// A short-lived process run to its end, for its peak resident memory.
enum ChildProcess {
    /// Runs the executable built beside this one with `arguments` (output discarded) and returns its peak resident
    /// memory in MiB (its `VmHWM`, read every 5 ms while it runs: `ru_maxrss` would count this process's memory too,
    /// which a spawned child inherits as its starting figure); fails if it does not exit 0.
    static func peakResidentMiB(sibling name: String, arguments: [String]) throws -> Double {
        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
            .deletingLastPathComponent().appendingPathComponent(name).path
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw LoyaltyError(
                "bench", "\(executable) is missing: build it first (swift build -c release builds every product)")
        }
        let pid = try Spawn.start(executable, arguments)
        var status: Int32 = 0
        var peak = 0.0
        while true {
            peak = max(peak, BenchmarkResult.peakResidentMiB(of: "\(pid)"))
            let waited = waitpid(pid, &status, WNOHANG)
            if waited == pid { break }
            guard waited == 0 else { throw LoyaltyError("bench", "\(executable) could not be waited for") }
            usleep(5_000)
        }
        guard status == 0 else {
            throw LoyaltyError("bench", "\(name) \(arguments.joined(separator: " ")) failed (\(status))")
        }
        return peak
    }
}
