public import Foundation

/// Encodes values as JSON by writing while they encode themselves.
///
/// Foundation's `JSONEncoder` first builds a tree of the whole value and then writes it, which was the server
/// writer's largest cost under load (docs/benchmarks.md); devices use this for the envelopes and results they store.
///
/// What it writes reads back as `JSONEncoder`'s output does (`StreamingJSONTests` compares them as parsed JSON):
/// the same keys and values, in another order, with `/` not escaped. What it cannot write the same way (the types
/// Foundation's encoder treats specially: `Data`, `URL`, `Decimal`; a `Float`; a container written to after a later
/// one was begun; a key written twice; an empty top-level value; a number that is not finite) it leaves to
/// `JSONEncoder`, which then encodes that value whole.
public enum StreamingJSON {
    /// The value as JSON.
    public static func encode<T: Encodable>(_ value: T) throws -> Data {
        do {
            let sink = JSONSink()
            let slot = sink.push(.slot)
            try StreamingEncoder(sink: sink, slot: slot).encode(value)
            try sink.close(through: slot, topLevel: true)
            return Data(sink.bytes)
        } catch is NotStreamable {
            return try JSONEncoder().encode(value)
        }
    }
}

extension StreamingJSON {
    /// Appends `text` as a JSON string: quotes, backslashes and control characters escaped, the rest as UTF-8.
    public static func appendString(_ text: String, to bytes: inout [UInt8]) {
        bytes.append(UInt8(ascii: "\""))
        // Nearly every string written (ids, kinds, keys) needs no escape: copied whole.
        if text.utf8.allSatisfy({ $0 >= 0x20 && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") }) {
            bytes.append(contentsOf: text.utf8)
        } else {
            for byte in text.utf8 { appendEscaped(byte, to: &bytes) }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    private static func appendEscaped(_ byte: UInt8, to bytes: inout [UInt8]) {
        switch byte {
        case UInt8(ascii: "\""): bytes += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
        case UInt8(ascii: "\\"): bytes += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
        case 0x0A: bytes += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
        case 0x0D: bytes += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
        case 0x09: bytes += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
        case 0x08: bytes += [UInt8(ascii: "\\"), UInt8(ascii: "b")]
        case 0x0C: bytes += [UInt8(ascii: "\\"), UInt8(ascii: "f")]
        case 0..<0x20:
            let digits = Array("0123456789abcdef".utf8)
            bytes += [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0")]
            bytes += [digits[Int(byte >> 4)], digits[Int(byte & 0x0F)]]
        default: bytes.append(byte)
        }
    }

    /// Appends an integer's decimal digits (as `String(value)` spells it, without making the string).
    public static func appendInteger(_ value: some BinaryInteger, to bytes: inout [UInt8]) {
        guard let small = Int64(exactly: value) else {
            bytes += String(value).utf8
            return
        }
        if small < 0 { bytes.append(UInt8(ascii: "-")) }
        var magnitude = small.magnitude
        // At most 20 digits; written backwards into a fixed buffer, then copied in order.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { buffer in
            var index = 20
            repeat {
                index -= 1
                buffer[index] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
            } while magnitude > 0
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: buffer[index...]))
        }
    }
}

/// Something the streaming encoder leaves to `JSONEncoder`.
struct NotStreamable: Error {}

/// The bytes written so far and the containers still open, innermost last.
final class JSONSink {
    enum Kind { case object, array, slot }

    struct Frame {
        let id: Int
        let kind: Kind
        var count = 0
        /// An object's keys so far (objects here have a handful).
        var keys: [String] = []
        /// For a slot: the container opened as its value, if any.
        var child: (id: Int, kind: Kind)?
    }

    // Not checked for overlapping access at run time (that cost about a tenth of encoding): the sink is used by one
    // encoding on one thread, and no method here lends a property while another changes it.
    @exclusivity(unchecked) var bytes: [UInt8] = []
    @exclusivity(unchecked) private var frames: [Frame] = []
    @exclusivity(unchecked) private var nextID = 0

    init() {
        bytes.reserveCapacity(256)
        frames.reserveCapacity(8)
    }

    func push(_ kind: Kind) -> Int {
        nextID += 1
        frames.append(Frame(id: nextID, kind: kind))
        switch kind {
        case .object: bytes.append(UInt8(ascii: "{"))
        case .array: bytes.append(UInt8(ascii: "["))
        case .slot: break
        }
        return nextID
    }

    /// Closes every container opened after `id` (they are finished once an earlier one is written to again); throws
    /// if `id` itself was closed already.
    func reopen(_ id: Int) throws {
        guard frames.contains(where: { $0.id == id }) else { throw NotStreamable() }
        while let top = frames.last, top.id != id { try closeTop(topLevel: false) }
    }

    /// Closes `id` and everything opened after it.
    func close(through id: Int, topLevel: Bool) throws {
        try reopen(id)
        try closeTop(topLevel: topLevel)
    }

    private func closeTop(topLevel: Bool) throws {
        let frame = frames.removeLast()
        switch frame.kind {
        case .object: bytes.append(UInt8(ascii: "}"))
        case .array: bytes.append(UInt8(ascii: "]"))
        case .slot:
            // A value that wrote nothing: Foundation writes an empty object for it, or refuses it at the top.
            if frame.count == 0 {
                if topLevel { throw NotStreamable() }
                bytes += [UInt8(ascii: "{"), UInt8(ascii: "}")]
            }
        }
    }

    /// Starts the next value of container `id`: closes what was opened after it, writes the separator and, in an
    /// object, the key.
    func beginValue(in id: Int, key: String?) throws {
        try reopen(id)
        let top = frames.count - 1
        // The frame is changed in place: a copy would share its keys, and appending to them would copy them all.
        switch frames[top].kind {
        case .slot:
            guard frames[top].count == 0 else { throw NotStreamable() }
        case .object:
            guard let key, !frames[top].keys.contains(key) else { throw NotStreamable() }
            if frames[top].count > 0 { bytes.append(UInt8(ascii: ",")) }
            frames[top].keys.append(key)
            writeString(key)
            bytes.append(UInt8(ascii: ":"))
        case .array:
            if frames[top].count > 0 { bytes.append(UInt8(ascii: ",")) }
        }
        frames[top].count += 1
    }

    /// The container a slot's value was opened as (a second `container(keyedBy:)` call gets the same one), or a new
    /// one of `kind` if the slot is still empty.
    func container(of slot: Int, kind: Kind) throws -> Int {
        if let index = frames.lastIndex(where: { $0.id == slot }), let child = frames[index].child {
            guard child.kind == kind else { throw NotStreamable() }
            try reopen(child.id)
            return child.id
        }
        try beginValue(in: slot, key: nil)
        let id = push(kind)
        frames[frames.count - 2].child = (id, kind)
        return id
    }

    func writeString(_ text: String) { StreamingJSON.appendString(text, to: &bytes) }

    func writeInteger(_ value: some BinaryInteger) { StreamingJSON.appendInteger(value, to: &bytes) }

    func writeFloatingPoint(_ value: Double) throws {
        guard value.isFinite else { throw NotStreamable() }
        // Whole numbers as Foundation writes them: without a fraction.
        if value == value.rounded(), abs(value) < 1e15 {
            writeInteger(Int64(value))
        } else {
            bytes += value.description.utf8
        }
    }

    func writeBool(_ value: Bool) { bytes += (value ? "true" : "false").utf8 }

    func writeNull() { bytes += "null".utf8 }
}

/// Encodes one value into a slot of the sink.
struct StreamingEncoder: Encoder {
    let sink: JSONSink
    let slot: Int
    var codingPath: [any CodingKey] { [] }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    // The protocol's container requests cannot throw: a container that cannot be streamed gets the frame -1, and
    // the first write to it throws.

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        KeyedEncodingContainer(
            StreamingKeyedContainer<Key>(sink: sink, frame: (try? sink.container(of: slot, kind: .object)) ?? -1))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        StreamingUnkeyedContainer(sink: sink, frame: (try? sink.container(of: slot, kind: .array)) ?? -1)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer { StreamingSingleValue(encoder: self) }

    /// Encodes `value` as this slot's value.
    func encode<T: Encodable>(_ value: T) throws {
        // Foundation's encoder writes these its own way, not as they encode themselves.
        // (Comparing the types, not casting the value: generic values arrive as their own type, and a cast per value
        // cost more than the rest of writing it.)
        if T.self == Data.self || T.self == URL.self || T.self == Decimal.self { throw NotStreamable() }
        try value.encode(to: self)
    }
}

struct StreamingKeyedContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let sink: JSONSink
    /// The object's frame in the sink (-1: none could be opened).
    let frame: Int
    var codingPath: [any CodingKey] { [] }

    private func begin(_ key: Key) throws { try sink.beginValue(in: frame, key: key.stringValue) }

    mutating func encodeNil(forKey key: Key) throws {
        try begin(key)
        sink.writeNull()
    }

    mutating func encode(_ value: Bool, forKey key: Key) throws {
        try begin(key)
        sink.writeBool(value)
    }

    mutating func encode(_ value: String, forKey key: Key) throws {
        try begin(key)
        sink.writeString(value)
    }

    mutating func encode(_ value: Double, forKey key: Key) throws {
        try begin(key)
        try sink.writeFloatingPoint(value)
    }

    // A Float's shortest digits are not its Double's: Foundation writes those.
    mutating func encode(_ value: Float, forKey key: Key) throws { throw NotStreamable() }

    mutating func encode(_ value: Int, forKey key: Key) throws { try integer(value, key) }
    mutating func encode(_ value: Int8, forKey key: Key) throws { try integer(value, key) }
    mutating func encode(_ value: Int16, forKey key: Key) throws { try integer(value, key) }
    mutating func encode(_ value: Int32, forKey key: Key) throws { try integer(value, key) }
    mutating func encode(_ value: Int64, forKey key: Key) throws { try integer(value, key) }
    mutating func encode(_ value: UInt, forKey key: Key) throws { try integer(value, key) }
    mutating func encode(_ value: UInt8, forKey key: Key) throws { try integer(value, key) }
    mutating func encode(_ value: UInt16, forKey key: Key) throws { try integer(value, key) }
    mutating func encode(_ value: UInt32, forKey key: Key) throws { try integer(value, key) }
    mutating func encode(_ value: UInt64, forKey key: Key) throws { try integer(value, key) }

    private func integer(_ value: some BinaryInteger, _ key: Key) throws {
        try begin(key)
        sink.writeInteger(value)
    }

    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        try begin(key)
        try valueSlot().encode(value)
    }

    /// A slot for the value whose key was just written.
    private func valueSlot() -> StreamingEncoder { StreamingEncoder(sink: sink, slot: sink.push(.slot)) }

    mutating func nestedContainer<NestedKey: CodingKey>(
        keyedBy keyType: NestedKey.Type, forKey key: Key
    ) -> KeyedEncodingContainer<NestedKey> {
        KeyedEncodingContainer(StreamingKeyedContainer<NestedKey>(sink: sink, frame: nested(key, .object)))
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        StreamingUnkeyedContainer(sink: sink, frame: nested(key, .array))
    }

    /// Begins the key's value as a container or slot of `kind`; -1 if the key could not be begun.
    private func nested(_ key: Key, _ kind: JSONSink.Kind) -> Int {
        do {
            try begin(key)
            return sink.push(kind)
        } catch {
            return -1
        }
    }

    mutating func superEncoder() -> any Encoder {
        superEncoder(forKey: Key(stringValue: "super")!)
    }

    mutating func superEncoder(forKey key: Key) -> any Encoder {
        StreamingEncoder(sink: sink, slot: nested(key, .slot))
    }
}

struct StreamingUnkeyedContainer: UnkeyedEncodingContainer, IntegerStreaming {
    let sink: JSONSink
    /// The array's frame in the sink (-1: none could be opened).
    let frame: Int
    private(set) var count = 0
    var codingPath: [any CodingKey] { [] }

    init(sink: JSONSink, frame: Int) {
        self.sink = sink
        self.frame = frame
    }

    private mutating func begin() throws {
        try sink.beginValue(in: frame, key: nil)
        count += 1
    }

    mutating func encodeNil() throws {
        try begin()
        sink.writeNull()
    }

    mutating func encode(_ value: Bool) throws {
        try begin()
        sink.writeBool(value)
    }

    mutating func encode(_ value: String) throws {
        try begin()
        sink.writeString(value)
    }

    mutating func encode(_ value: Double) throws {
        try begin()
        try sink.writeFloatingPoint(value)
    }

    mutating func encode(_ value: Float) throws { throw NotStreamable() }

    mutating func integer(_ value: some BinaryInteger) throws {
        try begin()
        sink.writeInteger(value)
    }

    mutating func encode<T: Encodable>(_ value: T) throws {
        try begin()
        try StreamingEncoder(sink: sink, slot: sink.push(.slot)).encode(value)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(
        keyedBy keyType: NestedKey.Type
    ) -> KeyedEncodingContainer<
        NestedKey
    > {
        KeyedEncodingContainer(StreamingKeyedContainer<NestedKey>(sink: sink, frame: nested(.object)))
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        StreamingUnkeyedContainer(sink: sink, frame: nested(.array))
    }

    /// Begins the next element as a container or slot of `kind`; -1 if it could not be begun.
    private mutating func nested(_ kind: JSONSink.Kind) -> Int {
        do {
            try begin()
            return sink.push(kind)
        } catch {
            return -1
        }
    }

    mutating func superEncoder() -> any Encoder { StreamingEncoder(sink: sink, slot: nested(.slot)) }
}

struct StreamingSingleValue: SingleValueEncodingContainer, IntegerStreaming {
    let encoder: StreamingEncoder
    var codingPath: [any CodingKey] { [] }

    private func begin() throws { try encoder.sink.beginValue(in: encoder.slot, key: nil) }

    mutating func encodeNil() throws {
        try begin()
        encoder.sink.writeNull()
    }

    mutating func encode(_ value: Bool) throws {
        try begin()
        encoder.sink.writeBool(value)
    }

    mutating func encode(_ value: String) throws {
        try begin()
        encoder.sink.writeString(value)
    }

    mutating func encode(_ value: Double) throws {
        try begin()
        try encoder.sink.writeFloatingPoint(value)
    }

    mutating func encode(_ value: Float) throws { throw NotStreamable() }

    mutating func integer(_ value: some BinaryInteger) throws {
        try begin()
        encoder.sink.writeInteger(value)
    }

    mutating func encode<T: Encodable>(_ value: T) throws {
        // The value fills this same slot (a wrapper encoding what it wraps).
        try encoder.encode(value)
    }
}

/// The integer overloads the unkeyed and single-value containers both require, written once.
protocol IntegerStreaming {
    mutating func integer(_ value: some BinaryInteger) throws
}

extension IntegerStreaming {
    mutating func encode(_ value: Int) throws { try integer(value) }
    mutating func encode(_ value: Int8) throws { try integer(value) }
    mutating func encode(_ value: Int16) throws { try integer(value) }
    mutating func encode(_ value: Int32) throws { try integer(value) }
    mutating func encode(_ value: Int64) throws { try integer(value) }
    mutating func encode(_ value: UInt) throws { try integer(value) }
    mutating func encode(_ value: UInt8) throws { try integer(value) }
    mutating func encode(_ value: UInt16) throws { try integer(value) }
    mutating func encode(_ value: UInt32) throws { try integer(value) }
    mutating func encode(_ value: UInt64) throws { try integer(value) }
}
