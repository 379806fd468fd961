public import Foundation
public import LoyaltyAnalysis
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
    /// Writes analyses, each with the time it is next due (nil: only a new event changes it) and its contribution
    /// to the programme's sums, and the version the run looked through, in one transaction. The sums move by the
    /// difference between each member's new contribution and the one stored before, read in that transaction
    /// (saves are serialised), so that a contribution counts exactly once whoever saves and however often.
    func save(_ analyses: [AnalysisRow], through version: Int64?) async throws
    /// The bodies of a member's ledger movements (by the primary key's member and kind: none of the member's other
    /// entities is read).
    func ledgerEntryBodies(of member: MemberID) async throws -> [Data]
    /// The programme's sums (docs/analysis.md, "Programme KPIs").
    func programmeFigures() async throws -> ProgrammeFigures
    /// The version the last run looked through (0 before the first).
    func lookedThrough() async throws -> Int64
    /// The segments' definitions, by name.
    func segments() async throws -> [String: Data]
    /// Adds or replaces a segment's definition.
    func putSegment(_ name: String, body: Data) async throws
    /// Removes a segment's definition; false if there was none.
    func dropSegment(_ name: String) async throws -> Bool
}

/// One member's analysis as the segment job writes it.
public struct AnalysisRow: Sendable {
    public var member: MemberID
    /// When the analysis changes with time alone (nil: only a new event changes it).
    public var due: Timestamp?
    /// The ``MemberAnalysis`` as JSON.
    public var body: Data
    /// What the member adds to the programme's sums, and its stored form.
    public var contribution: ProgrammeFigures
    public var storedContribution: Data

    public init(member: MemberID, due: Timestamp?, body: Data, contribution: ProgrammeFigures) {
        self.member = member
        self.due = due
        self.body = body
        self.contribution = contribution
        self.storedContribution = contribution.storedForm
    }
}

extension ProgrammeFigures {
    /// The change to the sums when `rows` replace the contributions stored before (`stored`, by member, in their
    /// stored form); a member whose contribution is byte for byte the one stored changes nothing and is not decoded.
    static func change(_ rows: [AnalysisRow], stored: [MemberID: Data]) throws -> ProgrammeFigures {
        var change = ProgrammeFigures()
        for row in rows {
            let old = stored[row.member]
            guard old != row.storedContribution else { continue }
            change.add(row.contribution)
            if let old {
                guard let figures = ProgrammeFigures(storedForm: old) else {
                    throw LoyaltyError(
                        "corrupt_contribution", "member \(row.member)'s stored contribution is unreadable")
                }
                change.add(figures, times: -1)
            }
        }
        return change
    }

    /// The sums as rows of (period, measure, value).
    var rows: [(period: String, measure: String, value: Int64)] {
        values.flatMap { period, measures in measures.map { (period, $0.key, $0.value) } }
    }
}
