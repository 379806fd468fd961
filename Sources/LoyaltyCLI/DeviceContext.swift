internal import Foundation
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
            // The owner alone may enter it: the store in it holds the member's refresh token.
            if !FileManager.default.fileExists(atPath: directory.path) {
                try FileManager.default.createDirectory(
                    at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            } else if let mode = try FileManager.default.attributesOfItem(atPath: directory.path)[.posixPermissions]
                as? Int, mode & 0o077 != 0
            {
                // Said, not changed: the directory may be shared on purpose; the files in it stay owner-only.
                FileHandle.standardError.write(
                    Data(
                        ("warning: the device directory \(directory.path) can be entered by other users (mode "
                            + "\(String(mode, radix: 8))); it holds the member's data and tokens: chmod 700 it\n")
                            .utf8))
            }
        } catch {
            throw LoyaltyError(
                "device_directory",
                "the device directory \(directory.path) cannot be created: \(error.localizedDescription)")
        }
        do {
            store = try DeviceStore(path: directory.appendingPathComponent("device.sqlite").path)
        } catch let error as LoyaltyError {
            throw LoyaltyError("device_store", error.message)
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
            throw LoyaltyError(
                "not_signed_in", "this device is not signed in: run 'loyalty enroll' or 'loyalty login' first")
        }
        let skew = self.skew
        let flag = file("network")
        // While the network is off, every call fails as in airplane mode.
        let network = InterposedTransport(HTTPSyncTransport(serverURL: url)) { _ throws(TransportError) in
            let state = try? String(contentsOf: flag, encoding: .utf8)
            if state?.trimmingCharacters(in: .whitespacesAndNewlines) == "off" {
                throw .unreachable("the device's network is off ('loyalty network on' turns it back on)")
            }
        }
        return SyncEngine(
            store: store, transport: network, policy: SyncPolicy(retries: 0),
            wallClock: { Timestamp(Date()).adding(skew) })
    }

    private func file(_ name: String) -> URL { directory.appendingPathComponent(name) }
}
