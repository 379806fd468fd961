internal import Foundation
internal import GRDB
public import LoyaltyCore

// Cards, receipts and till transactions.
extension SQLiteStorage {
    public func cardOwner(_ number: CardNumber) async throws -> MemberID? {
        try await pool.read { db in
            try String.fetchOne(db, sql: "SELECT member_id FROM cards WHERE number = ?", arguments: [number.digits])
                .map { MemberID($0) }
        }
    }

    public func insertReceipt(_ receipt: Receipt) async throws {
        try await pool.write { db in
            try Self.mapConstraint("receipt \(receipt.code)") {
                try db.execute(
                    sql: "INSERT INTO receipts (code, amount, shop, purchased_at) VALUES (?, ?, ?, ?)",
                    arguments: [
                        receipt.code, receipt.amount.minorUnits, receipt.shop,
                        receipt.purchasedAt.millisecondsSince1970,
                    ])
            }
        }
    }

    public func receipt(code: String) async throws -> (Receipt, LotID?)? {
        try await pool.read { db in try Self.fetchReceipt(db, code: code) }
    }

    public func transaction(_ id: TransactionID) async throws -> TransactionRecord? {
        try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM transactions WHERE id = ?", arguments: [id.rawValue]).map { row in
                TransactionRecord(
                    id: TransactionID(row["id"]), kind: TransactionRecord.Kind(rawValue: row["kind"]) ?? .purchase,
                    memberID: MemberID(row["member_id"]), lot: (row["lot_id"] as String?).map { LotID($0) },
                    receiptCode: row["receipt_code"], shop: row["shop"],
                    categories: TransactionRecord.categories(row["categories"]))
            }
        }
    }
}
