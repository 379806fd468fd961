@preconcurrency public import Crypto
public import Foundation
public import LoyaltyCore
internal import LoyaltySQLite
internal import _CryptoExtras

/// Who is calling: a member's device, as its access token says and the store confirms.
public struct Credentials: Sendable, Hashable {
    /// The member the token is for.
    public var memberID: MemberID
    /// The device the token is for.
    public var deviceID: DeviceID

    /// The subject of a token for `deviceID` of `memberID`.
    public init(memberID: MemberID, deviceID: DeviceID) {
        self.memberID = memberID
        self.deviceID = deviceID
    }
}

/// Issues and checks tokens.
///
/// An access token is `base64url(v2.<key id>.<member>.<device>.<expires ms>) . base64url(HMAC-SHA256)`, signed
/// with the server's current key (kept in the data directory so tokens survive a restart). After a key rotation
/// the previous key still verifies the tokens it signed until they expire (``rotateKey(in:)``). Tokens of the
/// first format (`v1.`, no key id) are verified with either key. A refresh token is `<device>.<32 random bytes>`;
/// the store keeps only its SHA-256.
public struct TokenAuthority: Sendable {
    /// The signing keys by id: the current one, and the previous one after a rotation.
    private let keys: [String: [UInt8]]
    /// The id of the key new tokens are signed with.
    private let currentKeyID: String
    /// How long an access token is good for.
    public let accessLifetime: TimeSpan

    /// Creates an authority with a signing key (and the one it replaced, if the keys were rotated).
    public init(key: SymmetricKey, previous: SymmetricKey? = nil, accessLifetime: TimeSpan = .minutes(15)) {
        let current = key.withUnsafeBytes { Array($0) }
        var keys = [Self.keyID(current): current]
        if let previous {
            let bytes = previous.withUnsafeBytes { Array($0) }
            keys[Self.keyID(bytes)] = bytes
        }
        self.keys = keys
        self.currentKeyID = Self.keyID(current)
        self.accessLifetime = accessLifetime
    }

    /// The authority of a data directory: its current key (made on first use) and the previous one, if any.
    public static func load(in directory: URL, accessLifetime: TimeSpan = .minutes(15)) throws -> TokenAuthority {
        let key = try loadKey(in: directory)
        let previous = try readKey(directory.appendingPathComponent("signing.key.previous"))
        return TokenAuthority(key: key, previous: previous, accessLifetime: accessLifetime)
    }

    /// Makes a new signing key in `directory`; the current one becomes the previous one (replacing an older
    /// previous key). A server started afterwards signs with the new key and still accepts tokens of the previous
    /// one until they expire (15 minutes); tokens of a key older than that are refused (their devices refresh).
    public static func rotateKey(in directory: URL) throws {
        let current = directory.appendingPathComponent("signing.key")
        let previous = directory.appendingPathComponent("signing.key.previous")
        guard try readKey(current) != nil else {
            throw APIFailure(.internalError, "\(current.path) does not exist: a server makes it on its first start")
        }
        if FileManager.default.fileExists(atPath: previous.path) { try FileManager.default.removeItem(at: previous) }
        try FileManager.default.moveItem(at: current, to: previous)
        _ = try loadKey(in: directory)
    }

    /// A key's id: the first 8 bytes of its SHA-256, in hex (it says which key signed a token, not the key).
    static func keyID(_ key: [UInt8]) -> String {
        SHA256.hash(data: key).prefix(8).map { String(format: "%02x", $0) }.joined()
    }

    /// The key in `file`, or nil if there is none; a file that is not a private 32-byte key is an error.
    private static func readKey(_ file: URL) throws -> SymmetricKey? {
        guard let data = try? Data(contentsOf: file) else { return nil }
        guard data.count == 32 else {
            throw APIFailure(
                .internalError, "\(file.path) is not a signing key (32 bytes expected); remove it to make a new one")
        }
        if let mode = PrivateFiles.permissions(of: file.path), mode & 0o077 != 0 {
            throw APIFailure(
                .internalError,
                "\(file.path) may be read by others (mode \(String(mode, radix: 8))): anyone who read it can sign "
                    + "tokens; make it private (chmod 600) if no one did, or remove it to make a new key "
                    + "(every member signs in again)")
        }
        return SymmetricKey(data: data)
    }

    /// The signing keys kept in a data directory (current and previous), as bytes, without making one.
    static func keyBytes(in directory: URL) throws -> (current: Data?, previous: Data?) {
        func bytes(_ name: String) throws -> Data? {
            try readKey(directory.appendingPathComponent(name)).map { key in key.withUnsafeBytes { Data($0) } }
        }
        return (try bytes("signing.key"), try bytes("signing.key.previous"))
    }

    /// Loads the signing key from `directory/signing.key`, creating it (0600) on first use. A key that others than
    /// its owner may read is refused: whoever read it can sign tokens for any member.
    public static func loadKey(in directory: URL) throws -> SymmetricKey {
        let file = directory.appendingPathComponent("signing.key")
        if let key = try readKey(file) { return key }
        let key = SymmetricKey(size: .bits256)
        try PrivateFiles.create(at: file.path, contents: key.withUnsafeBytes { Data($0) })
        return key
    }

    /// A signed access token for a device, and when it expires.
    public func accessToken(for credentials: Credentials, now: Timestamp) -> (token: String, expiresAt: Timestamp) {
        let expiresAt = now.adding(accessLifetime)
        let payload = Data(
            "v2.\(currentKeyID).\(credentials.memberID).\(credentials.deviceID).\(expiresAt.millisecondsSince1970)".utf8
        )
        let mac = HMAC<SHA256>.authenticationCode(for: payload, using: SymmetricKey(data: keys[currentKeyID]!))
        return (payload.base64URL + "." + Data(mac).base64URL, expiresAt)
    }

    /// Checks an access token's signature (with the key its id names) and expiry.
    public func verify(accessToken token: String, now: Timestamp) throws(APIFailure) -> Credentials {
        let invalid = APIFailure(.unauthorized, "the access token is not valid: sign in again")
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, let payload = Data(base64URL: String(parts[0])),
            let mac = Data(base64URL: String(parts[1]))
        else { throw invalid }
        let fields = String(decoding: payload, as: UTF8.self).split(separator: ".", omittingEmptySubsequences: false)
        let candidates: [[UInt8]]
        let rest: ArraySlice<Substring>
        switch (fields.first, fields.count) {
        case ("v2", 5):
            guard let key = keys[String(fields[1])] else {
                // Signed with a key retired since: the device refreshes (refresh tokens are not signed).
                throw APIFailure(.tokenExpired, "the access token was signed with a retired key: refresh it")
            }
            (candidates, rest) = ([key], fields.dropFirst(2))
        case ("v1", 4): (candidates, rest) = (Array(keys.values), fields.dropFirst(1))
        default: throw invalid
        }
        guard
            candidates.contains(where: {
                HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: payload, using: SymmetricKey(data: $0))
            }), let expires = Int64(rest[rest.startIndex + 2])
        else { throw invalid }
        guard now.millisecondsSince1970 < expires else {
            throw APIFailure(.tokenExpired, "the access token expired: refresh it with the refresh token")
        }
        return Credentials(
            memberID: MemberID(String(rest[rest.startIndex])), deviceID: DeviceID(String(rest[rest.startIndex + 1])))
    }

    /// A new refresh token for a device and the hash the store keeps.
    public static func refreshToken(for device: DeviceID) -> (token: String, hash: [UInt8]) {
        let secret = SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) }
        let token = "\(device).\(secret.base64URL)"
        return (token, hash(refreshToken: token))
    }

    /// The stored form of a refresh token.
    public static func hash(refreshToken: String) -> [UInt8] { Array(SHA256.hash(data: Data(refreshToken.utf8))) }

    /// The device a refresh token names.
    public static func device(ofRefreshToken token: String) -> DeviceID? {
        guard let dot = token.lastIndex(of: "."), dot != token.startIndex else { return nil }
        return DeviceID(String(token[..<dot]))
    }
}

/// Compares two byte strings without leaking where they differ.
func constantTimeEqual(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
    guard lhs.count == rhs.count else { return false }
    var difference: UInt8 = 0
    for (left, right) in zip(lhs, rhs) { difference |= left ^ right }
    return difference == 0
}

extension Data {
    var base64URL: String {
        base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// Reads unpadded base64url. By bytes: Foundation's `replacingOccurrences` was a twentieth of an unchanged
    /// pull's time on the server (every device request checks a token).
    init?(base64URL text: String) {
        var base64 = Array(text.utf8)
        for index in base64.indices {
            switch base64[index] {
            case UInt8(ascii: "-"): base64[index] = UInt8(ascii: "+")
            case UInt8(ascii: "_"): base64[index] = UInt8(ascii: "/")
            case UInt8(ascii: "+"), UInt8(ascii: "/"), UInt8(ascii: "="): return nil  // not base64url's alphabet
            default: break
            }
        }
        base64 += repeatElement(UInt8(ascii: "="), count: (4 - base64.count % 4) % 4)
        self.init(base64Encoded: Data(base64))
    }
}
