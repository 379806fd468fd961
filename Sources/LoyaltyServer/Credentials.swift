@preconcurrency public import Crypto
public import Foundation
public import LoyaltyCore
internal import LoyaltySQLite
internal import _CryptoExtras

/// Who is calling: a member's device, as its access token says and the store confirms.
public struct Credentials: Sendable, Hashable {
    public var memberID: MemberID
    public var deviceID: DeviceID

    public init(memberID: MemberID, deviceID: DeviceID) {
        self.memberID = memberID
        self.deviceID = deviceID
    }
}

/// Issues and checks tokens.
///
/// An access token is `base64url(v1.<member>.<device>.<expires ms>) . base64url(HMAC-SHA256)`, signed with the
/// server's key (kept in the data directory so tokens survive a restart). A refresh token is
/// `<device>.<32 random bytes>`; the store keeps only its SHA-256.
public struct TokenAuthority: Sendable {
    private let keyBytes: [UInt8]
    private var key: SymmetricKey { SymmetricKey(data: keyBytes) }
    /// How long an access token is good for.
    public let accessLifetime: TimeSpan

    /// Creates an authority with a signing key.
    public init(key: SymmetricKey, accessLifetime: TimeSpan = .minutes(15)) {
        self.keyBytes = key.withUnsafeBytes { Array($0) }
        self.accessLifetime = accessLifetime
    }

    /// Loads the signing key from `directory/signing.key`, creating it (0600) on first use. A key that others than
    /// its owner may read is refused: whoever read it can sign tokens for any member.
    public static func loadKey(in directory: URL) throws -> SymmetricKey {
        let file = directory.appendingPathComponent("signing.key")
        if let data = try? Data(contentsOf: file) {
            guard data.count == 32 else {
                throw APIFailure(
                    .internalError, "\(file.path) is not a signing key (32 bytes expected); remove it to make a new one"
                )
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
        let key = SymmetricKey(size: .bits256)
        try PrivateFiles.create(at: file.path, contents: key.withUnsafeBytes { Data($0) })
        return key
    }

    /// A signed access token for a device, and when it expires.
    public func accessToken(for credentials: Credentials, now: Timestamp) -> (token: String, expiresAt: Timestamp) {
        let expiresAt = now.adding(accessLifetime)
        let payload = Data(
            "v1.\(credentials.memberID).\(credentials.deviceID).\(expiresAt.millisecondsSince1970)".utf8)
        let mac = HMAC<SHA256>.authenticationCode(for: payload, using: key)
        return (payload.base64URL + "." + Data(mac).base64URL, expiresAt)
    }

    /// Checks an access token's signature and expiry.
    public func verify(accessToken token: String, now: Timestamp) throws(APIFailure) -> Credentials {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, let payload = Data(base64URL: String(parts[0])),
            let mac = Data(base64URL: String(parts[1])),
            HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: payload, using: key)
        else { throw APIFailure(.unauthorized, "the access token is not valid: sign in again") }
        let fields = String(decoding: payload, as: UTF8.self).split(separator: ".", omittingEmptySubsequences: false)
        guard fields.count == 4, fields[0] == "v1", let expires = Int64(fields[3]) else {
            throw APIFailure(.unauthorized, "the access token is not valid: sign in again")
        }
        guard now.millisecondsSince1970 < expires else {
            throw APIFailure(.tokenExpired, "the access token expired: refresh it with the refresh token")
        }
        return Credentials(memberID: MemberID(String(fields[1])), deviceID: DeviceID(String(fields[2])))
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
