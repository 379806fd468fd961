public import LoyaltyCore
public import LoyaltyServer
public import LoyaltySync
internal import Synchronization

/// The one source of randomness of a run, shared by the world, the network and the server's id maker. Every
/// draw happens in the order the run's single sequence of steps makes it, so a seed replays exactly.
public final class Dice: Sendable {
    private let random: Mutex<SeededRandom>

    /// Dice that start from `seed`.
    public init(seed: UInt64) { random = Mutex(SeededRandom(seed: seed)) }

    /// True with probability `probability`.
    public func chance(_ probability: Double) -> Bool {
        random.withLock { $0.chance(probability) }
    }

    /// A number in `range`.
    public func int(_ range: ClosedRange<Int>) -> Int { random.withLock { $0.int(range) } }

    /// One of `items`.
    public func pick<T>(_ items: [T]) -> T { items[int(0...(items.count - 1))] }

    /// An index chosen by weight.
    public func weighted(_ weights: [Int]) -> Int {
        var roll = int(0...(weights.reduce(0, +) - 1))
        for (index, weight) in weights.enumerated() {
            if roll < weight { return index }
            roll -= weight
        }
        return weights.count - 1
    }

    /// A server id: the prefix and 12 characters of Crockford base32, from the seed.
    public func id(_ prefix: String) -> String {
        let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ")
        return prefix + String((0..<12).map { _ in alphabet[int(0...31)] })
    }
}

/// How often the simulated network misbehaves, per call.
public struct FaultRates: Sendable, Hashable {
    /// The request is lost: the server never sees it.
    public var dropRequest = 0.04
    /// The server commits, but its answer is lost.
    public var dropResponse = 0.06
    /// The request arrives twice (a retransmission); the device gets the second answer.
    public var duplicate = 0.03
    /// A copy of a push is held back and delivered later, after newer requests (reordering).
    public var holdBack = 0.03
    /// The device process dies while it waits for this answer (its memory is discarded; its file stays).
    public var crash = 0.02

    /// The default fault rates.
    public init() {}

    /// A network that never fails (to reach quiescence).
    public static let none: FaultRates = {
        var rates = FaultRates()
        rates.dropRequest = 0
        rates.dropResponse = 0
        rates.duplicate = 0
        rates.holdBack = 0
        rates.crash = 0
        return rates
    }()
}

/// The server a simulated network reaches: swapped when the server restarts.
public final class ServerSlot: Sendable {
    private let current: Mutex<SyncService>

    /// A slot holding `service`.
    public init(_ service: SyncService) { current = Mutex(service) }

    /// The server now running.
    public var service: SyncService { current.withLock { $0 } }

    /// Puts a restarted server in the slot.
    public func replace(with service: SyncService) { current.withLock { $0 = service } }
}

/// One device's link to the in-process server, with faults drawn from the run's dice. It calls the real
/// `SyncService` with the domain types, as the HTTP layer would after decoding.
public final class SimNetwork: SyncTransport {
    private struct Link {
        var online = true
        var rates = FaultRates()
        var crashed = false
        var heldBack: [PushRequest] = []
        var token: String?
    }

    private let server: ServerSlot
    private let dice: Dice
    private let name: String
    private let trace: @Sendable (String) -> Void
    private let link: Mutex<Link>

    /// Creates a `SimNetwork` from its parts.
    public init(server: ServerSlot, dice: Dice, name: String, trace: @escaping @Sendable (String) -> Void) {
        self.server = server
        self.dice = dice
        self.name = name
        self.trace = trace
        self.link = Mutex(Link())
    }

    /// Whether the device can reach the server at all (a partition when false).
    public var isOnline: Bool {
        get { link.withLock { $0.online } }
        set { link.withLock { $0.online = newValue } }
    }

    /// The fault rates.
    public var rates: FaultRates {
        get { link.withLock { $0.rates } }
        set { link.withLock { $0.rates = newValue } }
    }

    /// Whether a crash fault hit since the last check (the driver then discards the device's memory).
    public func takeCrash() -> Bool {
        link.withLock { link in
            defer { link.crashed = false }
            return link.crashed
        }
    }

    /// Delivers the pushes that were held back (late, after newer requests); their answers go nowhere.
    public func deliverHeldBack() async {
        let held = link.withLock { link in
            defer { link.heldBack = [] }
            return link.heldBack
        }
        for request in held {
            guard let token = link.withLock({ $0.token }) else { continue }
            _ = try? await call("late push", token: token) { service, device in
                try await service.push(request, from: device)
            }
        }
    }

    // MARK: SyncTransport

    public func enroll(
        _ registration: Registration, password: String, deviceName: String?
    ) async throws(TransportError) -> SessionGrant {
        grant(
            try await perform("enroll") {
                try await $0.enroll(registration, password: password, deviceName: deviceName)
            })
    }

    public func login(email: String, password: String, deviceName: String?) async throws(TransportError) -> SessionGrant
    {
        grant(
            try await perform("login") { try await $0.login(email: email, password: password, deviceName: deviceName) })
    }

    public func refresh(refreshToken: String) async throws(TransportError) -> SessionGrant {
        grant(try await perform("refresh") { try await $0.refresh(token: refreshToken) })
    }

    public func push(_ request: PushRequest, accessToken: String) async throws(TransportError) -> PushResponse {
        if link.withLock({ $0.online }), dice.chance(rates.holdBack) {
            link.withLock { $0.heldBack.append(request) }
            trace("net \(name): a copy of the push is held back")
        }
        return try await call("push", token: accessToken) { service, device in
            try await service.push(request, from: device)
        }
    }

    public func pull(_ request: PullRequest, accessToken: String) async throws(TransportError) -> PullResponse {
        try await call("pull", token: accessToken) { service, device in try await service.pull(request, from: device) }
    }

    public func devices(accessToken: String) async throws(TransportError) -> [DeviceSummary] {
        try await call("devices", token: accessToken) { service, device in
            try await service.devices(of: device.memberID).map {
                DeviceSummary(
                    id: $0.id, name: $0.name, createdAt: $0.createdAt, revokedAt: $0.revokedAt,
                    lastSeenAt: $0.lastSeenAt, isCurrent: $0.id == device.id)
            }
        }
    }

    public func revoke(device id: DeviceID, accessToken: String) async throws(TransportError) {
        try await call("revoke", token: accessToken) { service, device in
            try await service.revoke(id, by: device.memberID)
        }
    }

    // MARK: Faults

    private func call<T: Sendable>(
        _ what: String, token: String, _ body: @Sendable (SyncService, DeviceRecord) async throws -> T
    ) async throws(TransportError) -> T {
        link.withLock { $0.token = token }
        return try await perform(what) { service in
            try await body(service, try await service.authenticate(accessToken: token))
        }
    }

    /// One request through the faulty network: lost, answered, answered twice, or answered into the void.
    private func perform<T: Sendable>(
        _ what: String, _ body: @Sendable (SyncService) async throws -> T
    ) async throws(TransportError) -> T {
        let rates = self.rates
        guard isOnline else { throw .unreachable("partitioned") }
        if dice.chance(rates.crash) {
            link.withLock { $0.crashed = true }
            trace("net \(name): the device crashes while its \(what) is in flight")
            if dice.chance(0.5) { _ = try? await body(server.service) }  // the request had left already
            throw .unreachable("crashed")
        }
        if dice.chance(rates.dropRequest) {
            trace("net \(name): \(what) request lost")
            throw .unreachable("request lost")
        }
        var answer = try await Self.answer(server.service, body)
        if dice.chance(rates.duplicate) {
            trace("net \(name): \(what) delivered twice")
            answer = try await Self.answer(server.service, body)
        }
        if dice.chance(rates.dropResponse) {
            trace("net \(name): \(what) answer lost")
            throw .unreachable("answer lost")
        }
        return answer
    }

    private static func answer<T: Sendable>(
        _ service: SyncService, _ body: @Sendable (SyncService) async throws -> T
    ) async throws(TransportError) -> T {
        do {
            return try await body(service)
        } catch let failure as APIFailure {
            throw TransportError(status: failure.kind.status, code: failure.kind.code, message: failure.message)
        } catch {
            throw .serverFailure("\(error)")
        }
    }

    private func grant(_ session: Session) -> SessionGrant {
        SessionGrant(
            memberID: session.memberID, deviceID: session.deviceID, cardNumber: session.cardNumber.digits,
            accessToken: session.accessToken, accessTokenExpiresAt: session.accessTokenExpiresAt,
            refreshToken: session.refreshToken, serverTime: session.serverTime)
    }
}
