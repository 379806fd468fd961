internal import Foundation

/// What one run of the simulator found.
public struct SimulationOutcome: Sendable {
    /// The seed.
    public var seed: UInt64
    /// The steps run.
    public var steps: Int
    /// Broken invariants, in the order found (empty: the run passed).
    public var failures: [String]
    /// The trace, one line per event.
    public var trace: [String]
    /// SHA-256 of the trace: two runs of one seed must agree on it.
    public var digest: String
    /// What happened, counted.
    public var counts: [String: Int]

    /// Whether every invariant held.
    public var passed: Bool { failures.isEmpty }

    /// The last `lines` lines of the trace, for a failure report.
    public func tail(_ lines: Int) -> [String] { Array(trace.suffix(lines)) }
}
