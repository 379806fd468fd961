internal import Foundation
internal import LoyaltyCore

extension PullJSON {
    /// Reads an answer in the shape the server writes without Foundation's decoder.
    ///
    /// The envelope and each change's fields are read byte by byte, lots and ledger entries (nearly every row of a
    /// large member) field by field, and other entities through their `Codable` conformance.
    ///
    /// Anything it does not expect (an escaped string, a fraction, an unknown field, a malformed value) makes it
    /// give up and return nil: ``decode(_:)`` then reads the answer with Foundation's decoder, which accepts what
    /// it should and names what is wrong. It never accepts what that decoder would refuse, nor reads a value
    /// differently (`PullJSONTests` hold them to each other).
    static func decodeQuickly(_ data: Data) -> PullResponse? {
        data.withUnsafeBytes { buffer -> PullResponse? in
            var reader = ByteReader(bytes: buffer)
            var changes: [Change] = []
            var payloads: [Data?] = []
            var cursor: Int64?
            var hasMore: Bool?
            var reset: Bool?
            var lastProcessed: Int64?
            var serverTime: String?
            var serverStamp: String?
            let read = reader.object { key, reader in
                switch key {
                case "changes":
                    return reader.array { reader in
                        guard let (change, payload) = reader.change(in: data) else { return false }
                        changes.append(change)
                        payloads.append(payload)
                        return true
                    }
                case "cursor": return reader.integer(into: &cursor)
                case "hasMore": return reader.boolean(into: &hasMore)
                case "reset": return reader.boolean(into: &reset)
                case "lastProcessedSequence": return reader.integer(into: &lastProcessed)
                case "serverTime": return reader.string(into: &serverTime)
                case "serverStamp": return reader.string(into: &serverStamp)
                default: return false
                }
            }
            guard read, reader.atEnd, let cursor, cursor >= 0, let hasMore, let reset, let lastProcessed,
                lastProcessed >= 0, let serverTime, let serverStamp,
                let date = try? RFC3339DateTranscoder().decode(serverTime),
                let stamp = try? HLCTimestamp(wire: serverStamp, field: "serverStamp")
            else { return nil }
            var response = PullResponse(
                changes: changes, cursor: Cursor(version: UInt64(cursor)), hasMore: hasMore, reset: reset,
                lastProcessedSequence: UInt64(lastProcessed), serverTime: Timestamp(wire: date), serverStamp: stamp)
            response.payloads = payloads
            return response
        }
    }
}

extension ByteReader {
    /// One change of the feed, with the bytes of its entity.
    mutating func change(in data: Data) -> (Change, Data?)? {
        var version: Int64?
        var kind: EntityKey.Kind?
        var id: String?
        var deleted: Bool?
        var entity: Range<Int>?
        let read = object { key, reader in
            switch key {
            case "version": return reader.integer(into: &version)
            case "kind": return reader.enumeration(into: &kind)
            case "id": return reader.string(into: &id)
            case "deleted": return reader.boolean(into: &deleted)
            case "entity":
                entity = reader.objectRange()
                return entity != nil
            default: return false
            }
        }
        guard read, let version, version >= 0, let kind, let id, let deleted else { return nil }
        if deleted { return (Change(version: UInt64(version), operation: .delete(EntityKey(kind, id))), nil) }
        guard let entity else { return nil }
        let payload = data[data.startIndex + entity.lowerBound..<data.startIndex + entity.upperBound]
        var entityReader = ByteReader(bytes: UnsafeRawBufferPointer(rebasing: bytes[entity]))
        let decoded: Entity?
        switch kind {
        case .lot: decoded = entityReader.lot().map(Entity.lot)
        case .ledgerEntry: decoded = entityReader.ledgerEntry().map(Entity.ledgerEntry)
        default: decoded = try? Entity.decode(kind: kind, json: payload)
        }
        guard let decoded else { return nil }
        return (Change(version: UInt64(version), operation: .upsert(decoded)), payload)
    }
}
