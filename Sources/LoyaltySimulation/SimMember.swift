internal import LoyaltyCore

/// A member of the world: its account, its devices, and what the world knows it did (the mirror the invariants
/// compare with).
struct SimMember {
    let index: Int
    let email: String
    var id: MemberID?
    var devices: [Int] = []
    var lastReturnAt: Timestamp?
    /// The server's state of the member, kept from its change feed.
    var mirror = Mirror()

    struct Mirror {
        var cursor = Cursor.start
        var waiting: [Change] = []
        var state: MemberState?
        var entries: [EntryID: LedgerEntry] = [:]
    }

    init(index: Int, email: String) {
        self.index = index
        self.email = email
    }
}
