internal import Foundation
internal import GRDB
internal import LoyaltyCore

// Notices kept on the device.
extension DeviceStore {
    /// Notices kept on a device: past it, the oldest are dropped as new ones arrive.
    public static let noticeLimit = 500

    static func insert(_ notice: Notice, _ db: Database) throws {
        try db.execute(
            sql: """
                INSERT OR IGNORE INTO notices (id, kind, message, sequence, mutation_kind, created_at)
                VALUES (?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                notice.id, notice.kind.rawValue, notice.message, notice.sequence.map { Int64($0) }, notice.mutationKind,
                notice.createdAt.millisecondsSince1970,
            ])
        try db.execute(
            sql: """
                DELETE FROM notices WHERE id IN (
                    SELECT id FROM notices ORDER BY created_at DESC, rowid DESC LIMIT -1 OFFSET ?)
                """,
            arguments: [noticeLimit])
    }

}
