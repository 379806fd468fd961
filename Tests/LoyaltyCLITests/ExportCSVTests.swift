import Foundation
import Testing

@testable import LoyaltyCLI

/// The export's CSV form: fields quoted as RFC 4180 says, formulas kept as text, nested values as JSON, and a zip
/// whose checksums are right.
@Suite struct ExportCSVTests {
    @Test(arguments: [
        ("plain", "plain"), ("a,b", "\"a,b\""), ("say \"hi\"", "\"say \"\"hi\"\"\""), ("two\nlines", "\"two\nlines\""),
        ("=HYPERLINK(\"x\")", "\"'=HYPERLINK(\"\"x\"\")\""), ("+49 30 1234", "'+49 30 1234"), ("-12", "-12"),
        ("@SUM(A1)", "'@SUM(A1)"),
    ])
    func fieldsAreQuotedAndFormulasKeptAsText(field: String, cell: String) {
        #expect(ExportCSV.escape(field) == cell)
    }

    @Test func recordsBecomeATableWithEveryFieldOnce() {
        let table = ExportCSV.table([
            ["id": "a", "points": 5, "draws": [["lot": "l1", "points": 5]]], ["id": "b", "reference": "T-1"],
        ])
        #expect(
            table == "draws,id,points,reference\r\n\"[{\"\"lot\"\":\"\"l1\"\",\"\"points\"\":5}]\",a,5,\r\n,b,,T-1\r\n")
    }

    @Test func theZipsChecksumsAreTheStandardOnes() {
        #expect(Zip.crc32(Data("123456789".utf8)) == 0xCBF4_3926, "the CRC-32 check value")
        let archive = Zip.stored([("a.csv", Data("x\r\n".utf8))])
        #expect(archive.prefix(4) == Data([0x50, 0x4B, 0x03, 0x04]))
        #expect(archive.suffix(22).prefix(4) == Data([0x50, 0x4B, 0x05, 0x06]), "ends with the directory's end")
    }
}
