internal import Foundation

/// A strict reader of JSON bytes, for the JSON this package writes itself.
///
/// It reads plain strings, integers, booleans, objects and arrays; each read returns false (or nil) at the first
/// thing outside that, and the caller lets Foundation's decoder read the whole value instead. Lots and ledger
/// entries (``Entity/decode(kind:json:)``) and the pull answer (LoyaltyAPI's `PullJSON`) are read with it, because
/// Foundation's decoder dominated a device's bootstrap (docs/benchmarks.md).
package struct ByteReader {
    package let bytes: UnsafeRawBufferPointer
    package var index = 0

    package init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    /// JSON's whitespace.
    package static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09
    }

    /// Whether only whitespace is left.
    package var atEnd: Bool {
        mutating get {
            skipWhitespace()
            return index == bytes.count
        }
    }

    package mutating func skipWhitespace() {
        while index < bytes.count, ByteReader.isWhitespace(bytes[index]) { index += 1 }
    }

    package mutating func take(_ byte: UInt8) -> Bool {
        skipWhitespace()
        guard index < bytes.count, bytes[index] == byte else { return false }
        index += 1
        return true
    }

    /// An object, each field handed to `field` with its key; false if a field is refused or the object is
    /// malformed. A key may not repeat (Foundation's decoder and this reader could then keep different ones).
    package mutating func object(_ field: (StaticKey, inout ByteReader) -> Bool) -> Bool {
        guard take(UInt8(ascii: "{")) else { return false }
        if take(UInt8(ascii: "}")) { return true }
        var seen: [Int] = []
        repeat {
            guard let range = plainString(), take(UInt8(ascii: ":")) else { return false }
            let key = StaticKey(bytes: UnsafeRawBufferPointer(rebasing: bytes[range]))
            let hash = key.bytes.reduce(5381) { ($0 &* 33) ^ Int($1) }
            // Keys are few (at most 15): a repeat is checked by hash, and refused even on a rare false match.
            guard !seen.contains(hash) else { return false }
            seen.append(hash)
            skipWhitespace()
            guard field(key, &self) else { return false }
        } while take(UInt8(ascii: ","))
        return take(UInt8(ascii: "}"))
    }

    /// An array, each element read by `element`.
    package mutating func array(_ element: (inout ByteReader) -> Bool) -> Bool {
        guard take(UInt8(ascii: "[")) else { return false }
        if take(UInt8(ascii: "]")) { return true }
        repeat {
            guard element(&self) else { return false }
        } while take(UInt8(ascii: ","))
        return take(UInt8(ascii: "]"))
    }

    /// The range of a string's contents, if it has no escapes and no control characters.
    package mutating func plainString() -> Range<Int>? {
        guard take(UInt8(ascii: "\"")) else { return nil }
        let start = index
        while index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: "\""):
                index += 1
                return start..<index - 1
            case UInt8(ascii: "\\"), 0..<0x20: return nil
            default: index += 1
            }
        }
        return nil
    }

    /// A string without escapes, valid UTF-8.
    package mutating func string() -> String? {
        guard let range = plainString() else { return nil }
        return String(validating: UnsafeRawBufferPointer(rebasing: bytes[range]), as: UTF8.self)
    }

    /// An integer written as JSON writes one (no fraction, exponent or leading zero), of at most 18 digits.
    package mutating func integer() -> Int64? {
        skipWhitespace()
        let negative = index < bytes.count && bytes[index] == UInt8(ascii: "-")
        if negative { index += 1 }
        let start = index
        var value: Int64 = 0
        while index < bytes.count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") {
            // Past 18 digits it gives up before the value could overflow.
            guard index - start < 18 else { return nil }
            value = value * 10 + Int64(bytes[index] - UInt8(ascii: "0"))
            index += 1
        }
        let digits = index - start
        guard digits > 0, digits <= 18, !(digits > 1 && bytes[start] == UInt8(ascii: "0")) else { return nil }
        if index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E"): return nil
            default: break
            }
        }
        return negative ? -value : value
    }

    package mutating func boolean() -> Bool? {
        skipWhitespace()
        if matches("true") { return true }
        if matches("false") { return false }
        return nil
    }

    /// Reads `null` if it is next.
    package mutating func null() -> Bool {
        skipWhitespace()
        return matches("null")
    }

    private mutating func matches(_ word: StaticString) -> Bool {
        let count = word.utf8CodeUnitCount
        guard index + count <= bytes.count,
            word.withUTF8Buffer({ $0.elementsEqual(bytes[index..<index + count]) })
        else { return false }
        // A word must end there: `nullx` or `true1` is not JSON.
        if index + count < bytes.count {
            let next = bytes[index + count]
            guard !(next >= UInt8(ascii: "a") && next <= UInt8(ascii: "z")),
                !(next >= UInt8(ascii: "0") && next <= UInt8(ascii: "9"))
            else { return false }
        }
        index += count
        return true
    }

    /// The range of the object that starts here, skipped whole (strings with escapes included).
    package mutating func objectRange() -> Range<Int>? {
        skipWhitespace()
        let start = index
        guard index < bytes.count, bytes[index] == UInt8(ascii: "{"), skipValue() else { return nil }
        return start..<index
    }

    /// Past a string whose opening quote is at `index`, escapes and all.
    package mutating func skipString() -> Bool {
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

    /// Past one value, leniently: an object or array by depth (strings skipped whole), a string, or a scalar up to
    /// the next delimiter. For finding values in JSON already checked by a strict reader.
    package mutating func skipValue() -> Bool {
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
                case let byte where ByteReader.isWhitespace(byte): break scalar
                default: index += 1
                }
            }
            return index > start
        }
    }

    // Reads into an optional that must not be set yet (one value per key).

    package mutating func integer(into value: inout Int64?) -> Bool {
        value = integer()
        return value != nil
    }

    package mutating func integer(into value: inout Int?) -> Bool {
        value = integer().map(Int.init)
        return value != nil
    }

    package mutating func boolean(into value: inout Bool?) -> Bool {
        value = boolean()
        return value != nil
    }

    package mutating func string(into value: inout String?) -> Bool {
        value = string()
        return value != nil
    }

    /// A field `decodeIfPresent` would read: null or absent is nil.
    package mutating func optionalInteger(into value: inout Int64??) -> Bool {
        if null() {
            value = .some(nil)
            return true
        }
        guard let number = integer() else { return false }
        value = .some(number)
        return true
    }

    package mutating func optionalString(into value: inout String??) -> Bool {
        if null() {
            value = .some(nil)
            return true
        }
        guard let text = string() else { return false }
        value = .some(text)
        return true
    }

    /// A raw-value enum written as its string.
    package mutating func enumeration<Value: RawRepresentable<String>>(into value: inout Value?) -> Bool {
        value = string().flatMap(Value.init(rawValue:))
        return value != nil
    }
}

/// An object's key as bytes, compared with string literals without making a `String`.
package struct StaticKey {
    package let bytes: UnsafeRawBufferPointer

    package static func ~= (pattern: StaticString, key: StaticKey) -> Bool {
        pattern.withUTF8Buffer { $0.elementsEqual(key.bytes) }
    }
}

extension ByteReader {
    /// A lot, read as `EarnLot`'s `Codable` conformance reads it.
    package mutating func lot() -> EarnLot? {
        var id: String?
        var cause: EarnLot.Cause?
        var amount: Int?
        var remaining: Int?
        var earnedAt: Int64?
        var pendingUntil: Int64??
        var expiresAt: Int64??
        var state: EarnLot.State?
        var purchaseAmount: Int64??
        var returnedAmount: Int64?
        var revoked: Int?
        var reference: String??
        var expiredAt: Int64??
        var expiredPoints: Int?
        let read = object { key, reader in
            switch key {
            case "id": reader.string(into: &id)
            case "cause": reader.enumeration(into: &cause)
            case "amount": reader.integer(into: &amount)
            case "remaining": reader.integer(into: &remaining)
            case "earnedAt": reader.integer(into: &earnedAt)
            case "pendingUntil": reader.optionalInteger(into: &pendingUntil)
            case "expiresAt": reader.optionalInteger(into: &expiresAt)
            case "state": reader.enumeration(into: &state)
            case "purchaseAmount": reader.optionalInteger(into: &purchaseAmount)
            case "returnedAmount": reader.integer(into: &returnedAmount)
            case "revoked": reader.integer(into: &revoked)
            case "reference": reader.optionalString(into: &reference)
            case "expiredAt": reader.optionalInteger(into: &expiredAt)
            case "expiredPoints": reader.integer(into: &expiredPoints)
            default: false
            }
        }
        let moneyRange = 0...Money.maximum.minorUnits
        guard read, let id, let cause, let amount, let remaining, let earnedAt, let state, let returnedAmount,
            moneyRange.contains(returnedAmount), let revoked, let expiredPoints,
            (purchaseAmount ?? nil).map(moneyRange.contains) ?? true,
            // The lot keeps its optional times and amount with Int64.min for nil: it cannot hold that value.
            ![pendingUntil, expiresAt, purchaseAmount, expiredAt].contains(where: { $0 == .some(.some(.min)) })
        else { return nil }
        var lot = EarnLot(
            id: LotID(id), cause: cause, amount: amount, earnedAt: Timestamp(millisecondsSince1970: earnedAt),
            pendingUntil: (pendingUntil ?? nil).map(Timestamp.init(millisecondsSince1970:)),
            expiresAt: (expiresAt ?? nil).map(Timestamp.init(millisecondsSince1970:)),
            purchaseAmount: (purchaseAmount ?? nil).map(Money.init(minorUnits:)), reference: reference ?? nil)
        lot.remaining = remaining
        lot.state = state
        lot.returnedAmount = Money(minorUnits: returnedAmount)
        lot.revoked = revoked
        lot.expiredAt = (expiredAt ?? nil).map(Timestamp.init(millisecondsSince1970:))
        lot.expiredPoints = expiredPoints
        return lot
    }

    /// A ledger entry, read as `LedgerEntry`'s `Codable` conformance reads it.
    package mutating func ledgerEntry() -> LedgerEntry? {
        var id: String?
        var kind: LedgerEntry.Kind?
        var at: Int64?
        var available: Int?
        var pending: Int?
        var owed: Int?
        var draws: [LotDraw]?
        var reference: String??
        let read = object { key, reader in
            switch key {
            case "id": return reader.string(into: &id)
            case "kind": return reader.enumeration(into: &kind)
            case "at": return reader.integer(into: &at)
            case "available": return reader.integer(into: &available)
            case "pending": return reader.integer(into: &pending)
            case "owed": return reader.integer(into: &owed)
            case "reference": return reader.optionalString(into: &reference)
            case "draws":
                var list: [LotDraw] = []
                let read = reader.array { reader in
                    var lot: String?
                    var points: Int?
                    let read = reader.object { key, reader in
                        switch key {
                        case "lot": reader.string(into: &lot)
                        case "points": reader.integer(into: &points)
                        default: false
                        }
                    }
                    guard read, let lot, let points else { return false }
                    list.append(LotDraw(lot: LotID(lot), points: points))
                    return true
                }
                draws = list
                return read
            default: return false
            }
        }
        guard read, let id, let kind, let at, let available, let pending, let owed, let draws else { return nil }
        return LedgerEntry(
            id: EntryID(id), kind: kind, at: Timestamp(millisecondsSince1970: at), available: available,
            pending: pending, owed: owed, draws: draws, reference: reference ?? nil)
    }
}
