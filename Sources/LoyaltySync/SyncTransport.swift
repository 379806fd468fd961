public import Foundation
public import LoyaltyCore

/// What a device needs from the server. The engine depends only on this; ``HTTPSyncTransport`` is the real one
/// (the generated client over URLSession), and a simulation can put a faulty network in between.
public protocol SyncTransport: Sendable {
    /// Creates a member and this device.
    func enroll(
        _ registration: Registration, password: String, deviceName: String?
    ) async throws(TransportError) -> SessionGrant
    /// Adds this device to a member.
    func login(email: String, password: String, deviceName: String?) async throws(TransportError) -> SessionGrant
    /// Exchanges a refresh token for a new session.
    func refresh(refreshToken: String) async throws(TransportError) -> SessionGrant
    /// Pushes mutations.
    func push(_ request: PushRequest, accessToken: String) async throws(TransportError) -> PushResponse
    /// Pulls a page of changes.
    func pull(_ request: PullRequest, accessToken: String) async throws(TransportError) -> PullResponse
    /// Pulls a page of changes, telling `early` the page's cursor and whether more follow as soon as they are
    /// known, before the page is read whole, so that the next page can be asked for meanwhile. Only a hint: the
    /// page's own cursor is what counts. (A transport that cannot tell them early tells them once it has the page.)
    func pull(
        _ request: PullRequest, accessToken: String, early: @escaping @Sendable (Cursor, _ hasMore: Bool) -> Void
    ) async throws(TransportError) -> PullResponse
    /// The member's devices.
    func devices(accessToken: String) async throws(TransportError) -> [DeviceSummary]
    /// Revokes one of the member's devices.
    func revoke(device: DeviceID, accessToken: String) async throws(TransportError)
    /// Changes the member's password; the server signs every other device out.
    func changePassword(current: String, new: String, accessToken: String) async throws(TransportError)
    /// Signs every device of the member out, this one included.
    func signOutEverywhere(accessToken: String) async throws(TransportError)
    /// Everything the programme holds about the member, as the export's JSON document (docs/privacy.md).
    func exportData(accessToken: String) async throws(TransportError) -> Data
}

extension SyncTransport {
    /// A transport without accounts (a simulated network) refuses: only the HTTP transport changes passwords.
    public func changePassword(current: String, new: String, accessToken: String) async throws(TransportError) {
        throw .refused(status: 501, code: "not_supported", message: "this transport does not change passwords")
    }

    /// A transport without accounts refuses.
    public func exportData(accessToken: String) async throws(TransportError) -> Data {
        throw .refused(status: 501, code: "not_supported", message: "this transport does not export member data")
    }

    /// A transport without accounts refuses.
    public func signOutEverywhere(accessToken: String) async throws(TransportError) {
        throw .refused(status: 501, code: "not_supported", message: "this transport does not sign devices out")
    }

    /// A transport that cannot read a page's cursor early tells it once the whole page is read.
    public func pull(
        _ request: PullRequest, accessToken: String, early: @escaping @Sendable (Cursor, _ hasMore: Bool) -> Void
    ) async throws(TransportError) -> PullResponse {
        let response = try await pull(request, accessToken: accessToken)
        early(response.cursor, response.hasMore)
        return response
    }
}

/// A session from enrolment, sign-in or refresh.
public struct SessionGrant: Sendable, Hashable {
    /// The member signed in.
    public var memberID: MemberID
    /// The device signed in.
    public var deviceID: DeviceID
    /// The member's active card.
    public var cardNumber: String
    /// The access token for pushes and pulls (short-lived).
    public var accessToken: String
    /// When the access token expires.
    public var accessTokenExpiresAt: Timestamp
    /// The refresh token, exchanged for the next session (once).
    public var refreshToken: String
    /// The server's clock when it answered.
    public var serverTime: Timestamp

    /// Creates a `SessionGrant` from its parts.
    public init(
        memberID: MemberID, deviceID: DeviceID, cardNumber: String, accessToken: String,
        accessTokenExpiresAt: Timestamp,
        refreshToken: String, serverTime: Timestamp
    ) {
        self.memberID = memberID
        self.deviceID = deviceID
        self.cardNumber = cardNumber
        self.accessToken = accessToken
        self.accessTokenExpiresAt = accessTokenExpiresAt
        self.refreshToken = refreshToken
        self.serverTime = serverTime
    }
}

/// One of the member's devices.
public struct DeviceSummary: Sendable, Hashable {
    /// The device's id.
    public var id: DeviceID
    /// The name the member gave it.
    public var name: String
    /// When it signed in first.
    public var createdAt: Timestamp
    /// When it was signed out, if it was.
    public var revokedAt: Timestamp?
    /// When the server last heard from it.
    public var lastSeenAt: Timestamp?
    /// Whether it is the device asking.
    public var isCurrent: Bool

    /// Creates a `DeviceSummary` from its parts.
    public init(
        id: DeviceID, name: String, createdAt: Timestamp, revokedAt: Timestamp?, lastSeenAt: Timestamp?, isCurrent: Bool
    ) {
        self.id = id
        self.name = name
        self.createdAt = createdAt
        self.revokedAt = revokedAt
        self.lastSeenAt = lastSeenAt
        self.isCurrent = isCurrent
    }
}

/// Why a call to the server failed, in the terms the engine acts on: the package's error shape (a code, a message,
/// the underlying error as its cause) with the ``Kind`` of failure the sync planner decides on and, when the server
/// answered, its HTTP status.
public struct TransportError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What the engine does about it.
    public enum Kind: String, Sendable, Hashable {
        /// The server could not be reached (no network, refused, timed out). Retry later.
        case unreachable
        /// The access token expired: refresh once.
        case tokenExpired
        /// Credentials are wrong or no longer valid: sign in again.
        case unauthorized
        /// The device was revoked (by the member, a password change, a reused refresh token, the operator): wipe
        /// the member's data; the message says why.
        case deviceRevoked
        /// The server speaks another protocol version: update the app.
        case upgradeRequired
        /// The server refused the request (4xx); retrying the same request will not help.
        case refused
        /// The server failed (5xx). Retry later.
        case serverFailure
    }

    /// What the engine does about it.
    public var kind: Kind
    /// The server's error code when it answered one, else the kind's name.
    public var code: String
    /// What went wrong, in the server's words when it answered.
    public var message: String
    /// The HTTP status, when the server answered.
    public var status: Int?
    /// The error underneath (a `URLError`, a decoding error), for diagnosis.
    public var cause: (any Error)?

    /// Creates a transport error.
    public init(_ kind: Kind, code: String? = nil, _ message: String, status: Int? = nil, cause: (any Error)? = nil) {
        self.kind = kind
        self.code = code ?? kind.rawValue
        self.message = message
        self.status = status
        self.cause = cause
    }

    /// The server could not be reached.
    public static func unreachable(_ reason: String, cause: (any Error)? = nil) -> Self {
        Self(.unreachable, reason, cause: cause)
    }
    /// The access token expired.
    public static let tokenExpired = Self(.tokenExpired, code: "token_expired", "the session expired", status: 401)
    /// Credentials are wrong or no longer valid.
    public static func unauthorized(_ message: String) -> Self { Self(.unauthorized, message, status: 401) }
    /// The device was revoked, for the reason given.
    public static func deviceRevoked(_ reason: String) -> Self {
        Self(.deviceRevoked, code: "device_revoked", reason, status: 401)
    }
    /// The server speaks another protocol version.
    public static func upgradeRequired(_ message: String) -> Self { Self(.upgradeRequired, message, status: 426) }
    /// The server refused the request.
    public static func refused(status: Int, code: String, message: String) -> Self {
        Self(.refused, code: code, message, status: status)
    }
    /// The server failed.
    public static func serverFailure(_ message: String) -> Self { Self(.serverFailure, message) }

    /// The engine's view of a server's error answer: its HTTP status, its code and its message.
    public init(status: Int, code: String, message: String) {
        switch (status, code) {
        case (401, "token_expired"): self = .tokenExpired
        case (401, "device_revoked"): self = .deviceRevoked(message)
        case (401, _): self = Self(.unauthorized, code: code, message, status: status)
        case (426, _): self = Self(.upgradeRequired, code: code, message, status: status)
        case (500..., _): self = Self(.serverFailure, code: code, message, status: status)
        default: self = .refused(status: status, code: code, message: message)
        }
    }

    /// Whether trying again later may succeed.
    public var isTransient: Bool { kind == .unreachable || kind == .serverFailure }

    public var description: String {
        switch kind {
        case .unreachable: "the server cannot be reached (\(message))"
        case .serverFailure: "the server failed: \(message)"
        default: message
        }
    }

    /// Equal when kind, code, message and status are (the cause is for diagnosis, not for matching).
    public static func == (lhs: Self, rhs: Self) -> Bool {
        (lhs.kind, lhs.code, lhs.message, lhs.status) == (rhs.kind, rhs.code, rhs.message, rhs.status)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(kind)
        hasher.combine(code)
        hasher.combine(message)
        hasher.combine(status)
    }
}
