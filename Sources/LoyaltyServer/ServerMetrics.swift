internal import LoyaltyAnalysis
public import Prometheus

/// The server's metrics, kept in a Prometheus registry that `/metrics` renders.
public struct ServerMetrics: Sendable {
    /// The registry `/metrics` renders.
    public let registry: PrometheusCollectorRegistry
    let mutationsApplied: Counter
    let mutationsAdjusted: Counter
    let mutationsRejected: Counter
    let changesPulled: Counter
    let resets: Counter
    let enrolments: Counter
    let failedSignIns: Counter
    /// Security events by kind (refresh token reuse, rate limits, refused requests).
    let refreshReuses: Counter
    let rateLimited: Counter
    let forbidden: Counter
    let jobMovements: Counter
    let allowancePointsGranted: Counter
    let memberCommits: Gauge
    let memberUnitsCommitted: Gauge
    /// How long pushes and pulls took, from their body read to their answer written.
    let pushDuration: DurationHistogram
    let pullDuration: DurationHistogram
    /// How long a unit of work on a member took in the store (waiting for the member's lock and the commit included).
    let unitDuration: DurationHistogram
    /// How long each job's runs took.
    let unlockJobDuration: DurationHistogram
    let expireJobDuration: DurationHistogram
    let segmentJobDuration: DurationHistogram
    let compactionDuration: DurationHistogram
    /// The programme's headline figures, set after each run of the segment job (docs/analysis.md, "Programme KPIs").
    let programmeMembers: Gauge
    let programmeActive: [Int: Gauge]
    let programmeLiabilityPoints: Gauge
    let programmeLiabilityMinorUnits: Gauge
    let programmeRedemptionRate: Gauge
    let programmeBreakageRate: Gauge
    /// The name every metric of this instance carries (`instance_name`), to tell instances apart on one dashboard.
    public let instanceName: String

    /// Metrics in a registry of their own, labelled with the instance's name.
    public init(
        registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry(), instanceName: String = "loyalty-server"
    ) {
        self.registry = registry
        self.instanceName = instanceName
        let instance = ("instance_name", instanceName)
        func counter(_ name: String, _ help: String, _ labels: [(String, String)] = []) -> Counter {
            registry.makeCounter(
                descriptor: MetricNameDescriptor(
                    namespace: "loyalty", metricName: name, unitName: "total", helpText: help),
                labels: labels + [instance])
        }
        func gauge(_ name: String, _ help: String, _ labels: [(String, String)] = []) -> Gauge {
            registry.makeGauge(
                descriptor: MetricNameDescriptor(namespace: "loyalty", metricName: name, unitName: "", helpText: help),
                labels: labels + [instance])
        }
        // From a millisecond to ten seconds: a push on SQLite is a few ms, one waiting on a busy database much more.
        let buckets: [Duration] = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000].map {
            .milliseconds($0)
        }
        func histogram(_ name: String, _ help: String, _ labels: [(String, String)] = []) -> DurationHistogram {
            registry.makeDurationHistogram(
                descriptor: MetricNameDescriptor(
                    namespace: "loyalty", metricName: name, unitName: "seconds", helpText: help),
                labels: labels + [instance], buckets: buckets)
        }
        let requests = "How long pushes and pulls took, from the request's body to its answer."
        pushDuration = histogram("request_duration", requests, [("operation", "push")])
        pullDuration = histogram("request_duration", requests, [("operation", "pull")])
        unitDuration = histogram(
            "store_unit_duration", "How long a unit of work on a member took in the store (lock wait and commit).")
        let jobs = "How long a run of a scheduled job took."
        unlockJobDuration = histogram("job_duration", jobs, [("job", "unlock")])
        expireJobDuration = histogram("job_duration", jobs, [("job", "expire")])
        segmentJobDuration = histogram("job_duration", jobs, [("job", "segment")])
        compactionDuration = histogram("job_duration", jobs, [("job", "compaction")])
        let mutations = "Mutations pushed by devices, by how the server decided them."
        mutationsApplied = counter("mutations", mutations, [("status", "applied")])
        mutationsAdjusted = counter("mutations", mutations, [("status", "adjusted")])
        mutationsRejected = counter("mutations", mutations, [("status", "rejected")])
        changesPulled = counter("changes_pulled", "Changes sent to devices in pulls.")
        resets = counter("feed_resets", "Pulls answered with a reset (a cursor older than the feed keeps).")
        enrolments = counter("enrolments", "Members enrolled.")
        failedSignIns = counter("failed_sign_ins", "Sign-ins refused for a wrong e-mail or password.")
        let security = "Security events: a reused refresh token, a rate limit hit, a forbidden request."
        refreshReuses = counter("security_events", security, [("event", "refresh_token_reused")])
        rateLimited = counter("security_events", security, [("event", "rate_limited")])
        forbidden = counter("security_events", security, [("event", "forbidden")])
        jobMovements = counter("job_movements", "Ledger movements the unlock and expiry jobs made.")
        allowancePointsGranted = counter("allowance_points_granted", "Points granted to devices as allowances.")
        memberCommits = gauge("store_member_commits", "Commits of units of work on members (SQLite group commits).")
        memberUnitsCommitted = gauge("store_member_units_committed", "Units of work on members committed.")
        programmeMembers = gauge("programme_members", "Members enrolled (at the segment job's last run).")
        programmeActive = Dictionary(
            uniqueKeysWithValues: [30, 90, 365].map {
                (
                    $0,
                    gauge("programme_active_members", "Members with a purchase in the last days.", [("days", "\($0)")])
                )
            })
        programmeLiabilityPoints = gauge(
            "programme_liability_points", "Points the members hold (available and pending, net of owed).")
        programmeLiabilityMinorUnits = gauge(
            "programme_liability_minor_units", "The liability in the currency's minor units (points × point value).")
        programmeRedemptionRate = gauge(
            "programme_redemption_rate", "Points redeemed ÷ points issued over the last twelve months.")
        programmeBreakageRate = gauge(
            "programme_breakage_rate", "Points expired ÷ points issued over the last twelve months.")
    }

    /// Takes the programme report's headline (the twelve months to today).
    func record(_ headline: ProgrammeReport.Headline) {
        programmeMembers.set(headline.members)
        programmeActive[30]?.set(headline.active30)
        programmeActive[90]?.set(headline.active90)
        programmeActive[365]?.set(headline.active365)
        programmeLiabilityPoints.set(headline.liabilityPoints)
        programmeLiabilityMinorUnits.set(headline.liabilityMinorUnits)
        programmeRedemptionRate.set(headline.redemptionRate ?? 0)
        programmeBreakageRate.set(headline.breakageRate ?? 0)
    }

    /// Takes the store's figures (read when `/metrics` is asked for).
    func record(_ statistics: CommitStatistics) {
        memberCommits.set(Int64(statistics.commits))
        memberUnitsCommitted.set(Int64(statistics.units))
    }

    /// The Prometheus text exposition.
    public func render() -> String {
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return String(decoding: buffer, as: UTF8.self)
    }
}
