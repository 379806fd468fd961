internal import Foundation
internal import LoyaltyCore

#if canImport(Glibc)
internal import Glibc
#elseif canImport(Darwin)
internal import Darwin
#endif

/// The session's tokens, kept apart from the member's data.
public struct DeviceSecrets: Codable, Sendable, Hashable {
    public var accessToken: String
    public var refreshToken: String

    public init(accessToken: String, refreshToken: String) {
        self.accessToken = accessToken
        self.refreshToken = refreshToken
    }
}

/// Where a device keeps its tokens (docs/privacy.md, "What a device leaves behind"): a mobile app plugs in the
/// platform's Keychain or Keystore; the terminal client keeps them in an owner-only file beside the store
/// (``FileSecretStore``). The store never writes a token into its database.
public protocol SecretStore: Sendable {
    /// The tokens kept, if any.
    func read() throws -> DeviceSecrets?
    /// Keeps the tokens, or forgets them (`nil`: sign-out, a wipe).
    func write(_ secrets: DeviceSecrets?) throws
}

/// Tokens in a file readable by its owner only (0600), replaced whole on each write (a new file renamed over the
/// old one), removed when forgotten.
public struct FileSecretStore: SecretStore {
    public let path: String

    /// The system's write(2) (this type has a `write` of its own).
    private static func systemWrite(_ descriptor: Int32, _ bytes: UnsafeRawPointer?, _ count: Int) -> Int {
        #if canImport(Glibc)
        Glibc.write(descriptor, bytes, count)
        #else
        Darwin.write(descriptor, bytes, count)
        #endif
    }

    public init(path: String) { self.path = path }

    public func read() throws -> DeviceSecrets? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        do {
            return try JSONDecoder().decode(DeviceSecrets.self, from: data)
        } catch {
            throw LoyaltyError(
                .unusableStore, "\(path) does not hold this device's tokens: sign in again", cause: error)
        }
    }

    public func write(_ secrets: DeviceSecrets?) throws {
        guard let secrets else {
            if unlink(path) != 0 && errno != ENOENT {
                throw LoyaltyError(.unusableStore, "cannot remove \(path): \(String(cString: strerror(errno)))")
            }
            return
        }
        let data = try JSONEncoder().encode(secrets)
        let temporary = path + ".new"
        unlink(temporary)
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw LoyaltyError(.unusableStore, "cannot create \(temporary): \(String(cString: strerror(errno)))")
        }
        let written = data.withUnsafeBytes { Self.systemWrite(descriptor, $0.baseAddress, $0.count) }
        let synced = fsync(descriptor) == 0
        close(descriptor)
        guard written == data.count, synced, rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw LoyaltyError(.unusableStore, "cannot write \(path): \(reason)")
        }
    }
}
