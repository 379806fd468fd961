public import LoyaltyCore

/// Who this device is on the server: written at enrolment or sign-in, replaced at token refresh.
public struct DeviceIdentity: Sendable, Hashable, Codable {
    /// The server's base URL.
    public var serverURL: String
    public var memberID: MemberID
    public var deviceID: DeviceID
    /// The card number the server issued (the card's full state arrives with the first pull).
    public var cardNumber: String
    public var accessToken: String
    public var accessTokenExpiresAt: Timestamp
    public var refreshToken: String

    /// Creates a `DeviceIdentity` from its parts.
    public init(
        serverURL: String, memberID: MemberID, deviceID: DeviceID, cardNumber: String, accessToken: String,
        accessTokenExpiresAt: Timestamp, refreshToken: String
    ) {
        self.serverURL = serverURL
        self.memberID = memberID
        self.deviceID = deviceID
        self.cardNumber = cardNumber
        self.accessToken = accessToken
        self.accessTokenExpiresAt = accessTokenExpiresAt
        self.refreshToken = refreshToken
    }
}

/// Whether the device can sync at all.
public enum DeviceCondition: String, Sendable, Hashable, Codable {
    /// Signed in and syncing normally.
    case ready
    /// Never signed in, or signed out (a refresh failed): sign in again. Data and outbox are kept.
    case signedOut
    /// The server speaks a newer protocol: update the app. Data and outbox are kept.
    case upgradeRequired
}

/// Where syncing stands, for a UI to show.
public struct SyncStatus: Sendable, Hashable {
    /// Whether the device can sync.
    public var condition: DeviceCondition
    /// Mutations not yet decided by the server.
    public var pending: Int
    /// Notices not yet read.
    public var unreadNotices: Int
    /// When the last sync completed.
    public var lastSyncAt: Timestamp?
    /// The last sync attempt's error, if it failed.
    public var lastError: String?
    /// When the oldest undecided mutation was made: a stuck queue shows as an old date here.
    public var oldestPendingAt: Timestamp?
    /// The feed position.
    public var cursor: Cursor
    /// The device clock's measured offset to the server.
    public var clockOffset: ClockOffset
}

/// A member-readable record of something the server decided differently from what the device showed.
public struct Notice: Sendable, Hashable, Codable, Identifiable {
    /// What kind of notice.
    public enum Kind: String, Sendable, Hashable, Codable {
        /// A mutation was refused; its optimistic effect was undone.
        case rejected
        /// A mutation was applied differently from what the device showed.
        case adjusted
        /// Another device's later change replaced one made here.
        case conflict
        /// The device's copy was rebuilt from the server (it was away longer than the server keeps changes).
        case reset
    }

    /// The notice's id (derived from what it is about, so a notice is never stored twice).
    public var id: String
    /// What kind of notice it is.
    public var kind: Notice.Kind
    /// What happened, why, and what was restored.
    public var message: String
    /// The sequence number of the mutation concerned.
    public var sequence: UInt64?
    /// The kind of that mutation (`redeemReward`, ...).
    public var mutationKind: String?
    /// When the device learned it.
    public var createdAt: Timestamp
    /// Whether the member has seen it.
    public var isRead: Bool

    /// Creates a `Notice` from its parts.
    public init(
        id: String, kind: Notice.Kind, message: String, sequence: UInt64?, mutationKind: String?, createdAt: Timestamp,
        isRead: Bool = false
    ) {
        self.id = id
        self.kind = kind
        self.message = message
        self.sequence = sequence
        self.mutationKind = mutationKind
        self.createdAt = createdAt
        self.isRead = isRead
    }
}

/// A mutation waiting in the outbox.
public struct PendingMutation: Sendable, Hashable {
    /// The mutation as it is sent.
    public var envelope: MutationEnvelope
    /// The server's result, once known; the mutation leaves the outbox when the pulled state covers it.
    public var result: MutationResult?
    public var createdAt: Timestamp
    /// True for a redemption the device's allowance covered when it was made: the server will accept it.
    public var guaranteed: Bool = false
}
