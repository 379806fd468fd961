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
            out.append(contentsOf: String(change.version).utf8)
            out.append(contentsOf: #","kind":"#.utf8)
            appendString(change.key.kind.rawValue, to: &out)
            out.append(contentsOf: #","id":"#.utf8)
            appendString(change.key.id, to: &out)
            if let body = change.body {
                // A stored state is always a JSON object; anything else would make the answer unreadable.
                guard body.first(where: { !Self.isWhitespace($0) }) == UInt8(ascii: "{") else {
                    throw WireError(
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
        out.append(contentsOf: String(response.cursor.version).utf8)
        out.append(contentsOf: #","hasMore":"#.utf8)
        out.append(contentsOf: (response.hasMore ? "true" : "false").utf8)
        out.append(contentsOf: #","reset":"#.utf8)
        out.append(contentsOf: (response.reset ? "true" : "false").utf8)
        out.append(contentsOf: #","lastProcessedSequence":"#.utf8)
        out.append(contentsOf: String(response.lastProcessedSequence).utf8)
        out.append(contentsOf: #","serverTime":"#.utf8)
        appendString(try RFC3339DateTranscoder().encode(response.serverTime.wire), to: &out)
        out.append(contentsOf: #","serverStamp":"#.utf8)
        appendString(response.serverStamp.wire, to: &out)
        out.append(UInt8(ascii: "}"))
        return Data(out)
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
        let ranges = data.withUnsafeBytes { bytes in
            var scanner = EntityScanner(bytes: bytes)
            return scanner.entityRanges()
        }
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
    struct EntityScanner {
        let bytes: UnsafeRawBufferPointer
        var index = 0

        init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

        mutating func entityRanges() -> [Range<Int>]? {
            var ranges: [Range<Int>] = []
            guard take(UInt8(ascii: "{")) else { return nil }
            while true {
                guard let key = key() else { return nil }
                if key.elementsEqual("changes".utf8) {
                    guard take(UInt8(ascii: "[")) else { return nil }
                    if !take(UInt8(ascii: "]")) {
                        repeat {
                            guard take(UInt8(ascii: "{")) else { return nil }
                            repeat {
                                guard let field = self.key() else { return nil }
                                skipWhitespace()
                                let start = index
                                guard skipValue() else { return nil }
                                if field.elementsEqual("entity".utf8) {
                                    guard bytes[start] == UInt8(ascii: "{") else { return nil }
                                    ranges.append(start..<index)
                                }
                            } while take(UInt8(ascii: ","))
                            guard take(UInt8(ascii: "}")) else { return nil }
                        } while take(UInt8(ascii: ","))
                        guard take(UInt8(ascii: "]")) else { return nil }
                    }
                } else {
                    skipWhitespace()
                    guard skipValue() else { return nil }
                }
                if take(UInt8(ascii: ",")) { continue }
                return take(UInt8(ascii: "}")) ? ranges : nil
            }
        }

        /// A key and its colon; the key's raw bytes (keys here have no escapes).
        mutating func key() -> UnsafeRawBufferPointer.SubSequence? {
            skipWhitespace()
            let start = index + 1
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\""), skipString() else { return nil }
            let key = bytes[start..<index - 1]
            return take(UInt8(ascii: ":")) ? key : nil
        }

        mutating func take(_ byte: UInt8) -> Bool {
            skipWhitespace()
            guard index < bytes.count, bytes[index] == byte else { return false }
            index += 1
            return true
        }

        mutating func skipWhitespace() {
            while index < bytes.count, PullJSON.isWhitespace(bytes[index]) { index += 1 }
        }

        /// Past a string whose opening quote is at `index`.
        mutating func skipString() -> Bool {
            index += 1
            while index < bytes.count {
                switch bytes[index] {
                case UInt8(ascii: "\\"): index += 2
                case UInt8(ascii: "\""):
                    index += 1
                    return true
                default: index += 1
                }
            }
            return false
        }

        /// Past one value: an object or array (by depth, strings skipped whole), a string, or a scalar.
        mutating func skipValue() -> Bool {
            guard index < bytes.count else { return false }
            switch bytes[index] {
            case UInt8(ascii: "\""): return skipString()
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                var depth = 0
                while index < bytes.count {
                    switch bytes[index] {
                    case UInt8(ascii: "\""):
                        guard skipString() else { return false }
                        continue
                    case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
                    case UInt8(ascii: "}"), UInt8(ascii: "]"):
                        depth -= 1
                        if depth == 0 {
                            index += 1
                            return true
                        }
                    default: break
                    }
                    index += 1
                }
                return false
            default:
                let start = index
                scalar: while index < bytes.count {
                    switch bytes[index] {
                    case UInt8(ascii: ","), UInt8(ascii: "}"), UInt8(ascii: "]"): break scalar
                    case let byte where PullJSON.isWhitespace(byte): break scalar
                    default: index += 1
                    }
                }
                return index > start
            }
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
                throw WireError("change \(version) has an unknown kind '\(kindName)'")
            }
            let id = try container.decode(String.self, forKey: .id)
            if try container.decode(Bool.self, forKey: .deleted) {
                change = Change(version: UInt64(version), operation: .delete(EntityKey(kind, id)))
                return
            }
            guard container.contains(.entity) else { throw WireError("change \(version) has no entity") }
            let entity = try Entity.decode(kind: kind, from: try container.superDecoder(forKey: .entity))
            change = Change(version: UInt64(version), operation: .upsert(entity))
        }
    }

    static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09
    }

    /// Appends `text` as a JSON string: quotes, backslashes and control characters escaped, the rest as UTF-8.
    static func appendString(_ text: String, to out: inout [UInt8]) { StreamingJSON.appendString(text, to: &out) }
}
