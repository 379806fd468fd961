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
        mutationsApplied = registry.makeCounter(name: "loyalty_mutations_total", labels: [("status", "applied")])
        mutationsAdjusted = registry.makeCounter(name: "loyalty_mutations_total", labels: [("status", "adjusted")])
        mutationsRejected = registry.makeCounter(name: "loyalty_mutations_total", labels: [("status", "rejected")])
        changesPulled = registry.makeCounter(name: "loyalty_changes_pulled_total")
        resets = registry.makeCounter(name: "loyalty_feed_resets_total")
        enrolments = registry.makeCounter(name: "loyalty_enrolments_total")
        failedSignIns = registry.makeCounter(name: "loyalty_failed_sign_ins_total")
        refreshReuses = registry.makeCounter(
            name: "loyalty_security_events_total", labels: [("event", "refresh_token_reused")])
        rateLimited = registry.makeCounter(name: "loyalty_security_events_total", labels: [("event", "rate_limited")])
        forbidden = registry.makeCounter(name: "loyalty_security_events_total", labels: [("event", "forbidden")])
        jobMovements = registry.makeCounter(name: "loyalty_job_movements_total")
        allowancePointsGranted = registry.makeCounter(name: "loyalty_allowance_points_granted_total")
        memberCommits = registry.makeGauge(name: "loyalty_store_member_commits")
        memberUnitsCommitted = registry.makeGauge(name: "loyalty_store_member_units_committed")
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
