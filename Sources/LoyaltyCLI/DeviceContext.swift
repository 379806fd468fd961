public import Foundation
internal import LoyaltyCore
internal import LoyaltyStore
internal import LoyaltySync

/// One simulated device: a directory holding its store (`device.sqlite`), whether its network is on
/// (`network`), and how wrong its clock is (`clock-skew`).
struct DeviceContext: Sendable {
    let directory: URL
    let store: DeviceStore

    /// Opens the device in `directory` (created if missing).
    init(directory: URL) throws {
        self.directory = directory
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw CLIError(
                "device_directory",
                "the device directory \(directory.path) cannot be created: \(error.localizedDescription)")
        }
        do {
            store = try DeviceStore(path: directory.appendingPathComponent("device.sqlite").path)
        } catch let error as DeviceStoreError {
            throw CLIError("device_store", error.message)
        }
    }

    /// Whether the simulated network is on (airplane mode off).
    var isOnline: Bool {
        (try? String(contentsOf: file("network"), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines))
            != "off"
    }

    func setOnline(_ online: Bool) throws {
        try (online ? "on" : "off").write(to: file("network"), atomically: true, encoding: .utf8)
    }

    /// How far the simulated device clock is off.
    var skew: TimeSpan {
        let text = (try? String(contentsOf: file("clock-skew"), encoding: .utf8))?.trimmingCharacters(
            in: .whitespacesAndNewlines)
        return text.flatMap(TimeSpan.init(parsing:)) ?? .zero
    }

    func setSkew(_ skew: TimeSpan) throws {
        try skew.description.write(to: file("clock-skew"), atomically: true, encoding: .utf8)
    }

    /// The device's (possibly wrong) clock.
    var now: Timestamp { Timestamp(Date()).adding(skew) }

    /// A sync engine for this device: its server, through the simulated network switch.
    func engine(serverURL: URL? = nil) throws -> SyncEngine {
        let stored = try store.identity().flatMap { URL(string: $0.serverURL) }
        guard let url = serverURL ?? stored else {
            throw CLIError(
                "not_signed_in", "this device is not signed in: run 'loyalty enroll' or 'loyalty login' first")
        }
        let skew = self.skew
        return SyncEngine(
            store: store, transport: NetworkSwitch(base: HTTPSyncTransport(serverURL: url), directory: directory),
            policy: SyncPolicy(retries: 0), wallClock: { Timestamp(Date()).adding(skew) })
    }

    private func file(_ name: String) -> URL { directory.appendingPathComponent(name) }
}

/// The real transport behind a switch: while the device's network is off, every call fails as in airplane mode.
struct NetworkSwitch: SyncTransport {
    let base: HTTPSyncTransport
    let directory: URL

    private func check() throws(TransportError) {
        let flag = try? String(contentsOf: directory.appendingPathComponent("network"), encoding: .utf8)
        if flag?.trimmingCharacters(in: .whitespacesAndNewlines) == "off" {
            throw .unreachable("the device's network is off ('loyalty network on' turns it back on)")
        }
    }

    func enroll(
        _ registration: Registration, password: String, deviceName: String?
    ) async throws(TransportError) -> SessionGrant {
        try check()
        return try await base.enroll(registration, password: password, deviceName: deviceName)
    }
    func login(email: String, password: String, deviceName: String?) async throws(TransportError) -> SessionGrant {
        try check()
        return try await base.login(email: email, password: password, deviceName: deviceName)
    }
    func refresh(refreshToken: String) async throws(TransportError) -> SessionGrant {
        try check()
        return try await base.refresh(refreshToken: refreshToken)
    }
    func push(_ request: PushRequest, accessToken: String) async throws(TransportError) -> PushResponse {
        try check()
        return try await base.push(request, accessToken: accessToken)
    }
    func pull(_ request: PullRequest, accessToken: String) async throws(TransportError) -> PullResponse {
        try check()
        return try await base.pull(request, accessToken: accessToken)
    }
    func devices(accessToken: String) async throws(TransportError) -> [DeviceSummary] {
        try check()
        return try await base.devices(accessToken: accessToken)
    }
    func revoke(device: DeviceID, accessToken: String) async throws(TransportError) {
        try check()
        try await base.revoke(device: device, accessToken: accessToken)
    }
}
