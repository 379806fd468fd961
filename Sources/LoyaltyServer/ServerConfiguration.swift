public import LoyaltyAnalysis
public import LoyaltyCore

/// The server's limits and policies.
public struct ServerConfiguration: Sendable {
    /// The protocol versions this server speaks (the `Loyalty-Protocol` header).
    public var protocolVersions: Set<String> = ["1"]
    /// Most mutations in one push.
    public var maxMutationsPerPush = 500
    /// Most changes in one pull page.
    public var maxPageSize = 2_000
    /// The analysis' thresholds (stages) and factors (predicted value): docs/analysis.md.
    public var analysisRules = AnalysisRules()
    /// Page size when the device does not say.
    public var defaultPageSize = 200
    /// How long a connection may send nothing (headers or body unfinished, or idle between requests) before it is
    /// closed.
    public var idleTimeout: TimeSpan = .seconds(30)
    /// Most connections open at once; more wait to be accepted.
    public var maximumConnections = 1_000
    /// Largest request body in bytes.
    public var maxBodyBytes = 1 << 20
    /// How long the change feed keeps deleted entities and mutation results; a cursor older than this resets.
    public var feedRetention: TimeSpan = .days(30)
    /// How often the scheduled jobs (unlock, expiry, compaction) run.
    public var jobInterval: TimeSpan = .minutes(5)
    /// How far ahead of the server's clock a device's stamp may be. Devices stamp with their clock corrected by the
    /// offset measured at their last sync, so what remains is a clock changed since then. A profile or consent
    /// change stamped further ahead is refused (`clock_ahead`) rather than let win every later change, and no
    /// stamp moves the server's own clock by more than this.
    public var maximumStampSkew: TimeSpan = .hours(1)
    /// Devices signed in to one member at once; a sign-in beyond it is refused (409) until one is signed out.
    public var maxDevicesPerMember = 20
    /// Refresh tokens' lifetimes and retry allowance.
    public var refresh = RefreshPolicy()
    /// Whether `/metrics` answers without the operator token (for a scraper on a private network); it carries
    /// counts only, never member data.
    public var publicMetrics = false
    /// The operator token for the admin API; nil disables it.
    public var adminToken: String?
    /// scrypt's parameters for new password hashes: N = 2^17, r = 8, p = 1 (OWASP's current guidance; 128 MiB and
    /// a few hundred milliseconds a hash). Each hash records its own, so raising them breaks no account: an older
    /// hash is redone at the next successful sign-in. A simulation or a test that enrols thousands lowers them.
    public var passwordHashing = ScryptParameters(logN: 17)
    /// Hashes computed at once, on threads of their own (never the threads that answer pushes and pulls).
    public var passwordThreads = 1
    /// Sign-ins waiting for a hashing thread, at most; the next is answered 503 with `Retry-After`.
    public var passwordQueue = 32
    /// Sign-in, enrolment and refresh limits per client address and per account.
    public var signInLimits = SignInLimits()
    /// Called inside a push's unit of work for each mutation the device had sent before (a retry, answered from
    /// its stored result). Nil in production; the simulator's self-test sets it to plant a bug and show that its
    /// invariants catch it.
    public var retryHook: RetryHook?

    /// The defaults.
    public init(adminToken: String? = nil) {
        self.adminToken = adminToken
    }
}

/// What sees a retried mutation inside a push's unit of work: the envelope, the member's work and the server time.
public typealias RetryHook =
    @Sendable (_ envelope: MutationEnvelope, _ work: inout MemberWork, _ now: Timestamp) -> Void
