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

    /// Metrics in a registry of their own.
    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        func counter(_ name: String, _ help: String, _ labels: [(String, String)] = []) -> Counter {
            registry.makeCounter(
                descriptor: MetricNameDescriptor(
                    namespace: "loyalty", metricName: name, unitName: "total", helpText: help),
                labels: labels)
        }
        func gauge(_ name: String, _ help: String) -> Gauge {
            registry.makeGauge(
                descriptor: MetricNameDescriptor(namespace: "loyalty", metricName: name, unitName: "", helpText: help))
        }
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
