public import Foundation

/// A mutation as a device sends it: who, in what order, when (by its hybrid logical clock and its wall clock),
/// and what.
public struct MutationEnvelope: Hashable, Sendable, Codable {
    /// The device that recorded it.
    public var deviceID: DeviceID
    /// The device's sequence number for it: 1, 2, 3, ... with no gaps and no repeats, ever.
    public var sequence: UInt64
    /// Its hybrid-logical-clock stamp.
    public var stamp: HLCTimestamp
    /// The device's wall time when the member acted, corrected by the device's last measured clock offset.
    public var deviceTime: Timestamp
    /// What the member did.
    public var mutation: Mutation

    /// Creates an envelope.
    public init(deviceID: DeviceID, sequence: UInt64, stamp: HLCTimestamp, deviceTime: Timestamp, mutation: Mutation) {
        self.deviceID = deviceID
        self.sequence = sequence
        self.stamp = stamp
        self.deviceTime = deviceTime
        self.mutation = mutation
    }

    /// A stable id for what this mutation creates, e.g. `dev-1:7`: the voucher of a redemption has this id on
    /// the device that made it offline and on the server that confirmed it.
    public var mutationID: String { "\(deviceID):\(sequence)" }
}

/// How the server decided one mutation.
public enum MutationStatus: Hashable, Sendable, Codable {
    /// Applied as asked.
    case applied
    /// Applied, but the outcome differs from what the device showed (for example, a profile edit that lost to
    /// a later one): the message says how.
    case adjusted(message: String)
    /// Not applied: the reason says why. A rejected mutation is still processed: it never blocks the queue.
    case rejected(MutationRejection)
}

/// The server's answer for one mutation of a push; kept for a retention window so a retried push gets it again.
public struct MutationResult: Hashable, Sendable, Codable {
    /// The mutation's sequence number.
    public var sequence: UInt64
    /// How it was decided.
    public var status: MutationStatus

    /// Creates a result.
    public init(sequence: UInt64, status: MutationStatus) {
        self.sequence = sequence
        self.status = status
    }
}

/// A position in a member's change feed: every change with a higher server version comes after it.
public struct Cursor: Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    /// The server version of the last change seen; 0 before the first pull.
    public var version: UInt64

    /// The position before every change.
    public static let start = Cursor(version: 0)

    /// Creates a cursor.
    public init(version: UInt64) {
        self.version = version
    }

    public init(from decoder: any Decoder) throws {
        self.version = try decoder.singleValueContainer().decode(UInt64.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(version)
    }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.version < rhs.version }

    public var description: String { "\(version)" }
}

/// One entry of the change feed.
public struct Change: Hashable, Sendable, Codable {
    /// What the change does.
    public enum Operation: Hashable, Sendable, Codable {
        /// The entity's whole new state.
        case upsert(Entity)
        /// The entity is gone.
        case delete(EntityKey)
    }

    /// The server version of this change; strictly increasing along a member's feed.
    public var version: UInt64
    /// What the change does.
    public var operation: Operation

    /// Creates a change.
    public init(version: UInt64, operation: Operation) {
        self.version = version
        self.operation = operation
    }

    /// The key of the entity changed.
    public var key: EntityKey {
        switch operation {
        case .upsert(let entity): entity.key
        case .delete(let key): key
        }
    }
}

/// A device's push: mutations in sequence order.
public struct PushRequest: Hashable, Sendable, Codable {
    /// The pushing device.
    public var deviceID: DeviceID
    /// Mutations in increasing sequence order.
    public var mutations: [MutationEnvelope]

    /// Creates a push.
    public init(deviceID: DeviceID, mutations: [MutationEnvelope]) {
        self.deviceID = deviceID
        self.mutations = mutations
    }
}

/// The answer to a push: one result per mutation, the device's last applied sequence number and server time.
public struct PushResponse: Hashable, Sendable, Codable {
    /// One result for every mutation of the push, in order.
    public var results: [MutationResult]
    /// The highest sequence number of this device the server has processed.
    public var lastProcessedSequence: UInt64
    /// The server's clock when it answered (for the device's clock offset).
    public var serverTime: Timestamp
    /// The server's clock stamp (so that later device stamps follow everything the server has seen).
    public var serverStamp: HLCTimestamp

    /// Creates a push response.
    public init(
        results: [MutationResult], lastProcessedSequence: UInt64, serverTime: Timestamp, serverStamp: HLCTimestamp
    ) {
        self.results = results
        self.lastProcessedSequence = lastProcessedSequence
        self.serverTime = serverTime
        self.serverStamp = serverStamp
    }
}

/// A device's pull: changes after a cursor, at most `limit` of them.
public struct PullRequest: Hashable, Sendable, Codable {
    /// The pulling device.
    public var deviceID: DeviceID
    /// Where the device is in the feed.
    public var cursor: Cursor
    /// How many changes the device wants at most (the server may send fewer).
    public var limit: Int
    /// What the device asks of its allowance (a first one, or a fresh one for the one it gives back); nil asks
    /// nothing.
    public var allowance: AllowanceRequest?

    /// Creates a pull.
    public init(deviceID: DeviceID, cursor: Cursor, limit: Int, allowance: AllowanceRequest? = nil) {
        self.deviceID = deviceID
        self.cursor = cursor
        self.limit = limit
        self.allowance = allowance
    }
}

/// The answer to a pull: one page of changes, or a reset.
public struct PullResponse: Hashable, Sendable, Codable {
    /// Changes after the cursor, in version order. After a reset, the first page of the whole state.
    public var changes: [Change]
    /// The cursor to send next.
    public var cursor: Cursor
    /// Whether more changes follow.
    public var hasMore: Bool
    /// True when the device's cursor is older than the feed keeps: drop confirmed state, keep the outbox,
    /// and rebuild from these pages.
    public var reset: Bool
    /// The highest sequence number of this device the server has processed.
    public var lastProcessedSequence: UInt64
    /// The server's clock when it answered.
    public var serverTime: Timestamp
    /// The server's clock stamp.
    public var serverStamp: HLCTimestamp
    /// The JSON each upserted entity arrived in, in the order of `changes` (nil for a deletion), when the transport
    /// kept it; empty otherwise. A device stores these bytes instead of encoding the entity again. Not part of the
    /// value: two responses with the same changes are equal whatever bytes they came in.
    public var payloads: [Data?] = []

    private enum CodingKeys: String, CodingKey {
        case changes, cursor, hasMore, reset, lastProcessedSequence, serverTime, serverStamp
    }

    /// Creates a pull response.
    public init(
        changes: [Change], cursor: Cursor, hasMore: Bool, reset: Bool, lastProcessedSequence: UInt64,
        serverTime: Timestamp, serverStamp: HLCTimestamp
    ) {
        self.changes = changes
        self.cursor = cursor
        self.hasMore = hasMore
        self.reset = reset
        self.lastProcessedSequence = lastProcessedSequence
        self.serverTime = serverTime
        self.serverStamp = serverStamp
    }

    /// The JSON to store for change `index`: the bytes it arrived in, or the entity encoded again.
    public func payloadJSON(at index: Int) throws -> Data? {
        if payloads.count == changes.count, let payload = payloads[index] { return payload }
        guard case .upsert(let entity) = changes[index].operation else { return nil }
        return try entity.payloadJSON()
    }

    public static func == (lhs: PullResponse, rhs: PullResponse) -> Bool {
        lhs.changes == rhs.changes && lhs.cursor == rhs.cursor && lhs.hasMore == rhs.hasMore && lhs.reset == rhs.reset
            && lhs.lastProcessedSequence == rhs.lastProcessedSequence && lhs.serverTime == rhs.serverTime
            && lhs.serverStamp == rhs.serverStamp
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(changes)
        hasher.combine(cursor)
        hasher.combine(lastProcessedSequence)
    }
}

/// A change as the feed stores it: the entity's state as the JSON it is kept and sent in, not decoded.
///
/// A pull answer is written from these bytes as they are, so no entity is decoded and encoded again on the way.
public struct StoredChange: Sendable, Hashable {
    /// The feed version.
    public var version: UInt64
    /// What changed.
    public var key: EntityKey
    /// The entity's state (``Entity/payloadJSON()``), or nil for a deletion.
    public var body: Data?

    /// Creates a stored change.
    public init(version: UInt64, key: EntityKey, body: Data?) {
        self.version = version
        self.key = key
        self.body = body
    }

    /// The change, decoded.
    public func decoded() throws -> Change {
        guard let body else { return Change(version: version, operation: .delete(key)) }
        return Change(version: version, operation: .upsert(try Entity.decode(kind: key.kind, json: body)))
    }
}

/// A pull's answer with its changes as stored (``StoredChange``): ``PullResponse`` before decoding the entities.
public struct StoredPullResponse: Sendable, Hashable {
    /// Changes after the cursor, as stored.
    public var changes: [StoredChange]
    public var cursor: Cursor
    public var hasMore: Bool
    public var reset: Bool
    public var lastProcessedSequence: UInt64
    public var serverTime: Timestamp
    public var serverStamp: HLCTimestamp

    /// Creates an answer.
    public init(
        changes: [StoredChange], cursor: Cursor, hasMore: Bool, reset: Bool, lastProcessedSequence: UInt64,
        serverTime: Timestamp, serverStamp: HLCTimestamp
    ) {
        self.changes = changes
        self.cursor = cursor
        self.hasMore = hasMore
        self.reset = reset
        self.lastProcessedSequence = lastProcessedSequence
        self.serverTime = serverTime
        self.serverStamp = serverStamp
    }

    /// The answer with its entities decoded (and their stored bytes kept as its ``PullResponse/payloads``).
    public func decoded() throws -> PullResponse {
        var response = PullResponse(
            changes: try changes.map { try $0.decoded() }, cursor: cursor, hasMore: hasMore, reset: reset,
            lastProcessedSequence: lastProcessedSequence, serverTime: serverTime, serverStamp: serverStamp)
        response.payloads = changes.map(\.body)
        return response
    }
}
