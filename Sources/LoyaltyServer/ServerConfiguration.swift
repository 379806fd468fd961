public import LoyaltyCore

/// The server's limits and policies.
public struct ServerConfiguration: Sendable {
    /// The protocol versions this server speaks (the `Loyalty-Protocol` header).
    public var protocolVersions: Set<String> = ["1"]
    /// Most mutations in one push.
    public var maxMutationsPerPush = 500
    /// Most changes in one pull page.
    public var maxPageSize = 500
    /// Page size when the device does not say.
    public var defaultPageSize = 200
    /// Largest request body in bytes.
    public var maxBodyBytes = 1 << 20
    /// How long the change feed keeps deleted entities and mutation results; a cursor older than this resets.
    public var feedRetention: TimeSpan = .days(30)
    /// How often the scheduled jobs (unlock, expiry, compaction) run.
    public var jobInterval: TimeSpan = .minutes(5)
    /// The operator token for the admin API; nil disables it.
    public var adminToken: String?

    /// The defaults.
    public init(adminToken: String? = nil) {
        self.adminToken = adminToken
    }
}
