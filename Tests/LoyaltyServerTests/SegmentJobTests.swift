import Foundation
import LoyaltyAnalysis
import LoyaltyCore
import LoyaltyTesting
import Testing

@testable import LoyaltyServer

/// The segment job on both backends: rule-based segments are materialised on the members (so offers that target
/// them reach their devices), runs are incremental and idempotent, and a member without the `profiling` consent gets
/// no figures and no rule-based segment.
@Suite struct SegmentJobTests {
    /// A member who consents to profiling (or not), with purchases of `amounts` on successive days.
    static func member(
        _ harness: TestServer, profiling: Bool, amounts: [String], sequence: inout UInt64
    ) async throws -> (MemberID, DeviceRecord) {
        let (session, device) = try await harness.enroll()
        for (index, amount) in amounts.enumerated() {
            _ = try await harness.service.recordPurchase(
                amount: amount, card: nil, member: session.memberID.rawValue, receiptCode: nil,
                transaction: "T-\(session.memberID.rawValue.suffix(6))-\(index)")
        }
        if profiling {
            sequence += 1
            try await setProfiling(harness, device, true, sequence: sequence)
        }
        return (session.memberID, device)
    }

    static func setProfiling(
        _ harness: TestServer, _ device: DeviceRecord, _ granted: Bool, sequence: UInt64
    )
        async throws
    {
        let current = try #require(try await harness.service.storage.device(device.id))
        let answer = try await harness.service.push(
            PushRequest(
                deviceID: device.id,
                mutations: [harness.envelope(current, sequence, .setConsent(.profiling, granted: granted))]),
            from: current)
        #expect(answer.lastProcessedSequence == sequence)
    }

    @Test(arguments: StorageBackend.all)
    func segmentsAreMaterialisedIncrementallyAndRespectTheProfilingConsent(backend: StorageBackend) async throws {
        let harness = try await TestServer.make(backend)
        let service = harness.service
        var sequences: [MemberID: UInt64] = [:]
        var sequence: UInt64 = 0
        let (big, bigDevice) = try await Self.member(
            harness, profiling: true, amounts: ["150.00", "120.00"], sequence: &sequence)
        sequences[big] = sequence
        sequence = 0
        let (small, _) = try await Self.member(harness, profiling: true, amounts: ["20.00"], sequence: &sequence)
        sequence = 0
        let (private_, _) = try await Self.member(
            harness, profiling: false, amounts: ["500.00"], sequence: &sequence)
        try await service.setSegments(member: big, segments: ["vip-by-hand"])

        _ = try await service.defineSegment(name: "big-spenders", rule: "monetary >= 200 and frequency >= 2")
        await #expect(throws: APIFailure.self) {
            try await service.defineSegment(name: "broken", rule: "monetary >= lots")
        }
        await #expect(throws: APIFailure.self) {
            try await service.defineSegment(name: "big-spenders", rule: "frequency > 1")
        }

        // The first run visits everyone.
        let first = try await service.run(.segment)
        #expect(first.movements == 1, "one member entered")
        #expect(try await harness.state(of: big).member.segments == ["big-spenders", "vip-by-hand"])
        #expect(try await harness.state(of: small).member.segments.isEmpty)
        #expect(
            try await harness.state(of: private_).member.segments.isEmpty,
            "500.00 spent, but no profiling consent: in no rule-based segment")
        let bigAnalysis = try #require(try await service.memberAnalysis(big))
        #expect(bigAnalysis.figures?.monetary == Money(minorUnits: 27_000))
        #expect(bigAnalysis.stage == .new)
        #expect(bigAnalysis.segments["big-spenders"] != nil)
        // RFM among the two active members with the profiling consent: 270.00 against 20.00.
        #expect(bigAnalysis.figures?.rfm?.monetary == 3)
        #expect(try await service.memberAnalysis(small)?.figures?.rfm?.monetary == 1)
        #expect(bigAnalysis.reasons["big-spenders"] == ["monetary = 270", "frequency = 2"])
        let privateAnalysis = try #require(try await service.memberAnalysis(private_))
        #expect(privateAnalysis.figures == nil)
        #expect(privateAnalysis.excluded?.contains("profiling") == true)
        #expect(try await service.segmentDefinition("big-spenders").size == 1)
        #expect(try await service.segmentMembers("big-spenders", after: nil, limit: 10) == [big])

        // Nothing new: a second run changes nothing.
        let again = try await service.run(.segment)
        #expect(again.members == 0 && again.movements == 0)
        #expect(try await service.segmentDefinition("big-spenders").size == 1)
        #expect(try await service.segmentDefinition("big-spenders").previousSize == 1)

        // The small spender buys more: the next run (incremental) takes them in.
        _ = try await service.recordPurchase(
            amount: "190.00", card: nil, member: small.rawValue, receiptCode: nil, transaction: "T-small-more")
        let third = try await service.run(.segment)
        #expect(third.movements == 1)
        #expect(try await harness.state(of: small).member.segments == ["big-spenders"])
        #expect(try await service.segmentDefinition("big-spenders").size == 2)

        // Withdrawing the profiling consent takes the member out at the next run, with the reason; the segment set
        // by hand stays.
        try await Self.setProfiling(harness, bigDevice, false, sequence: sequences[big]! + 1)
        _ = try await service.run(.segment)
        #expect(try await harness.state(of: big).member.segments == ["vip-by-hand"])
        #expect(try await service.memberAnalysis(big)?.figures == nil)
        #expect(try await service.memberAnalysis(big)?.excluded != nil)
        #expect(try await service.segmentDefinition("big-spenders").size == 1)
        // Granting it again brings the member back.
        try await Self.setProfiling(harness, bigDevice, true, sequence: sequences[big]! + 2)
        _ = try await service.run(.segment)
        #expect(try await harness.state(of: big).member.segments == ["big-spenders", "vip-by-hand"])

        // Dropping the segment takes it off its members at the next run, as the API runs it (it visits every member
        // once after a drop).
        try await service.dropSegment("big-spenders")
        await #expect(throws: APIFailure.self) { try await service.dropSegment("big-spenders") }
        let afterDrop = try await service.run(.segment)
        #expect(afterDrop.movements == 2, "both members left the dropped segment")
        #expect(try await harness.state(of: big).member.segments == ["vip-by-hand"])
        #expect(try await harness.state(of: small).member.segments.isEmpty)
    }

    /// A programme where nobody has bought yet has no RFM population: the job still runs, then and later.
    @Test(arguments: StorageBackend.all)
    func aRunWithNobodyActiveAndTheOneAfterItSucceed(backend: StorageBackend) async throws {
        let harness = try await TestServer.make(backend)
        var sequence: UInt64 = 0
        let (member, _) = try await Self.member(harness, profiling: true, amounts: [], sequence: &sequence)
        _ = try await harness.service.run(.segment)
        _ = try await harness.service.run(.segment, everyMember: true)
        #expect(try await harness.service.memberAnalysis(member)?.figures?.rfm == nil)
    }

    /// A stage changes with time alone: the member is due at the moment it does, and an incremental run finds them.
    @Test(arguments: StorageBackend.all)
    func aStageThatChangesWithTimeIsFoundByTheIncrementalRun(backend: StorageBackend) async throws {
        let harness = try await TestServer.make(backend)
        let service = harness.service
        var sequence: UInt64 = 0
        let (member, _) = try await Self.member(harness, profiling: true, amounts: ["30.00"], sequence: &sequence)
        _ = try await service.defineSegment(name: "slipping", rule: "stage in (at-risk, lapsed)")
        _ = try await service.run(.segment)
        #expect(try await service.memberAnalysis(member)?.stage == .new)
        try harness.clock.advance(by: .days(61))
        _ = try await service.run(.segment)
        #expect(try await service.memberAnalysis(member)?.stage == .atRisk)
        #expect(try await harness.state(of: member).member.segments == ["slipping"])
        let stages = try #require(try await service.memberAnalysis(member)?.stages.map(\.stage))
        #expect(stages == [.new, .atRisk], "new ended at 30 days; the run at 61 days finds at-risk")
    }
}
