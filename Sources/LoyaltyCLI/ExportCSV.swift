internal import Foundation

/// The export as CSV files, one per kind of record, in a zip archive (docs/privacy.md, "Export"): for a member who
/// wants to open their data in a spreadsheet. Each array of the JSON document becomes `NAME.csv` (a column per field,
/// the union of the records' fields in order of appearance; a nested value written as JSON); the single records
/// (member, account, tier, analysis) and the document's format and version go to `member.csv` as field and value.
enum ExportCSV {
    static func archive(of document: Data) throws -> Data {
        guard let object = try JSONSerialization.jsonObject(with: document) as? [String: Any] else {
            throw CocoaError(.coderReadCorrupt)
        }
        var files: [(String, String)] = []
        var single: [(String, String)] = []
        for key in object.keys.sorted() {
            if let records = object[key] as? [[String: Any]] {
                files.append(("\(key).csv", table(records)))
            } else {
                single.append((key, cell(object[key] as Any)))
            }
        }
        let member = (["field,value"] + single.map { "\(escape($0.0)),\(escape($0.1))" }).joined(separator: "\r\n")
        files.insert(("member.csv", member + "\r\n"), at: 0)
        return Zip.stored(files.map { ($0.0, Data($0.1.utf8)) })
    }

    static func table(_ records: [[String: Any]]) -> String {
        var columns: [String] = []
        for record in records {
            for key in record.keys.sorted() where !columns.contains(key) { columns.append(key) }
        }
        var lines = [columns.map(escape).joined(separator: ",")]
        for record in records {
            lines.append(columns.map { escape(record[$0].map(cell) ?? "") }.joined(separator: ","))
        }
        return lines.joined(separator: "\r\n") + "\r\n"
    }

    /// A value as a cell: text as it is, numbers and booleans as JSON writes them, anything nested as JSON.
    static func cell(_ value: Any) -> String {
        switch value {
        case let text as String: return text
        case is NSNull: return ""
        default:
            let data = try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .fragmentsAllowed])
            return data.map { String(decoding: $0, as: UTF8.self) } ?? ""
        }
    }

    /// RFC 4180: a field with a comma, quote or line break is quoted, its quotes doubled. A field a spreadsheet
    /// would run as a formula (`=`, `+`, `-`, `@` first) is prefixed with a quote mark so that it stays text.
    static func escape(_ field: String) -> String {
        var text = field
        if let first = text.first, "=+-@".contains(first), Double(text) == nil { text = "'" + text }
        guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return text }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}

/// A zip archive whose files are stored uncompressed (every unzip reads it).
enum Zip {
    static func stored(_ files: [(name: String, data: Data)]) -> Data {
        var archive = Data()
        var directory = Data()
        for (name, data) in files {
            let offset = UInt32(archive.count)
            let crc = crc32(data)
            let nameBytes = Data(name.utf8)
            // Local file header.
            archive.append(le32(0x0403_4B50))
            archive.append(le16(20) + le16(0x0800) + le16(0) + le16(0) + le16(0x21))  // version, UTF-8 names, stored
            archive.append(le32(crc) + le32(UInt32(data.count)) + le32(UInt32(data.count)))
            archive.append(le16(UInt16(nameBytes.count)) + le16(0))
            archive.append(nameBytes)
            archive.append(data)
            // Central directory entry.
            directory.append(le32(0x0201_4B50))
            directory.append(le16(20) + le16(20) + le16(0x0800) + le16(0) + le16(0) + le16(0x21))
            directory.append(le32(crc) + le32(UInt32(data.count)) + le32(UInt32(data.count)))
            directory.append(le16(UInt16(nameBytes.count)) + le16(0) + le16(0) + le16(0) + le16(0))
            directory.append(le32(0o100600 << 16) + le32(offset))
            directory.append(nameBytes)
        }
        let start = UInt32(archive.count)
        archive.append(directory)
        archive.append(le32(0x0605_4B50) + le16(0) + le16(0))
        archive.append(le16(UInt16(files.count)) + le16(UInt16(files.count)))
        archive.append(le32(UInt32(directory.count)) + le32(start) + le16(0))
        return archive
    }

    static func le16(_ value: UInt16) -> Data { Data([UInt8(value & 0xFF), UInt8(value >> 8)]) }
    static func le32(_ value: UInt32) -> Data { le16(UInt16(value & 0xFFFF)) + le16(UInt16(value >> 16)) }

    static let table: [UInt32] = (0..<256).map { index in
        var value = UInt32(index)
        for _ in 0..<8 { value = value & 1 == 1 ? 0xEDB8_8320 ^ (value >> 1) : value >> 1 }
        return value
    }

    static func crc32(_ data: Data) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in data { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        return crc ^ 0xFFFF_FFFF
    }
}
