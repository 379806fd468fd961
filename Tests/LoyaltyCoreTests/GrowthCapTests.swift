import LoyaltyCore
import Testing

/// What a member's state may grow to, and what happens at each cap (docs/security.md).
@Suite struct GrowthCapTests {
    @Test func conflictRecordsStopAtTheirCapAndLostWritesAreStillAnsweredAdjusted() throws {
        var state = try World().member()
        var winner = DeviceScript("winner")
        var loser = DeviceScript("loser")
        let later = Timestamp.test(.days(1))
        _ = state.applyOnServer(
            winner.envelope(.setProfileField(.phone, value: "+49 30 1111111", basedOn: nil), at: later))
        for index in 0..<(MemberState.conflictRecordLimit + 5) {
            let outcome = state.applyOnServer(
                loser.envelope(.setProfileField(.phone, value: "+49 30 \(2_000_000 + index)", basedOn: nil)))
            guard case .adjusted = outcome.status else {
                Issue.record("a lost write must be answered adjusted: \(outcome.status)")
                return
            }
        }
        #expect(state.conflicts.count == MemberState.conflictRecordLimit)
    }

    @Test func aFullConsentHistoryRefusesGrantsButAlwaysRecordsAWithdrawal() throws {
        var state = try World().member()
        var device = DeviceScript("phone")
        for index in 0..<MemberState.consentHistoryLimit {
            _ = state.applyOnServer(device.envelope(.setConsent(.marketingEmail, granted: index % 2 == 0)))
        }
        #expect(state.consents.changes.count == MemberState.consentHistoryLimit)
        // The last change withdrew it: a grant is refused, a repeated withdrawal is not recorded.
        let grant = state.applyOnServer(device.envelope(.setConsent(.marketingEmail, granted: true)))
        #expect(grant.status.isRejected)
        let repeated = state.applyOnServer(device.envelope(.setConsent(.marketingEmail, granted: false)))
        #expect(!repeated.status.isRejected)
        #expect(state.consents.changes.count == MemberState.consentHistoryLimit)
        // A consent still granted can always be withdrawn.
        _ = state.applyOnServer(device.envelope(.setConsent(.profiling, granted: true)))  // refused: full
        #expect(!state.consents.isGranted(.profiling))
        var fresh = try World().member()
        var other = DeviceScript("other")
        _ = fresh.applyOnServer(other.envelope(.setConsent(.profiling, granted: true)))
        for _ in 1..<MemberState.consentHistoryLimit {
            _ = fresh.applyOnServer(other.envelope(.setConsent(.marketingSMS, granted: false)))
        }
        #expect(fresh.consents.changes.count == MemberState.consentHistoryLimit)
        let withdrawal = fresh.applyOnServer(other.envelope(.setConsent(.profiling, granted: false)))
        #expect(withdrawal.status == .applied)
        #expect(!fresh.consents.isGranted(.profiling))
        #expect(fresh.consents.changes.count == MemberState.consentHistoryLimit + 1)
    }
}

extension MutationStatus {
    var isRejected: Bool { if case .rejected = self { true } else { false } }
}
