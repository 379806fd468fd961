import LoyaltyCore
import LoyaltySync
import LoyaltyTesting
import Testing

@Suite struct SyncPlannerTests {
    let policy = SyncPolicy(retries: 3, baseDelay: .milliseconds(500))

    @Test func aSyncPushesEverythingThenPullsUntilCaughtUp() {
        var planner = SyncPlanner(policy: policy)
        #expect(planner.next(after: .begin(hasPending: true)) == .push)
        #expect(planner.next(after: .pushed(morePending: true)) == .push)
        #expect(planner.next(after: .pushed(morePending: false)) == .pull)
        #expect(planner.next(after: .pulled(hasMore: true)) == .pull)
        #expect(planner.next(after: .pulled(hasMore: false)) == .finish(.synced))
        var idle = SyncPlanner(policy: policy)
        #expect(idle.next(after: .begin(hasPending: false)) == .pull)
    }

    @Test func anExpiredTokenIsRefreshedOnceThenTheDeviceIsSignedOut() {
        var planner = SyncPlanner(policy: policy)
        _ = planner.next(after: .begin(hasPending: false))
        #expect(planner.next(after: .failed(.tokenExpired)) == .refresh)
        #expect(planner.next(after: .refreshed) == .pull, "back to where it was")
        guard case .finish(.signedOut) = planner.next(after: .failed(.tokenExpired)) else {
            Issue.record("a second expiry must sign out")
            return
        }
    }

    @Test func revokedUpgradeAndRefusalEndTheSyncTheirOwnWay() {
        var planner = SyncPlanner(policy: policy)
        _ = planner.next(after: .begin(hasPending: true))
        #expect(planner.next(after: .failed(.deviceRevoked("signed out"))) == .wipe("signed out"))
        #expect(planner.next(after: .failed(.upgradeRequired("update"))) == .finish(.upgradeRequired("update")))
        #expect(
            planner.next(after: .failed(.refused(status: 400, code: "bad_request", message: "m")))
                == .finish(.failed("m")))
        #expect(planner.next(after: .failed(.unauthorized("u"))) == .finish(.signedOut("u")))
    }

    @Test func transientFailuresBackOffExponentiallyWithJitterThenGiveUp() {
        var planner = SyncPlanner(policy: policy)
        _ = planner.next(after: .begin(hasPending: true))
        #expect(planner.next(after: .failed(.unreachable("down")), jitter: 1) == .wait(.milliseconds(500)))
        #expect(planner.next(after: .waited) == .push)
        #expect(planner.next(after: .failed(.serverFailure("500")), jitter: 1) == .wait(.milliseconds(1000)))
        #expect(
            planner.next(after: .failed(.unreachable("down")), jitter: 0) == .wait(.milliseconds(1000)),
            "jitter halves at most")
        guard case .finish(.offline) = planner.next(after: .failed(.unreachable("down"))) else {
            Issue.record("retries are bounded")
            return
        }
    }

    @Test func progressResetsTheRetryCount() {
        var planner = SyncPlanner(policy: SyncPolicy(retries: 1))
        _ = planner.next(after: .begin(hasPending: true))
        #expect(
            planner.next(after: .failed(.unreachable("x"))) != .finish(.offline("the server cannot be reached (x)")))
        _ = planner.next(after: .pushed(morePending: true))
        if case .finish = planner.next(after: .failed(.unreachable("x"))) {
            Issue.record("progress should reset the count")
        }
    }

    @Test func theDelayIsCapped() {
        #expect(SyncPlanner.delay(attempt: 30, policy: SyncPolicy(), jitter: 1) == .seconds(30))
    }
}
