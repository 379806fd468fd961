public import Foundation
public import LoyaltyCore

/// Where the segment job keeps what it computed (docs/analysis.md, "The segment job"): each member's analysis, the
/// segments' definitions, and how far through the feed the last run looked. Bodies are JSON the job writes and
/// reads; the stores keep them as bytes beside the columns they are found by.
public protocol AnalysisStore: Sendable {
    /// The newest feed version taken so far (members' entities and the catalogue's).
    func newestVersion() async throws -> Int64
    /// Members with an entity written at a version above `version`, after `after`, in id order (through the
    /// index on versions: a run costs what changed).
    func membersChanged(since version: Int64, after: MemberID?, limit: Int) async throws -> [MemberID]
    /// Members whose analysis changes with time alone by `time` (a stage's threshold passed), after `after`.
    func analysesDue(by time: Timestamp, after: MemberID?, limit: Int) async throws -> [MemberID]
    /// A member's stored analysis.
    func analysis(of member: MemberID) async throws -> Data?
    /// Stored analyses after `after`, in member order.
    func analyses(after: MemberID?, limit: Int) async throws -> [(MemberID, Data)]
    /// Writes analyses, each with the time it is next due (nil: only a new event changes it), and the version the
    /// run looked through, in one transaction.
    func save(_ analyses: [(MemberID, due: Timestamp?, body: Data)], through version: Int64?) async throws
    /// The version the last run looked through (0 before the first).
    func lookedThrough() async throws -> Int64
    /// The segments' definitions, by name.
    func segments() async throws -> [String: Data]
    /// Adds or replaces a segment's definition.
    func putSegment(_ name: String, body: Data) async throws
    /// Removes a segment's definition; false if there was none.
    func dropSegment(_ name: String) async throws -> Bool
}
