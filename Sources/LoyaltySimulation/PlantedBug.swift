internal import LoyaltyCore
internal import LoyaltyServer

/// Bugs the simulator's self-test plants in the server, through the server's hooks, to show its invariants catch
/// them.
public enum PlantedBug: String, Sendable, CaseIterable {
    /// A push that repeats the last processed sequence number is applied a second time instead of answered from the
    /// stored result.
    case reapplyDuplicates = "reapply-duplicates"

    /// The server's retry hook that plants the bug.
    var retryHook: RetryHook {
        switch self {
        case .reapplyDuplicates:
            { envelope, work, now in
                guard envelope.sequence == work.device?.lastSequence else { return }
                let outcome = work.state.apply(
                    envelope,
                    context: .server(
                        now: now, claimedActedAt: envelope.deviceTime, grace: work.state.program.offlineGrace,
                        notBefore: nil, facts: ServerFacts(voucherCode: "V-PLANTED-\(envelope.sequence)")))
                work.write(outcome.changes)
            }
        }
    }
}
