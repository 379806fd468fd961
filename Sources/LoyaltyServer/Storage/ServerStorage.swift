public import LoyaltyCore

/// Where the server keeps everything. The sync service talks only to this protocol; SQLite
/// (``SQLiteStorage``) is the embedded default, ``PostgresStorage`` the one several instances share.
///
/// Member work is a unit of work: the storage loads what a request says it needs under the member's lock,
/// runs the service's synchronous, pure body on it, then writes what the body recorded, all in one
/// transaction (or one savepoint of a transaction that commits several units together: see ``SQLiteStorage``).
/// Two units of work for the same member never interleave, and none is answered before it is committed.
public protocol ServerStorage: Sendable {
    /// Creates or upgrades the schema.
    func migrate() async throws

    /// Checks that the storage answers.
    func ping() async throws

    /// Writes the programme and catalogue if the store has none yet; true if it did.
    func installProgramme(_ program: Program, catalogue: Catalogue, now: Timestamp) async throws -> Bool

    /// Runs a unit of work on one member.
    func withMember<T: Sendable>(
        _ request: MemberWorkRequest, _ body: @Sendable (inout MemberWork) throws -> T
    ) async throws -> T

    /// Transactions that committed units of work on members, and the units they carried, since the store opened.
    var commitStatistics: CommitStatistics { get }

    /// What the segment job computes and reads back.
    var analysis: any AnalysisStore { get }

    /// Runs a unit of work on the programme-wide catalogue (programme, offers, rewards, surveys).
    func withCatalogue<T: Sendable>(
        now: Timestamp, _ body: @Sendable (inout CatalogueWork) throws -> T
    ) async throws -> T

    /// A page of a member's change feed (the member's entities and the programme-wide ones) after `cursor`.
    func feed(member: MemberID, after cursor: Cursor, limit: Int) async throws -> FeedPage

    /// The row of the member's device `device` (nil if it has none of that id) and a page of the member's feed: what
    /// a pull reads, in one read where the backend can (the default reads one, then the other).
    func pullPage(
        device: DeviceID?, member: MemberID, after cursor: Cursor, limit: Int
    ) async throws -> (device: DeviceRecord?, page: FeedPage)

    /// Creates an account, its first device and card, and the member's first entities, or fails with
    /// a ``LoyaltyError`` with code `duplicate` if the e-mail is taken.
    func createMember(
        _ account: AccountRecord, device: DeviceRecord, card: CardNumber, entities: [Entity], now: Timestamp)
        async throws

    /// The account with this e-mail (case-insensitive).
    func account(email: String) async throws -> AccountRecord?
    /// The account of a member.
    func account(member: MemberID) async throws -> AccountRecord?
    /// Replaces an account's password hash (a new password, or the same one hashed at a new cost).
    func updatePassword(
        member: MemberID, hash: [UInt8], salt: [UInt8], parameters: ScryptParameters
    ) async throws
    /// Blocks or allows sign-in to an account; false if there is no such member.
    func setSignInBlocked(member: MemberID, blocked: Bool) async throws -> Bool
    /// Revokes every device of a member not yet revoked but `except`, and returns their ids.
    func revokeDevices(
        member: MemberID, except kept: DeviceID?, reason: RevocationReason, at time: Timestamp
    ) async throws -> [DeviceID]
    /// Member ids after `after`, in order.
    func memberIDs(after: MemberID?, limit: Int) async throws -> [MemberID]
    /// Members for whom `job` has work at `time` (by the times kept with every write: ``MemberState/jobsDue(at:)``),
    /// after `after`, in order: found through an index, so a run costs what is due, not what the programme holds.
    func membersDue(_ job: Job, by time: Timestamp, after: MemberID?, limit: Int) async throws -> [MemberID]

    /// A device.
    func device(_ id: DeviceID) async throws -> DeviceRecord?
    /// A member's devices, oldest first.
    func devices(member: MemberID) async throws -> [DeviceRecord]
    /// Adds a device.
    func insertDevice(_ device: DeviceRecord) async throws
    /// Exchanges a refresh token (its hash `presented`) for `next` by ``RefreshFamily/decide(_:presented:next:now:policy:)``
    /// in one transaction: the check and the rotation (or the family's revocation) are one atomic step.
    func rotateRefreshToken(
        device: DeviceID, presented: [UInt8], next: [UInt8], now: Timestamp, policy: RefreshPolicy
    ) async throws -> RefreshRotation
    /// Marks a device revoked; false if it does not exist.
    func revokeDevice(_ id: DeviceID, at time: Timestamp) async throws -> Bool
    /// Records when a device last pulled (the feed's retention is judged from it).
    func markPulled(_ id: DeviceID, at time: Timestamp) async throws
    /// Records that a device was seen.
    func touchDevice(_ id: DeviceID, at time: Timestamp) async throws

    /// The member a card belongs to.
    func cardOwner(_ number: CardNumber) async throws -> MemberID?
    /// Adds a receipt; a ``LoyaltyError`` with code `duplicate` if the code exists.
    func insertReceipt(_ receipt: Receipt) async throws
    /// A receipt and the lot it earned, if claimed.
    func receipt(code: String) async throws -> (Receipt, LotID?)?
    /// A till transaction.
    func transaction(_ id: TransactionID) async throws -> TransactionRecord?

    /// Forgets deleted entities and mutation results written before `time`, and raises the feed's horizon to the
    /// newest deletion forgotten: a cursor below it gets a reset.
    func compact(before time: Timestamp) async throws
}

/// What a unit of member work needs loaded.
public struct MemberWorkRequest: Sendable, Hashable {
    /// The member.
    public var memberID: MemberID
    /// The device whose record to load, if any.
    public var deviceID: DeviceID?
    /// Sequence numbers of that device whose stored results to load.
    public var sequences: [UInt64]
    /// Receipt codes to look up.
    public var receiptCodes: [String]
    /// The server's time for this unit of work.
    public var now: Timestamp
    /// Whether the unit records when the jobs next have work for the member even if it changes nothing (a job's
    /// unit: time alone moves a review); every unit that writes entities records it anyway.
    public var recordsJobsDue = false

    /// Creates a request.
    public init(
        memberID: MemberID, now: Timestamp, deviceID: DeviceID? = nil, sequences: [UInt64] = [],
        receiptCodes: [String] = []
    ) {
        self.memberID = memberID
        self.now = now
        self.deviceID = deviceID
        self.sequences = sequences
        self.receiptCodes = receiptCodes
    }
}

/// How many units of work on members the store committed, in how many transactions.
public struct CommitStatistics: Sendable, Hashable {
    /// Transactions committed.
    public var commits: Int
    /// Units of work they carried (the ones that failed and rolled back alone included).
    public var units: Int

    /// Figures of `commits` commits carrying `units` units.
    public init(commits: Int, units: Int) {
        self.commits = commits
        self.units = units
    }
}

/// One unit of work on a member: what was loaded, and what to write.
public struct MemberWork: Sendable {
    /// The member's state (member-scoped and programme-wide entities, without ledger history).
    public var state: MemberState
    /// The device's record, if one was asked for.
    public var device: DeviceRecord?
    /// Stored results of the device's already processed sequence numbers that were asked for.
    public let storedResults: [UInt64: MutationResult]
    /// Receipts that were asked for, by code.
    public let receipts: [String: Receipt]
    /// The time of this unit of work (server clock).
    public let now: Timestamp

    /// Entities to write (whole states), in order.
    public private(set) var entityWrites: [Entity] = []
    /// Mutation results to store for the device.
    public private(set) var resultWrites: [MutationResult] = []
    /// Receipts to mark claimed by this member, with the lot they earned.
    public private(set) var receiptClaims: [(code: String, lot: LotID)] = []
    /// Cards to register as this member's.
    public private(set) var cardsIssued: [CardNumber] = []
    /// Till transactions to record.
    public private(set) var transactionWrites: [TransactionRecord] = []
    /// Whether the unit also removes the account's personal data and revokes every device (an erasure), in its
    /// transaction.
    public private(set) var erasesAccount = false

    /// Creates a unit of work from loaded data (used by storage implementations).
    public init(
        state: MemberState, device: DeviceRecord?, storedResults: [UInt64: MutationResult], receipts: [String: Receipt],
        now: Timestamp
    ) {
        self.state = state
        self.device = device
        self.storedResults = storedResults
        self.receipts = receipts
        self.now = now
    }

    /// Records changed entities.
    public mutating func write(_ entities: [Entity]) { entityWrites += entities }
    /// Records a mutation's result.
    public mutating func store(_ result: MutationResult) { resultWrites.append(result) }
    /// Records a receipt claim.
    public mutating func claim(receipt code: String, lot: LotID) { receiptClaims.append((code, lot)) }
    /// Records a newly issued card.
    public mutating func register(card: CardNumber) { cardsIssued.append(card) }
    /// Records a till transaction.
    public mutating func record(_ transaction: TransactionRecord) { transactionWrites.append(transaction) }
    /// Erases the account with the state (docs/privacy.md, "Erasure"): the e-mail replaced, the password hash
    /// removed, sign-in blocked, the devices' names removed and every device revoked (reason `erased`).
    public mutating func eraseAccount() { erasesAccount = true }
}

/// One unit of work on the programme-wide catalogue.
public struct CatalogueWork: Sendable {
    /// The programme.
    public var program: Program
    /// Offers, rewards and surveys.
    public var catalogue: Catalogue
    /// Entities to write.
    public private(set) var entityWrites: [Entity] = []

    /// Creates a unit of work from loaded data.
    public init(program: Program, catalogue: Catalogue) {
        self.program = program
        self.catalogue = catalogue
    }

    /// Records changed entities.
    public mutating func write(_ entities: [Entity]) { entityWrites += entities }
}

/// A page of the change feed.
public struct FeedPage: Sendable, Hashable {
    /// Changes after the cursor, in version order, as stored.
    public var changes: [StoredChange]
    /// Whether more follow.
    public var hasMore: Bool
    /// Cursors below this are older than the feed keeps.
    public var horizon: UInt64
    /// The newest version in the store (at least; a page known unchanged from memory gives the cursor itself, which
    /// is the newest of the member's and the catalogue's versions).
    public var latest: UInt64

    /// Creates a page.
    public init(changes: [StoredChange], hasMore: Bool, horizon: UInt64, latest: UInt64) {
        self.changes = changes
        self.hasMore = hasMore
        self.horizon = horizon
        self.latest = latest
    }
}

/// A member's sign-in data.
public struct AccountRecord: Sendable, Hashable {
    /// The member the device is signed in to.
    public var memberID: MemberID
    /// The e-mail address signed in with (unique).
    public var email: String
    /// The scrypt hash of the password.
    public var passwordHash: [UInt8]
    /// The hash's salt.
    public var salt: [UInt8]
    /// The scrypt parameters the hash was made with.
    public var passwordParameters: ScryptParameters
    /// When the account was made.
    public var createdAt: Timestamp
    /// Whether the operator blocked sign-in to the account.
    public var signInBlocked: Bool

    /// Creates a `AccountRecord` from its parts.
    public init(
        memberID: MemberID, email: String, passwordHash: [UInt8], salt: [UInt8],
        passwordParameters: ScryptParameters = .legacy, createdAt: Timestamp, signInBlocked: Bool = false
    ) {
        self.memberID = memberID
        self.email = email
        self.passwordHash = passwordHash
        self.salt = salt
        self.passwordParameters = passwordParameters
        self.createdAt = createdAt
        self.signInBlocked = signInBlocked
    }
}

/// A device as the server keeps it.
public struct DeviceRecord: Sendable, Hashable {
    /// The device's id.
    public var id: DeviceID
    /// The member.
    public var memberID: MemberID
    /// The name the member gave it.
    public var name: String
    /// When it signed in.
    public var createdAt: Timestamp
    /// When it was signed out, if it was.
    public var revokedAt: Timestamp?
    /// The highest sequence number processed.
    public var lastSequence: UInt64
    /// The latest time the server took this device to have acted at (the floor for later claims).
    public var lastActedAt: Timestamp?
    public var lastSeenAt: Timestamp?
    /// When it last pulled; a device away longer than the feed's retention is answered with a reset.
    public var lastPulledAt: Timestamp?
    /// SHA-256 of the current refresh token.
    public var refreshHash: [UInt8]
    /// SHA-256 of the refresh token it replaced, good for a few retries until the device uses the current one.
    public var previousRefreshHash: [UInt8]?
    /// When the refresh token last rotated.
    public var rotatedAt: Timestamp?
    /// SHA-256 of the family's superseded refresh tokens, the newest last: presenting one revokes the family.
    public var supersededRefreshHashes: [[UInt8]] = []
    /// How often the previous token was presented again since the current one was issued.
    public var refreshRetries = 0
    /// Why the device was revoked, when it was.
    public var revokedReason: RevocationReason?

    /// Creates a `DeviceRecord` from its parts.
    public init(
        id: DeviceID, memberID: MemberID, name: String, createdAt: Timestamp, revokedAt: Timestamp? = nil,
        lastSequence: UInt64 = 0, lastActedAt: Timestamp? = nil, lastSeenAt: Timestamp? = nil,
        lastPulledAt: Timestamp? = nil, refreshHash: [UInt8],
        previousRefreshHash: [UInt8]? = nil, rotatedAt: Timestamp? = nil, supersededRefreshHashes: [[UInt8]] = [],
        refreshRetries: Int = 0, revokedReason: RevocationReason? = nil
    ) {
        self.id = id
        self.memberID = memberID
        self.name = name
        self.createdAt = createdAt
        self.revokedAt = revokedAt
        self.lastSequence = lastSequence
        self.lastActedAt = lastActedAt
        self.lastSeenAt = lastSeenAt
        self.lastPulledAt = lastPulledAt
        self.refreshHash = refreshHash
        self.previousRefreshHash = previousRefreshHash
        self.rotatedAt = rotatedAt
        self.supersededRefreshHashes = supersededRefreshHashes
        self.refreshRetries = refreshRetries
        self.revokedReason = revokedReason
    }
}

/// Why a device was revoked.
public enum RevocationReason: String, Sendable, Hashable {
    /// The member (or the operator) signed it out.
    case signedOut = "signed_out"
    /// A superseded refresh token of its family was presented: someone else holds a copy.
    case refreshTokenReused = "refresh_token_reused"
    /// The member changed the password or signed out everywhere.
    case signedOutEverywhere = "signed_out_everywhere"
    /// The programme blocked sign-in to the account.
    case blocked
    /// The member's data was erased.
    case erased

    /// What the device is told.
    public var message: String {
        switch self {
        case .signedOut: "this device was signed out by the member: wipe its data and sign in again"
        case .refreshTokenReused:
            "this device was signed out because its sign-in was used from somewhere else (a copied token): sign in "
                + "again, and change the password if this was not you"
        case .signedOutEverywhere:
            "this device was signed out because the member changed the password or signed out everywhere: sign in "
                + "again"
        case .blocked:
            "sign-in to this account is blocked by the programme: please contact customer service"
        case .erased: "the member's data was erased on request: this device wipes what it holds"
        }
    }
}

/// A till transaction: a purchase (and the lot it earned) or a return.
public struct TransactionRecord: Sendable, Hashable {
    /// What the till did.
    public enum Kind: String, Sendable, Hashable { case purchase, `return`, redemption }
    /// The till's transaction id (unique).
    public var id: TransactionID
    /// What the till did.
    public var kind: Kind
    public var memberID: MemberID
    /// For a purchase, the lot it earned; for a return, the purchase's lot; none for a till redemption.
    public var lot: LotID?
    /// The receipt the transaction is on, if any.
    public var receiptCode: String?
    /// The shop the till is in, and the basket's categories (a purchase's or a return's), where the till said.
    public var shop: String?
    public var categories: [String]

    /// Creates a transaction record.
    public init(
        id: TransactionID, kind: Kind, memberID: MemberID, lot: LotID?, receiptCode: String?, shop: String? = nil,
        categories: [String] = []
    ) {
        self.id = id
        self.kind = kind
        self.memberID = memberID
        self.lot = lot
        self.receiptCode = receiptCode
        self.shop = shop
        self.categories = categories
    }

    /// The categories as stored: comma-separated, nil for none.
    var categoryList: String? { categories.isEmpty ? nil : categories.joined(separator: ",") }

    /// The categories from their stored form.
    static func categories(_ stored: String?) -> [String] {
        stored.map { $0.split(separator: ",").map(String.init) } ?? []
    }
}

extension ServerStorage {
    public func pullPage(
        device: DeviceID?, member: MemberID, after cursor: Cursor, limit: Int
    ) async throws -> (device: DeviceRecord?, page: FeedPage) {
        var record: DeviceRecord?
        if let device { record = try await self.device(device) }
        return (record?.memberID == member ? record : nil, try await feed(member: member, after: cursor, limit: limit))
    }
}
