import Foundation
import LoyaltyCore

/// Reads the repository's Fixtures/ folder.
enum Fixtures {
    static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")

    static func data(_ name: String) throws -> Data {
        try Data(contentsOf: directory.appendingPathComponent(name))
    }

    static func program() throws -> Program { try Program.decode(json: try data("program.json")) }
    static func catalogue() throws -> Catalogue { try Catalogue.decode(json: try data("catalogue.json")) }
}

extension Timestamp {
    /// A fixed instant for tests: `2026-03-02T10:00:00Z` plus an offset.
    static func test(_ offset: TimeSpan = .zero) -> Timestamp {
        Timestamp.parse("2026-03-02T10:00:00Z")!.adding(offset)
    }
}

/// Builds members for tests from the fixture programme and catalogue.
struct World {
    let program: Program
    let catalogue: Catalogue
    let card = try! CardNumber(body: "400000100001")

    init() throws {
        program = try Fixtures.program()
        catalogue = try Fixtures.catalogue()
    }

    /// An active member with one active card and the whole catalogue.
    func member(segments: Set<String> = [], at time: Timestamp = .test()) throws -> MemberState {
        var state = MemberState(
            program: program, member: MemberRecord(id: "m-1", segments: segments, createdAt: time))
        _ = try state.issueCard(card, at: time)
        for offer in catalogue.offers { state.merge(.offer(offer)) }
        for reward in catalogue.rewards { state.merge(.reward(reward)) }
        for survey in catalogue.surveys { state.merge(.survey(survey)) }
        return state
    }

    /// A member holding `points` spendable points (one purchase, unlocked).
    func member(withPoints points: Int, segments: Set<String> = []) throws -> MemberState {
        var state = try member(segments: segments, at: .test(.days(-30)))
        _ = try state.recordPurchase(
            "tx-start", amount: Money(minorUnits: Int64(points) * 100), card: card, at: .test(.days(-30)))
        _ = state.runJobs(at: .test())
        return state
    }
}

/// Envelopes with increasing sequence numbers and stamps for one device.
struct DeviceScript {
    let deviceID: DeviceID
    var sequence: UInt64 = 0
    var clock = HybridLogicalClock()

    init(_ deviceID: DeviceID) { self.deviceID = deviceID }

    mutating func envelope(_ mutation: Mutation, at time: Timestamp = .test()) -> MutationEnvelope {
        sequence += 1
        return MutationEnvelope(
            deviceID: deviceID, sequence: sequence, stamp: clock.now(wall: time), deviceTime: time, mutation: mutation)
    }
}

extension MemberState {
    /// Applies on the device's behalf (optimistic).
    mutating func applyOnDevice(_ envelope: MutationEnvelope, now: Timestamp = .test()) -> MutationOutcome {
        apply(envelope, context: .device(now: now, actedAt: envelope.deviceTime))
    }

    /// Applies on the server's behalf, with the given facts.
    mutating func applyOnServer(
        _ envelope: MutationEnvelope, now: Timestamp = .test(), facts: ServerFacts = ServerFacts()
    ) -> MutationOutcome {
        apply(
            envelope,
            context: .server(
                now: now, claimedActedAt: envelope.deviceTime, grace: program.offlineGrace, notBefore: nil,
                facts: facts))
    }
}
