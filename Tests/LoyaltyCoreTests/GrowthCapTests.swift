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

    /// A history filled to one short of the cap (built directly: applying 20,000 changes one by one is slow).
    static func nearlyFull(last kind: ConsentKind, granted: Bool) throws -> MemberState {
        var state = try World().member()
        let limit = MemberState.consentHistoryLimit
        state.consents = ConsentHistory(
            changes: (0..<(limit - 1)).map { index in
                ConsentChange(
                    id: "consent:filler:\(index)", kind: .marketingSMS, granted: false,
                    stamp: HLCTimestamp(wallMilliseconds: 1_000 + Int64(index), counter: 0), at: .test(),
                    source: .device("filler"))
            })
        var device = DeviceScript("phone")
        _ = state.applyOnServer(device.envelope(.setConsent(kind, granted: granted)))
        #expect(state.consents.changes.count == limit)
        return state
    }

    @Test func aFullConsentHistoryRefusesGrantsButAlwaysRecordsAWithdrawal() throws {
        let limit = MemberState.consentHistoryLimit
        var state = try Self.nearlyFull(last: .marketingEmail, granted: false)
        var device = DeviceScript("other")
        // Full: a grant is refused, a repeated withdrawal is not recorded.
        let grant = state.applyOnServer(
            device.envelope(.setConsent(.marketingEmail, granted: true), at: .test(.days(1))))
        #expect(grant.status.isRejected)
        let repeated = state.applyOnServer(device.envelope(.setConsent(.marketingEmail, granted: false)))
        #expect(!repeated.status.isRejected)
        #expect(state.consents.changes.count == limit)
        // A consent still granted can always be withdrawn, past the cap.
        var granted = try Self.nearlyFull(last: .profiling, granted: true)
        #expect(granted.consents.isGranted(.profiling))
        var other = DeviceScript("third")
        let withdrawal = granted.applyOnServer(
            other.envelope(.setConsent(.profiling, granted: false), at: .test(.days(1))))
        #expect(withdrawal.status == .applied)
        #expect(!granted.consents.isGranted(.profiling))
        #expect(granted.consents.changes.count == limit + 1)
    }
}

extension MutationStatus {
    var isRejected: Bool { if case .rejected = self { true } else { false } }
}
