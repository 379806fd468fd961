public import Foundation
public import LoyaltyCore

/// The pull answer (`PullResponse` in docs/openapi.yaml), written and read by hand instead of through the
/// generated types, which carry an entity as a generic JSON object: the server decoded each stored entity, mapped
/// it to that object and encoded it again, and the device did the reverse before decoding it as an entity. Here
/// the server copies the stored bytes into the answer and the device decodes each entity once, as its kind. The
/// wire form is the contract's, byte for byte compatible with the generated client and server (`PullJSONTests`).
public enum PullJSON {
    /// The answer's JSON, with each entity's stored bytes as its `entity`.
    public static func encode(_ response: StoredPullResponse) throws -> Data {
        var out: [UInt8] = []
        out.reserveCapacity(256 + response.changes.reduce(0) { $0 + 96 + ($1.body?.count ?? 0) })
        out.append(contentsOf: #"{"changes":["#.utf8)
        for (index, change) in response.changes.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            out.append(contentsOf: #"{"version":"#.utf8)
            StreamingJSON.appendInteger(change.version, to: &out)
            out.append(contentsOf: #","kind":"#.utf8)
            appendString(change.key.kind.rawValue, to: &out)
            out.append(contentsOf: #","id":"#.utf8)
            appendString(change.key.id, to: &out)
            if let body = change.body {
                // A stored state is always a JSON object; anything else would make the answer unreadable.
                guard body.first(where: { !ByteReader.isWhitespace($0) }) == UInt8(ascii: "{") else {
                    throw LoyaltyError(
                        .malformed,
                        "the stored state of \(change.key.kind.rawValue) \(change.key.id) is not a JSON object")
                }
                out.append(contentsOf: #","deleted":false,"entity":"#.utf8)
                out += body
            } else {
                out.append(contentsOf: #","deleted":true"#.utf8)
            }
            out.append(UInt8(ascii: "}"))
        }
        out.append(contentsOf: #"],"cursor":"#.utf8)
        StreamingJSON.appendInteger(response.cursor.version, to: &out)
        out.append(contentsOf: #","hasMore":"#.utf8)
        out.append(contentsOf: (response.hasMore ? "true" : "false").utf8)
        out.append(contentsOf: #","reset":"#.utf8)
        out.append(contentsOf: (response.reset ? "true" : "false").utf8)
        out.append(contentsOf: #","lastProcessedSequence":"#.utf8)
        StreamingJSON.appendInteger(response.lastProcessedSequence, to: &out)
        out.append(contentsOf: #","serverTime":"#.utf8)
        appendString(try RFC3339DateTranscoder().encode(response.serverTime.wire), to: &out)
        out.append(contentsOf: #","serverStamp":"#.utf8)
        appendString(response.serverStamp.wire, to: &out)
        out.append(UInt8(ascii: "}"))
        return Data(out)
    }

    /// The cursor and `hasMore` of an answer in the shape the server writes (`…],"cursor":N,"hasMore":B,…`),
    /// found from its end without reading its changes; nil for any other shape. A hint for asking the next page
    /// early: the answer read whole is what counts.
    public static func peekCursor(_ data: Data) -> (cursor: Cursor, hasMore: Bool)? {
        let marker = Array(#"],"cursor":"#.utf8)
        return data.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) -> (cursor: Cursor, hasMore: Bool)? in
            // The fields after the changes take a few hundred bytes at most.
            var start = bytes.count - marker.count
            let stop = max(0, bytes.count - 1_024)
            while start >= stop, !bytes[start..<(start + marker.count)].elementsEqual(marker) { start -= 1 }
            guard start >= stop else { return nil }
            var reader = ByteReader(bytes: bytes)
            reader.index = start + marker.count
            guard let version = reader.integer(), version >= 0, reader.take(UInt8(ascii: ",")),
                reader.string() == "hasMore", reader.take(UInt8(ascii: ":")), let hasMore = reader.boolean()
            else { return nil }
            return (Cursor(version: UInt64(version)), hasMore)
        }
    }

    /// Reads an answer, decoding each entity once, as its kind: quickly in the shape the server writes
    /// (``decodeQuickly(_:)``), otherwise through Foundation's decoder. A change that is not a well-formed entity
    /// of its kind fails the whole page with an error naming it.
    /// The answer keeps each entity's bytes (``PullResponse/payloads``), for the device to store as they came.
    public static func decode(_ data: Data) throws -> PullResponse {
        if let response = decodeQuickly(data) { return response }
        return try decodeThroughFoundation(data)
    }

    /// Reads an answer with Foundation's decoder: any layout the contract allows, and errors that name the change.
    static func decodeThroughFoundation(_ data: Data) throws -> PullResponse {
        let wire = try JSONDecoder().decode(WirePull.self, from: data)
        let date = try RFC3339DateTranscoder().decode(wire.serverTime)
        var response = PullResponse(
            changes: wire.changes.map(\.change), cursor: Cursor(version: UInt64(max(wire.cursor, 0))),
            hasMore: wire.hasMore, reset: wire.reset,
            lastProcessedSequence: UInt64(max(wire.lastProcessedSequence, 0)), serverTime: Timestamp(wire: date),
            serverStamp: try HLCTimestamp(wire: wire.serverStamp, field: "serverStamp"))
        let upserts = response.changes.count { if case .upsert = $0.operation { true } else { false } }
        let ranges = data.withUnsafeBytes { entityRanges(in: $0) }
        if let ranges, ranges.count == upserts {
            var next = ranges.makeIterator()
            response.payloads = response.changes.map { change in
                guard case .upsert = change.operation, let range = next.next() else { return nil }
                return data[data.startIndex + range.lowerBound..<data.startIndex + range.upperBound]
            }
        }
        return response
    }

    /// Finds the byte range of each change's `entity` value in a well-formed answer (the decoder has checked it),
    /// in order; nil if the answer is not shaped as expected, and then the device encodes the entities itself.
    static func entityRanges(in bytes: UnsafeRawBufferPointer) -> [Range<Int>]? {
        var reader = ByteReader(bytes: bytes)
        var ranges: [Range<Int>] = []
        /// A key and its colon (keys here have no escapes); skipped leniently, as any layout is allowed here.
        func key() -> UnsafeRawBufferPointer.SubSequence? {
            reader.skipWhitespace()
            let start = reader.index + 1
            guard reader.index < bytes.count, bytes[reader.index] == UInt8(ascii: "\""), reader.skipString() else {
                return nil
            }
            let key = bytes[start..<reader.index - 1]
            return reader.take(UInt8(ascii: ":")) ? key : nil
        }
        guard reader.take(UInt8(ascii: "{")) else { return nil }
        while true {
            guard let name = key() else { return nil }
            if name.elementsEqual("changes".utf8) {
                guard reader.take(UInt8(ascii: "[")) else { return nil }
                if !reader.take(UInt8(ascii: "]")) {
                    repeat {
                        guard reader.take(UInt8(ascii: "{")) else { return nil }
                        repeat {
                            guard let field = key() else { return nil }
                            reader.skipWhitespace()
                            let start = reader.index
                            guard reader.skipValue() else { return nil }
                            if field.elementsEqual("entity".utf8) {
                                guard bytes[start] == UInt8(ascii: "{") else { return nil }
                                ranges.append(start..<reader.index)
                            }
                        } while reader.take(UInt8(ascii: ","))
                        guard reader.take(UInt8(ascii: "}")) else { return nil }
                    } while reader.take(UInt8(ascii: ","))
                    guard reader.take(UInt8(ascii: "]")) else { return nil }
                }
            } else {
                reader.skipWhitespace()
                guard reader.skipValue() else { return nil }
            }
            if reader.take(UInt8(ascii: ",")) { continue }
            return reader.take(UInt8(ascii: "}")) ? ranges : nil
        }
    }

    private struct WirePull: Decodable {
        let changes: [WireChange]
        let cursor: Int64
        let hasMore: Bool
        let reset: Bool
        let lastProcessedSequence: Int64
        let serverTime: String
        let serverStamp: String
    }

    private struct WireChange: Decodable {
        let change: Change

        enum CodingKeys: String, CodingKey { case version, kind, id, deleted, entity }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            let version = try container.decode(Int64.self, forKey: .version)
            let kindName = try container.decode(String.self, forKey: .kind)
            guard let kind = EntityKey.Kind(rawValue: kindName), version >= 0 else {
                throw LoyaltyError(.malformed, "change \(version) has an unknown kind '\(kindName)'")
            }
            let id = try container.decode(String.self, forKey: .id)
            if try container.decode(Bool.self, forKey: .deleted) {
                change = Change(version: UInt64(version), operation: .delete(EntityKey(kind, id)))
                return
            }
            guard container.contains(.entity) else { throw LoyaltyError(.malformed, "change \(version) has no entity") }
            let entity = try Entity.decode(kind: kind, from: try container.superDecoder(forKey: .entity))
            change = Change(version: UInt64(version), operation: .upsert(entity))
        }
    }

    /// Appends `text` as a JSON string: quotes, backslashes and control characters escaped, the rest as UTF-8.
    static func appendString(_ text: String, to out: inout [UInt8]) { StreamingJSON.appendString(text, to: &out) }
}

extension PullJSON {
    /// Reads a pull request: quickly in the contract's plain shape (``decodeRequestQuickly(_:defaultLimit:)``),
    /// otherwise through the generated types, whose errors name what is wrong. `defaultLimit` when it names none.
    public static func decodeRequest(_ data: Data, defaultLimit: Int) throws -> PullRequest {
        if let request = decodeRequestQuickly(data, defaultLimit: defaultLimit) { return request }
        return try PullRequest(
            wire: JSONDecoder().decode(Components.Schemas.PullRequest.self, from: data), defaultLimit: defaultLimit)
    }

    /// Reads a pull request without Foundation's decoder (a fifth of an unchanged pull's work on the server), or nil
    /// at anything it does not expect (an escaped string, a null, an unknown field, a negative number): the caller
    /// then reads it through the generated types. It never accepts what they would refuse, nor reads a value
    /// differently.
    public static func decodeRequestQuickly(_ data: Data, defaultLimit: Int) -> PullRequest? {
        data.withUnsafeBytes { buffer -> PullRequest? in
            var reader = ByteReader(bytes: buffer)
            var deviceID: String?
            var cursor: Int64?
            var limit: Int?
            var allowance: Components.Schemas.AllowanceRequest?
            let read = reader.object { key, reader in
                switch key {
                case "deviceID": return reader.string(into: &deviceID)
                case "cursor": return reader.integer(into: &cursor)
                case "limit": return reader.integer(into: &limit)
                case "allowance":
                    var release: Int?
                    var through: Int64?
                    let read = reader.object { key, reader in
                        switch key {
                        case "release": return reader.integer(into: &release)
                        case "through": return reader.integer(into: &through)
                        default: return false
                        }
                    }
                    guard read, let through else { return false }
                    allowance = .init(release: release, through: through)
                    return true
                default: return false
                }
            }
            guard read, reader.atEnd, let deviceID, let cursor else { return nil }
            // The generated types' values, checked by the same mapping as theirs (a refusal is theirs to name).
            return try? PullRequest(
                wire: .init(deviceID: deviceID, cursor: cursor, limit: limit, allowance: allowance),
                defaultLimit: defaultLimit)
        }
    }
}
